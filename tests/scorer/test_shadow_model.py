"""A shadow model on the running scorer: compared on every scored row, published nowhere.

In memory, a shadow identical to the live model agrees on every customer. On a real broker, with a
real Prometheus scraping the scorer, a different retrain of the same schema shows its agreement, ARI,
transitions and own drift as scraped gauges, and the output topic and changelog hold exactly what a
run without any shadow publishes. A shadow that cannot load stops the start with one line (exit 2).
"""

from __future__ import annotations

import logging
import math
import threading

import pytest
from prometheus_server import PrometheusServer
from scorer_fixtures import reference_run, same_records
from scorer_process import changelog_states, read, replayed
from test_cli_mistakes import last_line, segmenter
from waiting import wait_for

from consumer.backends import ClientConfig, make_backend
from consumer.backends.memory import MemoryBroker
from consumer.http import MetricsServer, Readiness
from consumer.metrics import ScorerMetrics
from consumer.model_source import ModelSource
from consumer.runner import RunnerSettings, ScorerRunner

WINDOW = 100_000  # larger than any run here: the window holds every scored row


def test_a_shadow_identical_to_the_live_model_agrees_everywhere(model_source, model_dir, stream):
    backend = make_backend("memory", broker=MemoryBroker())
    topics = replayed(backend, "shadow-same", stream)
    metrics = ScorerMetrics()
    settings = RunnerSettings(
        group_id="g-shadow-same", topics=topics, batch_size=100, exit_when_idle=True, drift_every_s=0,
        drift_window=WINDOW,
    )  # fmt: skip
    shadow = ModelSource(model_dir)
    ScorerRunner(backend, settings, model_source, metrics=metrics, shadow=shadow).run()

    value = metrics.registry.get_sample_value
    scored = sum(s for s in _samples(metrics, "segmenter_segment_assignments_total").values())
    assert scored > 0
    assert value("segmenter_shadow_window_samples") == scored
    assert value("segmenter_shadow_agreement_ratio") == 1.0
    assert value("segmenter_shadow_adjusted_rand_index") == 1.0
    transitions = _samples(metrics, "segmenter_shadow_transitions")
    assert all(live == shadow for live, shadow in transitions), transitions
    assert value("segmenter_shadow_info", {"model_id": model_source().model_id}) == 1.0
    assert same_records(model_source, backend, topics), "the output is a run's without a shadow"


class BrokenCandidate:
    """A shadow source whose candidate (the live model's manifest) fails on every batch it scores."""

    def __init__(self, live) -> None:
        self.model_id, self.manifest = "broken-candidate", live.manifest

    def __call__(self):
        return self

    def maybe_reload(self) -> bool:
        return False

    def score_arrays(self, rows):
        raise ValueError(f"cannot score {len(rows)} rows")


def test_a_shadow_that_fails_to_score_stops_nothing(model_source, stream, caplog):
    backend = make_backend("memory", broker=MemoryBroker())
    topics = replayed(backend, "shadow-broken", stream)
    metrics = ScorerMetrics()
    settings = RunnerSettings(
        group_id="g-shadow-broken", topics=topics, batch_size=100, exit_when_idle=True, drift_every_s=0
    )
    shadow = BrokenCandidate(model_source())
    with caplog.at_level(logging.ERROR, logger="consumer.telemetry"):
        summary = ScorerRunner(backend, settings, model_source, metrics=metrics, shadow=shadow).run()

    assert summary.events == len(stream)
    assert same_records(model_source, backend, topics)
    assert metrics.registry.get_sample_value("segmenter_shadow_window_samples") == 0
    failures = [r.getMessage() for r in caplog.records if "shadow model" in r.getMessage()]
    assert len(failures) == 1, "one line per candidate, not one per batch"
    assert failures[0].startswith("the shadow model broken-candidate failed to score a batch: ValueError")


def _samples(metrics: ScorerMetrics, name: str) -> dict[tuple[str, ...], float]:
    """Label values (in label order) -> value of every sample of ``name`` in the registry."""
    return {
        tuple(s.labels.values()): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


@pytest.mark.kafka
@pytest.mark.slow
def test_the_shadow_gauges_are_scraped_and_nothing_of_the_shadow_is_published(
    kafka, unique_name, group_id, model_source, retrained_model_dir, stream, tmp_path
):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = replayed(backend, unique_name, stream)
    settings = RunnerSettings(
        group_id=group_id, topics=topics, batch_size=300, drift_every_s=0.2, drift_window=WINDOW
    )
    metrics = ScorerMetrics()
    shadow = ModelSource(retrained_model_dir)
    runner = ScorerRunner(
        backend, settings, model_source, metrics=metrics, readiness=Readiness(), shadow=shadow
    )
    stop = threading.Event()
    scorer = threading.Thread(target=runner.run, args=(stop,))
    with MetricsServer(metrics.registry, runner.readiness, port=0) as server:
        scorer.start()
        try:
            with PrometheusServer(tmp_path, {"segmenter-scorer": [f"127.0.0.1:{server.port}"]}) as prom:
                wait_for(lambda: runner.summary.events >= len(stream), timeout=120, what="the stream scored")
                scored = (
                    runner.summary.updates
                    - runner.summary.ageing_updates
                    - runner.summary.model_change_updates
                )
                # every value below is read from the scrape that saw the whole shadow window
                at = prom.scraped(f"segmenter_shadow_window_samples == {scored}")
                transitions = {
                    (r["metric"]["live"], r["metric"]["shadow"]): float(r["value"][1])
                    for r in prom.query("segmenter_shadow_transitions", at)
                }
                agreement = prom.value("segmenter_shadow_agreement_ratio", at)
                ari = prom.value("segmenter_shadow_adjusted_rand_index", at)
                shadow_psi = prom.value("segmenter_shadow_drift_segment_psi", at)
                shadow_state = prom.value("segmenter_shadow_drift_state", at)
                info = prom.query("segmenter_shadow_info", at)
                live_counts = {
                    r["metric"]["segment"]: float(r["value"][1])
                    for r in prom.query("segmenter_segment_assignments_total", at)
                }
        finally:
            stop.set()
            scorer.join(timeout=60)

    live_model, shadow_model = model_source(), shadow()
    assert sum(transitions.values()) == scored
    assert {live for live, _ in transitions} <= {str(s) for s in live_model.segment_ids}
    assert {s for _, s in transitions} <= {str(s) for s in shadow_model.segment_ids}
    for segment, count in live_counts.items():  # the live side of every pair is what was published
        assert sum(n for (live, _), n in transitions.items() if live == segment) == count
    assert agreement == pytest.approx(sum(n for (a, b), n in transitions.items() if a == b) / scored)
    assert agreement < 1.0, "another model (k=3, other seed) disagrees somewhere"
    assert 0.0 < ari < 1.0, "two clusterings of the same customers: related, not identical"
    assert math.isfinite(shadow_psi)
    assert shadow_psi >= 0.0
    assert shadow_state in (0.0, 1.0, 2.0)
    assert [r["metric"]["model_id"] for r in info] == [shadow_model.model_id]

    assert same_records(model_source, backend, topics), "the output is a run's without a shadow"
    _, expected_states = reference_run(model_source, read(backend, topics.input))
    assert changelog_states(read(backend, topics.changelog)) == expected_states


def test_a_shadow_that_cannot_load_stops_the_start_with_one_line(model_dir, tmp_path):
    empty = tmp_path / "candidate"
    empty.mkdir()
    done = segmenter(
        "consume", "--model-dir", str(model_dir), "--shadow-model-dir", str(empty), "--metrics-port", "0",
        "--bootstrap-servers", "127.0.0.1:1",
    )  # fmt: skip
    assert done.returncode == 2
    line = last_line(done)
    assert "shadow model" in line
    assert str(empty) in line


def test_a_shadow_of_another_input_schema_is_refused(model_dir, table_model_dir):
    done = segmenter(
        "consume", "--model-dir", str(model_dir), "--shadow-model-dir", str(table_model_dir),
        "--metrics-port", "0", "--bootstrap-servers", "127.0.0.1:1",
    )  # fmt: skip
    assert done.returncode == 2
    assert "shadow model" in last_line(done)


def test_a_shadow_in_file_mode_is_refused_before_anything_loads(model_dir):
    done = segmenter(
        "consume", "--model-dir", str(model_dir), "--shadow-model-dir", str(model_dir), "--source", "-"
    )
    assert done.returncode == 2
    assert "--shadow-model-dir needs the Kafka scorer" in last_line(done)
