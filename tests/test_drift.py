"""Drift statistics against hand computation, and their properties."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.drift import (
    bin_index,
    categorical_baseline,
    js_distance,
    linf,
    numeric_baseline,
    psi,
    wasserstein_normalised,
)
from model.monitor import DriftMonitor, DriftThresholds, WindowSpec
from model.windows import SegmentWindow, SlotWindow

# --- statistics against hand computation -------------------------------------------------------------


def test_psi_matches_hand_computation_without_smoothing():
    # (0.5 - 0.25) * ln(0.5 / 0.25) + (0.5 - 0.75) * ln(0.5 / 0.75)
    # = 0.25 * 0.693147 + 0.25 * 0.405465 = 0.274653
    assert psi([0.25, 0.75], [0.5, 0.5], eps=0.0) == pytest.approx(0.274653, abs=1e-6)


def test_psi_accepts_counts_as_well_as_shares():
    assert psi([25, 75], [2, 2], eps=0.0) == pytest.approx(0.274653, abs=1e-6)


def test_psi_smooths_an_empty_bin_to_a_finite_value():
    # eps = 0.01, 3 bins: each share s -> (s + 0.01) / 1.03.
    # expected (0.5, 0.5, 0)    -> (0.51, 0.51, 0.01) / 1.03
    # actual   (0.5, 0.25, 0.25) -> (0.51, 0.26, 0.26) / 1.03
    # bin 1: (0.26 - 0.51) / 1.03 * ln(0.26 / 0.51) = -0.242718 * -0.673730 = 0.163527
    # bin 2: (0.26 - 0.01) / 1.03 * ln(0.26 / 0.01) =  0.242718 *  3.258097 = 0.790800
    assert psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25], eps=0.01) == pytest.approx(0.954327, abs=1e-5)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25], eps=0.0) == math.inf


def test_js_distance_matches_hand_computation():
    # p = (1, 0), q = (0.5, 0.5), m = (0.75, 0.25)
    # KL(p||m) = log2(1 / 0.75) = 0.415037
    # KL(q||m) = 0.5 * log2(0.5 / 0.75) + 0.5 * log2(0.5 / 0.25) = -0.292481 + 0.5 = 0.207519
    # JSD = (0.415037 + 0.207519) / 2 = 0.311278; distance = sqrt(0.311278) = 0.557923
    assert js_distance([1, 0], [0.5, 0.5]) == pytest.approx(0.557923, abs=2e-6)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_linf_is_the_largest_change_of_one_share():
    # |0.2 - 0.3| = 0.1, |0.3 - 0.3| = 0, |0.5 - 0.4| = 0.1
    assert linf([0.2, 0.3, 0.5], [0.3, 0.3, 0.4]) == pytest.approx(0.1)


def test_wasserstein_on_histograms_matches_hand_computation():
    # edges 0,2,4,6 -> centres 1,3,5, span 4. All mass moves from centre 1 to centre 3: distance 2 -> 2/4.
    assert wasserstein_normalised([0, 2, 4, 6], [1, 0, 0], [0, 1, 0]) == pytest.approx(0.5)
    assert wasserstein_normalised([0, 2, 4, 6], [1, 0, 0], [0, 0, 1]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("expected", "actual", "needle"),
    [
        ([0.5, 0.5], [0.3, 0.3, 0.4], "same bins"),
        ([0.5, -0.5], [0.5, 0.5], "non-negative"),
        ([0, 0], [0.5, 0.5], "positive mass"),
        ([], [], "non-empty"),
    ],
)
def test_bad_distributions_are_rejected_with_a_clear_message(expected, actual, needle):
    with pytest.raises(ValueError, match=needle):
        psi(expected, actual)


# --- baselines -----------------------------------------------------------------------------------------


def test_numeric_baseline_uses_quantile_edges_and_counts_missing():
    # 1..10 with bins=2: quantiles at 0, 0.5, 1 are 1, 5.5, 10 -> bins [1, 5.5) and [5.5, 10]
    baseline = numeric_baseline([*range(1, 11), None, float("nan")], bins=2)
    assert baseline == {"kind": "numeric", "edges": [1.0, 5.5, 10.0], "counts": [5, 5], "missing": 2}


def test_numeric_baseline_outer_bins_are_open_and_missing_has_its_own_slot():
    baseline = numeric_baseline(range(1, 11), bins=2)
    assert [bin_index(baseline, v) for v in (-100, 5, 5.5, 1e9, None, "x")] == [0, 0, 1, 1, 2, 2]


def test_numeric_baseline_collapses_tied_quantiles_of_a_discrete_column():
    baseline = numeric_baseline([1] * 90 + [7] * 10, bins=10)
    assert sum(baseline["counts"]) == 100
    assert len(baseline["edges"]) == len(baseline["counts"]) + 1
    assert len(baseline["counts"]) < 10


def test_constant_column_gets_one_bin():
    assert numeric_baseline([3, 3, 3]) == {
        "kind": "numeric",
        "edges": [3.0, 3.0],
        "counts": [3],
        "missing": 0,
    }


def test_categorical_baseline_ranks_categories_and_pools_the_rare_ones():
    values = ["a", "a", "b", None, "c", "c", "c"]
    assert categorical_baseline(values) == {
        "kind": "categorical",
        "categories": ["c", "a", "b"],
        "counts": [3, 2, 1],
        "other": 0,
        "missing": 1,
    }
    pooled = categorical_baseline(values, max_categories=2)
    assert (pooled["categories"], pooled["other"]) == (["c", "a"], 1)
    assert [bin_index(pooled, v) for v in ("c", "a", "b", "zzz", None)] == [0, 1, 2, 2, 3]


# --- windows -------------------------------------------------------------------------------------------


def test_count_window_keeps_the_last_n():
    window = SegmentWindow(3, max_count=3)
    window.observe_many([0, 0, 1, 2, 2])
    assert window.counts().tolist() == [0, 1, 2]


def test_event_time_window_follows_the_watermark_and_drops_late_events():
    window = SlotWindow(2, max_age_s=10)
    window.observe_many([0, 1, 1], [100.0, 105.0, 112.0])  # watermark 112 -> horizon 102 evicts ts 100
    assert window.counts().tolist() == [0, 2]
    window.observe(0, 101.0)  # older than the horizon on arrival
    assert (window.counts().tolist(), window.late) == ([0, 2], 1)


def test_wall_clock_window_drains_when_the_stream_is_quiet():
    now = [1000.0]
    window = SlotWindow(2, max_age_s=5, clock=lambda: now[0])
    window.observe_many([0, 1])
    now[0] += 6
    assert window.counts().tolist() == [0, 0]


def test_event_time_window_needs_timestamps():
    with pytest.raises(ValueError, match="ts_s"):
        SlotWindow(2, max_age_s=5).observe(0)


@given(st.lists(st.integers(0, 4), max_size=200), st.integers(1, 50))
def test_count_window_equals_a_recount_of_the_tail(slots, size):
    window = SlotWindow(5, max_count=size)
    window.observe_many(slots)
    assert window.counts().tolist() == np.bincount(slots[-size:], minlength=5).tolist()


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 100)), max_size=100), st.floats(0.5, 30))
def test_time_window_equals_a_recount_of_recent_in_order_events(events, age):
    events = sorted(events, key=lambda e: e[1])
    window = SlotWindow(4, max_age_s=age)
    window.observe_many([s for s, _ in events], [t for _, t in events])
    latest = max((t for _, t in events), default=0.0)
    recent = [s for s, t in events if t >= latest - age]
    assert window.counts().tolist() == np.bincount(recent, minlength=4).astype(int).tolist()


# --- properties ----------------------------------------------------------------------------------------

shares = st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=12).filter(lambda v: sum(v) > 0)


@given(shares)
def test_psi_of_a_distribution_with_itself_is_zero(p):
    assert psi(p, p) == 0.0


@given(shares, st.data())
def test_js_is_symmetric_and_bounded(p, data):
    q = data.draw(st.lists(st.floats(0, 1000), min_size=len(p), max_size=len(p)).filter(lambda v: sum(v) > 0))
    assert js_distance(p, q) == pytest.approx(js_distance(q, p), abs=1e-12)
    assert 0.0 <= js_distance(p, q) <= 1.0
    assert psi(p, q) >= 0.0


@given(shares, st.data())
def test_linf_is_bounded_by_the_total_variation(p, data):
    q = data.draw(st.lists(st.floats(0, 1000), min_size=len(p), max_size=len(p)).filter(lambda v: sum(v) > 0))
    a, b = np.asarray(p) / sum(p), np.asarray(q) / sum(q)
    total_variation = 0.5 * np.abs(a - b).sum()
    # The rounding allowance goes on one side only: added to both sides of the last comparison it
    # cancelled out, and a sum that rounds to 1.0000000000000002 failed the check it was meant to pass.
    assert 0.0 <= linf(p, q) <= total_variation + 1e-12
    assert total_variation <= 1.0 + 1e-12


# --- the monitor ---------------------------------------------------------------------------------------


def monitor(**thresholds):
    baselines = {"spend": numeric_baseline(range(1, 11), bins=2), "channel": categorical_baseline("aab")}
    return DriftMonitor(
        [0.5, 0.5], baselines, DriftThresholds(min_samples=10, **thresholds), WindowSpec(max_count=400)
    )


def test_monitor_alerts_on_a_shifted_segment_mix():
    m = monitor()
    m.observe([0] * 100 + [1] * 300)
    report = m.snapshot()
    # live (0.25, 0.75) against (0.5, 0.5): PSI 0.274653 as above (eps = 1e-4 moves it < 1e-3), L∞ 0.25
    assert report.psi == pytest.approx(0.274653, abs=1e-3)
    assert report.linf == pytest.approx(0.25)
    assert (report.state, report.level, report.samples) == ("alert", 2, 400)
    assert any("segment PSI" in reason for reason in report.reasons)


def test_monitor_warns_on_a_moderate_shift_through_js_and_linf_but_not_psi():
    m = monitor()
    m.observe([0] * 150 + [1] * 250)
    report = m.snapshot()
    # live q = (0.375, 0.625) against p = (0.5, 0.5):
    # PSI = -0.125 * ln(0.75) + 0.125 * ln(1.25) = 0.035960 + 0.027893 = 0.063853 (< 0.1 warn)
    # m = (0.4375, 0.5625); KL(p||m) = 0.5 * log2(0.5/0.4375) + 0.5 * log2(0.5/0.5625) = 0.011360
    # KL(q||m) = 0.375 * log2(0.375/0.4375) + 0.625 * log2(0.625/0.5625) = 0.011605
    # JS = sqrt((0.011360 + 0.011605) / 2) = 0.107156 (>= 0.1 warn, < 0.2 alert); L∞ = 0.125 (warn)
    assert report.psi == pytest.approx(0.063853, abs=1e-3)
    assert report.js == pytest.approx(0.107156, abs=1e-4)
    assert report.linf == pytest.approx(0.125)
    assert report.state == "warn"
    assert sorted(r.split(" 0")[0] for r in report.reasons) == ["segment JS distance", "segment L∞"]


def test_monitor_detects_feature_drift_when_customers_spend_far_more():
    m = monitor()
    m.observe([0, 1] * 50, [{"spend": 1000.0, "channel": "a"}] * 100)
    report = m.snapshot()
    # spend slots (bin 0, bin 1, missing): expected (5, 5, 0), live (0, 100, 0); eps = 1e-4, 3 slots
    e = np.array([0.5 + 1e-4, 0.5 + 1e-4, 1e-4]) / 1.0003
    a = np.array([1e-4, 1 + 1e-4, 1e-4]) / 1.0003
    assert report.feature_psi["spend"] == pytest.approx(float(np.sum((a - e) * np.log(a / e))), rel=1e-9)
    assert report.feature_psi["spend"] > 0.25
    # centres 3.25 and 7.75: half the mass moves the whole span
    assert report.feature_wasserstein == {"spend": pytest.approx(0.5)}
    assert report.psi == pytest.approx(0.0, abs=1e-9)
    assert report.state == "alert"
    assert any(r.startswith("feature spend PSI") for r in report.reasons)


def test_monitor_stays_ok_below_min_samples_and_reports_nan_when_empty():
    m = monitor()
    empty = m.snapshot()
    assert math.isnan(empty.psi)
    assert empty.to_dict()["psi"] is None
    m.observe([0] * 9)
    assert m.snapshot().state == "ok"


def test_monitor_time_window_forgets_old_drift():
    m = DriftMonitor([0.5, 0.5], {}, DriftThresholds(min_samples=1), WindowSpec(max_count=None, max_age_s=60))
    m.observe([0] * 50, ts_s=1000.0)
    m.observe([0, 1] * 50, ts_s=2000.0)
    report = m.snapshot()
    assert (report.samples, report.state) == (100, "ok")


def test_monitor_from_manifest_requires_a_segment_distribution():
    with pytest.raises(ValueError, match="segment_distribution"):
        DriftMonitor.from_manifest({"model_id": "m"})
    built = DriftMonitor.from_manifest({"segment_distribution": [0.2, 0.8]})
    assert built.expected.tolist() == [0.2, 0.8]


def test_monitor_from_manifest_prefers_the_stream_reference():
    training = {
        "segment_distribution": [0.2, 0.8],
        "feature_baselines": {"spend": numeric_baseline([1.0, 2.0, 3.0])},
    }
    stream = {
        "stream_segment_distribution": [0.6, 0.4],
        "stream_feature_baselines": {"plan": categorical_baseline(["a", "b"])},
    }
    built = DriftMonitor.from_manifest(training | stream)
    assert built.expected.tolist() == [0.6, 0.4]
    assert set(built.features) == {"plan"}
    assert DriftMonitor.from_manifest(training).expected.tolist() == [0.2, 0.8]  # a table-trained model


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="psi thresholds"):
        DriftThresholds(psi_warn=0.3, psi_alert=0.2)


def test_feature_rows_must_align_with_segments():
    with pytest.raises(ValueError, match="2 segment ids but 1 feature rows"):
        monitor().observe([0, 1], [{"spend": 1}])
