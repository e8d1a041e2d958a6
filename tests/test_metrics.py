"""Scorer metrics: naming conventions over the whole registry, the recording methods, the HTTP server."""

import json
import logging
import math
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from consumer.http import MetricsServer, Readiness
from consumer.metrics import ScorerMetrics
from model.drift import numeric_baseline
from model.monitor import DriftMonitor, DriftThresholds, WindowSpec
from model.shadow import ShadowReport

REQUIRED = {
    "segmenter_events_consumed_total",
    "segmenter_events_valid_total",
    "segmenter_events_invalid_total",
    "segmenter_events_dead_lettered_total",
    "segmenter_segment_assignments_total",
    "segmenter_segment_changes_total",
    "segmenter_customers_tracked",
    "segmenter_batch_size_events_bucket",
    "segmenter_scoring_latency_seconds_bucket",
    "segmenter_end_to_end_latency_seconds_bucket",
    "segmenter_consumer_lag_records",
    "segmenter_commits_total",
    "segmenter_transactions_total",
    "segmenter_state_restore_duration_seconds_bucket",
    "segmenter_state_restore_records_total",
    "segmenter_model_info",
    "segmenter_model_reloads_total",
    "segmenter_model_refusals_total",
    "segmenter_drift_segment_psi",
    "segmenter_drift_segment_js_distance",
    "segmenter_drift_segment_linf",
    "segmenter_drift_feature_psi",
    "segmenter_drift_state",
}


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def metrics(registry):
    return ScorerMetrics(registry)


def exercised(metrics):
    """Touch every labelled metric once so that its samples appear in the exposition."""
    metrics.observe_batch(consumed=4, valid=3, invalid={"not_json": 1}, dead_lettered=1)
    metrics.record_assignments([0, 1, 1], changed=[True, False, True])
    metrics.set_lag("customer-events", 0, 7)
    metrics.set_model("m-1", 3, "kmeans")
    monitor = DriftMonitor([0.5, 0.5], {"spend": numeric_baseline(range(10))}, DriftThresholds(min_samples=1))
    monitor.observe([0, 1], [{"spend": 1}, {"spend": 2}])
    metrics.set_drift(monitor.snapshot())
    return metrics


def samples(registry):
    return [(family, sample) for family in registry.collect() for sample in family.samples]


def test_every_required_metric_is_registered(metrics, registry):
    exercised(metrics)
    names = {sample.name for _, sample in samples(registry)}
    assert REQUIRED - names == set()


def test_names_follow_the_prometheus_conventions(metrics, registry):
    exercised(metrics)
    problems = []
    for family, sample in samples(registry):
        if not sample.name.startswith("segmenter_"):
            problems.append(f"{sample.name}: no segmenter_ prefix")
        if family.type == "counter" and not sample.name.endswith(("_total", "_created")):
            problems.append(f"{sample.name}: counter without _total")
        if family.type != "counter" and sample.name.endswith("_total"):
            problems.append(f"{sample.name}: _total on a {family.type}")
        timed = any(word in family.name for word in ("latency", "duration", "time"))
        if timed and not family.name.endswith(("_seconds", "_timestamp_seconds")):
            problems.append(f"{family.name}: a time not in seconds")
        if family.type == "histogram" and not family.name.endswith(("_seconds", "_bytes", "_events")):
            problems.append(f"{family.name}: histogram without a unit suffix")
        if "ms" in family.name.split("_") or "milliseconds" in family.name:
            problems.append(f"{family.name}: milliseconds")
        problems += [
            f"{family.name}: label {label}" for label in sample.labels if label.startswith("customer")
        ]
    assert problems == []


def test_batch_counts_add_up(metrics, registry):
    metrics.observe_batch(consumed=5, valid=3, invalid={"not_json": 1, "missing_field": 1}, dead_lettered=2)
    metrics.observe_batch(consumed=2, valid=2)
    value = registry.get_sample_value
    assert value("segmenter_events_consumed_total") == 7
    assert value("segmenter_events_valid_total") == 5
    assert value("segmenter_events_invalid_total", {"reason": "missing_field"}) == 1
    assert value("segmenter_events_dead_lettered_total") == 2
    assert value("segmenter_batch_size_events_count") == 2
    assert value("segmenter_batch_size_events_sum") == 7


def test_assignments_and_changes_are_counted_per_segment(metrics, registry):
    metrics.record_assignments([2, 2, 0], changed=[True, False, False])
    value = registry.get_sample_value
    assert value("segmenter_segment_assignments_total", {"segment": "2"}) == 2
    assert value("segmenter_segment_changes_total", {"segment": "2"}) == 1
    assert value("segmenter_segment_changes_total", {"segment": "0"}) is None


def test_end_to_end_latency_is_measured_in_seconds_from_event_time(metrics, registry):
    # published at 1002 s: events at 1000.0 s and 1001.5 s are 2.0 s and 0.5 s old; one from the future is 0
    metrics.observe_end_to_end([1_000_000, 1_001_500, 1_003_000], published_at_s=1_002.0)
    assert registry.get_sample_value("segmenter_end_to_end_latency_seconds_sum") == pytest.approx(2.5)
    assert registry.get_sample_value("segmenter_end_to_end_latency_seconds_bucket", {"le": "1.0"}) == 2


def test_revoked_partition_lag_series_disappears(metrics, registry):
    metrics.set_lag("events", 2, 10)
    metrics.forget_partition("events", 2)
    metrics.forget_partition("events", 2)
    assert (
        registry.get_sample_value("segmenter_consumer_lag_records", {"topic": "events", "partition": "2"})
        is None
    )


def test_results_are_a_fixed_vocabulary(metrics, registry):
    assert registry.get_sample_value("segmenter_transactions_total", {"result": "aborted"}) == 0
    metrics.record_transaction("aborted")
    assert registry.get_sample_value("segmenter_transactions_total", {"result": "aborted"}) == 1
    with pytest.raises(ValueError, match="'oops' is not one of"):
        metrics.record_commit("oops")


def test_model_info_is_replaced_on_reload(metrics, registry):
    metrics.set_model("m-1", 4, "kmeans")
    metrics.set_model("m-2", 5, "river")
    infos = [s for _, s in samples(registry) if s.name == "segmenter_model_info"]
    assert [s.labels for s in infos] == [{"model_id": "m-2", "k": "5", "algorithm": "river"}]


def test_drift_report_sets_the_gauges_and_a_smaller_model_drops_stale_segments(metrics, registry):
    shifted = DriftMonitor([0.25] * 4, {}, DriftThresholds(min_samples=1), WindowSpec(max_count=10))
    shifted.observe([3] * 10)
    metrics.set_drift(shifted.snapshot())
    value = registry.get_sample_value
    assert value("segmenter_drift_state") == 2
    assert value("segmenter_drift_segment_linf") == pytest.approx(0.75)
    assert value("segmenter_segment_share", {"segment": "3"}) == 1.0
    smaller = DriftMonitor([0.5, 0.5], {}, DriftThresholds(min_samples=1))
    smaller.observe([0, 1])
    metrics.set_drift(smaller.snapshot())
    assert value("segmenter_drift_state") == 0
    assert value("segmenter_segment_share", {"segment": "3"}) is None
    assert value("segmenter_segment_expected_share", {"segment": "1"}) == 0.5


# --- HTTP ----------------------------------------------------------------------------------------------


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type"), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


@pytest.fixture
def served(metrics):
    now = [100.0]
    readiness = Readiness(liveness_timeout_s=30, clock=lambda: now[0])
    with MetricsServer(metrics.registry, readiness, host="127.0.0.1", port=0) as server:
        yield server, readiness, now


def test_metrics_endpoint_serves_the_injected_registry(served, metrics):
    server, _, _ = served
    metrics.observe_batch(consumed=3, valid=3)
    status, content_type, body = get(f"{server.url}/metrics")
    assert (status, content_type.split(";")[0]) == (200, "text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert families["segmenter_events_consumed"].samples[0].value == 3


def test_readyz_is_503_with_reasons_until_state_and_model_are_ready(served):
    server, readiness, _ = served
    status, _, body = get(f"{server.url}/readyz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["state not restored", "model not loaded"]
    readiness.set_model_loaded()
    assert json.loads(get(f"{server.url}/readyz")[2])["reasons"] == ["state not restored"]
    readiness.set_state_restored()
    assert get(f"{server.url}/readyz")[0] == 200
    readiness.set_state_restored(False)  # a rebalance started restoring again
    assert get(f"{server.url}/readyz")[0] == 503


def test_healthz_follows_the_loop_heartbeat(served):
    server, readiness, now = served
    assert get(f"{server.url}/healthz")[0] == 200
    now[0] += 31
    status, _, body = get(f"{server.url}/healthz")
    assert (status, json.loads(body)["last_heartbeat_age_s"]) == (503, 31.0)
    readiness.heartbeat()
    assert get(f"{server.url}/healthz")[0] == 200


def test_unknown_path_is_404(served):
    server, _, _ = served
    assert get(f"{server.url}/nope")[0] == 404


def test_a_busy_port_fails_loudly_at_start(served, metrics):
    server, readiness, _ = served
    with pytest.raises(OSError, match="in use"):
        MetricsServer(metrics.registry, readiness, host="127.0.0.1", port=server.port).start()


def test_a_scraper_that_hung_up_is_a_debug_line_not_a_traceback(served, caplog, capsys):
    # Prometheus closes the connection when a scrape outlives its timeout (a busy machine); the server
    # must not print a traceback for that on every missed scrape, and must still report real failures.
    server, _, _ = served
    handle_error = server._server.handle_error
    with caplog.at_level(logging.DEBUG, logger="consumer.http"):
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            handle_error(None, ("127.0.0.1", 40000))
        try:
            raise ValueError("encoding failed")
        except ValueError:
            handle_error(None, ("127.0.0.1", 40001))
    assert "Traceback" not in capsys.readouterr().err
    (hung_up,) = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert hung_up.levelno == logging.DEBUG
    (failed,) = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed.levelno == logging.ERROR
    assert failed.exc_info[0] is ValueError
    # and the server still answers
    assert get(f"{server.url}/metrics")[0] == 200


def test_shadow_gauges_replace_their_series_when_the_window_or_the_candidate_changes():
    metrics = ScorerMetrics(CollectorRegistry())
    value = metrics.registry.get_sample_value
    assert math.isnan(value("segmenter_shadow_agreement_ratio")), "no shadow: NaN, not disagreement"
    drift = DriftMonitor([0.5, 0.5]).snapshot()
    metrics.set_shadow(ShadowReport(3, 2 / 3, 0.5, {(0, 0): 2, (1, 0): 1}, model_id="a", drift=drift))
    assert value("segmenter_shadow_transitions", {"live": "1", "shadow": "0"}) == 1
    assert value("segmenter_shadow_info", {"model_id": "a"}) == 1
    metrics.set_shadow(ShadowReport(2, 1.0, 1.0, {(0, 0): 2}, model_id="b", drift=drift))
    assert value("segmenter_shadow_transitions", {"live": "1", "shadow": "0"}) is None, "a stale cell"
    assert value("segmenter_shadow_transitions", {"live": "0", "shadow": "0"}) == 2
    assert value("segmenter_shadow_info", {"model_id": "a"}) is None
    assert value("segmenter_shadow_info", {"model_id": "b"}) == 1
    assert (value("segmenter_shadow_agreement_ratio"), value("segmenter_shadow_window_samples")) == (1.0, 2)
