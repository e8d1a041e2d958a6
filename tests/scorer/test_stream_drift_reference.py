"""The manifest's stream drift reference describes what the scorer emits, so a replay of the training
history through the scorer is "ok" against it, while a stream of customers spending 20x is an alert."""

from __future__ import annotations

import pytest
from scorer_fixtures import as_records

from consumer.processor import Processor, Topics
from consumer.state_store import StateStore
from model.artifact import load_artifact
from model.events import encode_event
from model.monitor import DriftMonitor, DriftReport, DriftThresholds, WindowSpec
from model.synthetic import synthetic_events
from training.sources import from_events
from training.train import TrainOptions, train

N_CUSTOMERS = 1500
SAMPLE_ROWS = 5000  # well below the history's event count: the reference is a genuine sample
WHOLE_REPLAY = WindowSpec(max_count=10**6)
THRESHOLDS = DriftThresholds()


@pytest.fixture(scope="module")
def history():
    return sorted(synthetic_events(N_CUSTOMERS, seed=21), key=lambda e: (e.ts_ms, e.event_id))


@pytest.fixture(scope="module")
def model(history, tmp_path_factory):
    out = tmp_path_factory.mktemp("drift-model")
    data = from_events(history, "synthetic", seed=3, stream_sample_rows=SAMPLE_ROWS)
    assert sum(len(events) for events in data.stream_sample.values()) <= SAMPLE_ROWS < len(history)
    train(data, out, TrainOptions(k_max=5, stability_rounds=2, report=False, compare_sample=2000))
    return load_artifact(out)


def replay(model, events, batch_size: int = 200) -> list[tuple[list[int], list[dict]]]:
    """Run the events through the streaming processor: (segment ids, feature rows) of every batch."""
    store = StateStore()
    store.assign(0)
    processor = Processor(store, lambda: model, Topics())
    records = as_records([(e.customer_id.encode(), encode_event(e)) for e in events])
    batches = []
    for start in range(0, len(records), batch_size):
        result = processor.process(records[start : start + batch_size])
        processor.commit_entries(result)
        batches.append(([s.segment_id for s in result.scored], [s.features for s in result.scored]))
    return batches


def drift(monitor: DriftMonitor, batches) -> DriftReport:
    for segment_ids, rows in batches:
        monitor.observe(segment_ids, rows)
    return monitor.snapshot()


def from_manifest(model) -> DriftMonitor:
    return DriftMonitor.from_manifest(model.manifest, thresholds=THRESHOLDS, window=WHOLE_REPLAY)


def test_manifest_holds_a_per_event_stream_reference(model):
    manifest = model.manifest
    assert sum(manifest["stream_segment_distribution"]) == pytest.approx(1, abs=1e-3)
    assert set(manifest["stream_feature_baselines"]) == set(model.spec.feature_names)
    reference = manifest["stream_reference"]
    assert reference["rows"] <= reference["events"] <= SAMPLE_ROWS
    assert reference["customers"] < N_CUSTOMERS
    monitor = DriftMonitor.from_manifest(manifest)
    assert monitor.expected.tolist() == pytest.approx(manifest["stream_segment_distribution"], abs=1e-3)


def test_replaying_the_training_history_is_not_drift(model, history):
    report = drift(from_manifest(model), replay(model, history))
    assert report.samples > THRESHOLDS.min_samples
    assert report.psi < THRESHOLDS.psi_warn, report.to_dict()
    assert report.state == "ok", report.reasons


def test_the_same_customers_spending_20x_is_an_alert(model, history):
    shifted = [e if e.amount is None else e._replace(amount=e.amount * 20) for e in history]
    report = drift(from_manifest(model), replay(model, shifted))
    assert report.psi >= THRESHOLDS.psi_alert, report.to_dict()
    assert report.state == "alert"
    assert report.feature_psi["monetary_total"] >= THRESHOLDS.feature_psi_alert


def test_the_per_customer_training_shares_describe_the_stream_worse(model, history):
    """Why the stream reference exists: one row per customer is not what the stream emits."""
    batches = replay(model, history)
    against_stream = drift(from_manifest(model), batches)
    training_only = {k: v for k, v in model.manifest.items() if not k.startswith("stream_")}
    against_training = drift(DriftMonitor.from_manifest(training_only, window=WHOLE_REPLAY), batches)
    assert against_training.expected_shares != against_stream.expected_shares
    assert against_training.psi > against_stream.psi
    assert against_training.state != "ok", "a stable stream would raise a false drift warning"
