"""The Grafana dashboard parses, and every PromQL expression in it uses only metrics the scorer exports.

A renamed metric otherwise leaves a panel silently empty.
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumer.metrics import ScorerMetrics

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "segmenter.json"
# Series Prometheus makes itself: target health and the alert state.
BUILTIN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "info": ("_info",),
}
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}


def exported_names():
    families = ScorerMetrics(CollectorRegistry()).registry.collect()
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b", "", expr)
    names = re.findall(r"[a-zA-Z_:][\w:]*(?!\s*\(|[\w:])", expr)
    return {name for name in names if name not in NOT_METRICS}


def expressions(dashboard):
    found = []
    for panel in dashboard["panels"]:
        found += [(panel["title"], t["expr"]) for t in panel.get("targets", [])]
    found += [(a["name"], a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    found += [
        (v["name"], v["query"]["query"]) for v in dashboard["templating"]["list"] if v["type"] == "query"
    ]
    return found


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def test_the_extractor_finds_metric_names_and_nothing_else():
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(segmenter_x_seconds_bucket{job=~"$job", le!="1"}[5m])))'
    )
    assert metric_names(expr) == {"segmenter_x_seconds_bucket"}
    assert metric_names("sum(a_total) / ignoring(segment) group_left sum(b) > bool 1e3") == {"a_total", "b"}
    assert metric_names("label_values(segmenter_y_total, job)") == {"segmenter_y_total"}


def test_every_expression_references_only_exported_metrics(dashboard):
    exported = exported_names() | BUILTIN
    unknown = {
        (title, name)
        for title, expr in expressions(dashboard)
        for name in metric_names(expr)
        if name not in exported
    }
    assert unknown == set()


def test_every_panel_has_a_query_and_the_key_signals_are_on_the_dashboard(dashboard):
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert [p["title"] for p in panels if not p.get("targets")] == []
    used = set().union(*(metric_names(expr) for _, expr in expressions(dashboard)))
    for name in (
        "segmenter_events_consumed_total",
        "segmenter_events_dead_lettered_total",
        "segmenter_consumer_lag_records",
        "segmenter_end_to_end_latency_seconds_bucket",
        "segmenter_scoring_latency_seconds_bucket",
        "segmenter_segment_share",
        "segmenter_drift_segment_psi",
        "segmenter_drift_state",
        "segmenter_state_restore_duration_seconds_sum",
        "segmenter_model_info",
        # Issue 12, time: stream time per partition, ageing ticks, state TTL.
        "segmenter_stream_time_lag_seconds",
        "segmenter_ticks_total",
        "segmenter_ageing_updates_total",
        "segmenter_state_expired_total",
    ):
        assert name in used


def test_drift_panels_draw_the_monitor_thresholds(dashboard):
    psi = next(p for p in dashboard["panels"] if p["title"] == "Segment drift: PSI")
    steps = [s["value"] for s in psi["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 0.1, 0.25]


def test_the_shadow_model_row_draws_its_comparison_and_its_own_drift(dashboard):
    titles = [p["title"] for p in dashboard["panels"]]
    row = titles.index("Shadow model")
    assert dashboard["panels"][row]["type"] == "row"
    used = set().union(
        *(metric_names(t["expr"]) for p in dashboard["panels"][row + 1 :] for t in p.get("targets", []))
    )
    assert {
        "segmenter_shadow_agreement_ratio",
        "segmenter_shadow_adjusted_rand_index",
        "segmenter_shadow_transitions",
        "segmenter_shadow_drift_segment_psi",
        "segmenter_shadow_drift_state",
        "segmenter_shadow_info",
    } <= used


def test_stream_time_lag_is_drawn_per_partition_in_seconds(dashboard):
    lag = next(p for p in dashboard["panels"] if p["title"] == "Stream time lag by partition")
    (target,) = lag["targets"]
    assert "segmenter_stream_time_lag_seconds" in target["expr"]
    assert "by (partition)" in target["expr"]
    assert lag["fieldConfig"]["defaults"]["unit"] == "s"


def test_panel_ids_are_unique_and_the_datasource_is_the_provisioned_one(dashboard):
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text())["datasources"][0][
        "uid"
    ]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {p["datasource"]["uid"] for p in panels} == {provisioned}


def test_dashboard_provider_loads_from_its_own_directory():
    provider = yaml.safe_load((GRAFANA / "dashboards" / "dashboards.yml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/dashboards")
