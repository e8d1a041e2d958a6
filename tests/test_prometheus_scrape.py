"""A real Prometheus scrapes the scorer's /metrics server and fires the drift alert from alerts.yml.

This covers the scrape path and the production rule expressions (with ``for:`` shortened to 2 s)
on a ``ScorerMetrics`` fed by a real ``DriftMonitor``; the end-to-end replay through the streaming
scorer is a separate test.
"""

import json
import urllib.error
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_server import PrometheusServer, short_for_rules
from waiting import wait_for

from consumer.http import MetricsServer, Readiness
from consumer.metrics import ScorerMetrics
from model.drift import numeric_baseline
from model.monitor import DriftMonitor, DriftThresholds, WindowSpec

ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"


@pytest.mark.slow
def test_drift_gauge_is_scraped_and_the_drift_alert_fires_only_after_the_shift(tmp_path):
    metrics = ScorerMetrics(CollectorRegistry())
    monitor = DriftMonitor(
        [0.25] * 4,
        {"spend": numeric_baseline(range(100))},
        DriftThresholds(min_samples=100),
        WindowSpec(max_count=1000),
    )
    monitor.observe([0, 1, 2, 3] * 250, [{"spend": s % 100} for s in range(1000)])
    metrics.observe_batch(consumed=1000, valid=1000)
    metrics.set_drift(monitor.snapshot())
    rules = short_for_rules(ALERTS, tmp_path / "alerts.yml", duration="2s")

    with (
        MetricsServer(metrics.registry, Readiness(), host="127.0.0.1", port=0) as scorer,
        PrometheusServer(
            tmp_path, {"segmenter-scorer": [f"127.0.0.1:{scorer.port}"]}, rule_files=[rules]
        ) as prom,
    ):
        scraped = prom.scraped('up{job="segmenter-scorer"} == 1')  # values read from that one scrape
        assert prom.value("segmenter_drift_state", at=scraped) == 0.0
        assert prom.value("segmenter_drift_segment_psi", at=scraped) < 0.1
        # The rules have been evaluated for a while on the stable stream once this one fires
        # (no new events: consumed rate 0); the drift alert must not even be pending.
        wait_for(
            lambda: prom.firing("NoEventsConsumed"), timeout=60, what="rule evaluation on the stable stream"
        )
        assert [a for a in prom.alerts() if a["labels"]["alertname"].startswith("SegmentDrift")] == []

        monitor.observe([0] * 1000, [{"spend": 10_000.0}] * 1000)  # one segment, customers spending far more
        metrics.set_drift(monitor.snapshot())
        wait_for(lambda: prom.firing("SegmentDriftHigh"), timeout=60, what="SegmentDriftHigh firing")

        scraped = prom.scraped("segmenter_drift_state")
        assert prom.value("segmenter_drift_state", at=scraped) == 2.0
        assert prom.value("segmenter_drift_segment_psi", at=scraped) > 0.25
        assert prom.value('segmenter_drift_feature_psi{feature="spend"}', at=scraped) > 0.25
        (alert,) = [a for a in prom.alerts("firing") if a["labels"]["alertname"] == "SegmentDriftHigh"]
        assert alert["labels"]["instance"] == f"127.0.0.1:{scorer.port}"
        assert alert["labels"]["severity"] == "warning"


@pytest.mark.slow
def test_every_dashboard_expression_is_valid_promql_for_real_prometheus(tmp_path):
    from test_dashboard import DASHBOARD, expressions

    metrics = ScorerMetrics(CollectorRegistry())
    metrics.observe_batch(consumed=10, valid=9, invalid={"not_json": 1}, dead_lettered=1)
    with (
        MetricsServer(metrics.registry, Readiness(), host="127.0.0.1", port=0) as scorer,
        PrometheusServer(tmp_path, {"segmenter-scorer": [f"127.0.0.1:{scorer.port}"]}) as prom,
    ):
        wait_for(
            lambda: prom.value("segmenter_events_consumed_total") == 10.0, timeout=60, what="first scrape"
        )
        for _, expr in expressions(json.loads(DASHBOARD.read_text())):
            if expr.startswith("label_values("):
                continue  # a Grafana templating function, not PromQL
            prom.query(expr.replace("$job", ".+"))  # raises on a PromQL error
        with pytest.raises(urllib.error.HTTPError, match="400"):
            prom.query("sum(rate(segmenter_events_consumed_total[1m])")
