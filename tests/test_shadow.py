"""model/shadow.py on plain data: agreement, adjusted Rand index, transitions and the shadow's drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.shadow import ShadowModel, ShadowWindow


class ThresholdModel:
    """A stand-in scorer: spend below 10 is cluster 0, else cluster 1; ``ids`` names the clusters."""

    def __init__(self, model_id: str, ids=(0, 1), shares=(0.5, 0.5)) -> None:
        self.model_id = model_id
        self.ids = np.array(ids)
        self.manifest = {"segment_distribution": list(shares), "segment_ids": list(ids)}

    def score_arrays(self, rows):
        clusters = np.array([0 if row["spend"] < 10 else 1 for row in rows])
        return self.ids[clusters], None, None


ROWS = [{"spend": s} for s in (1.0, 2.0, 3.0, 20.0, 30.0, 40.0)]
LIVE = [0, 0, 0, 1, 1, 1]


def test_identical_models_agree_fully():
    shadow = ShadowModel(ThresholdModel("same"), window=100)
    shadow.observe(LIVE, ROWS)
    report = shadow.snapshot()
    assert (report.samples, report.agreement, report.adjusted_rand_index) == (6, 1.0, 1.0)
    assert report.transitions == {(0, 0): 3, (1, 1): 3}
    assert report.model_id == "same"


def test_a_renumbered_model_without_lineage_disagrees_but_partitions_alike():
    shadow = ShadowModel(ThresholdModel("renumbered", ids=(1, 0)), window=100)
    shadow.observe(LIVE, ROWS)
    report = shadow.snapshot()
    assert report.agreement == 0.0
    assert report.adjusted_rand_index == pytest.approx(1.0)
    assert report.transitions == {(0, 1): 3, (1, 0): 3}


def test_transitions_count_where_each_live_segment_goes():
    window = ShadowWindow(max_count=100)
    window.observe([0, 0, 0, 1, 1, 2], [0, 0, 2, 1, 2, 2])
    report = window.snapshot()
    assert report.transitions == {(0, 0): 2, (0, 2): 1, (1, 1): 1, (1, 2): 1, (2, 2): 1}
    assert report.agreement == pytest.approx(4 / 6)
    assert report.adjusted_rand_index < 0.5  # the shadow splits segments 0 and 1: not the same partition


def test_the_window_keeps_only_the_last_pairs():
    window = ShadowWindow(max_count=3)
    window.observe([0, 0, 0], [1, 1, 1])
    window.observe([0, 1, 1], [0, 1, 1])
    report = window.snapshot()
    assert (report.samples, report.agreement) == (3, 1.0)
    assert report.transitions == {(0, 0): 1, (1, 1): 2}


def test_an_empty_window_reports_nan():
    report = ShadowWindow(max_count=5).snapshot()
    assert report.samples == 0
    assert math.isnan(report.agreement)
    assert math.isnan(report.adjusted_rand_index)
    assert report.transitions == {}


def test_the_shadow_drift_is_against_the_shadows_own_references():
    # The shadow expects 90% in its segment 0; the live rows put half in each: its drift is high.
    shadow = ShadowModel(ThresholdModel("skewed", shares=(0.9, 0.1)), window=100)
    shadow.observe(LIVE, ROWS)
    drift = shadow.snapshot().drift
    assert drift.samples == 6
    assert drift.window_shares == (0.5, 0.5)
    assert drift.psi > 0.25


def test_mismatched_lengths_name_both_counts():
    with pytest.raises(ValueError, match="3 live segment ids but 2 shadow ones"):
        ShadowWindow(max_count=5).observe([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="2 live segment ids but 6 feature rows"):
        ShadowModel(ThresholdModel("m"), window=5).observe([0, 1], ROWS)
    with pytest.raises(ValueError, match="max_count >= 1, got 0"):
        ShadowWindow(max_count=0)
