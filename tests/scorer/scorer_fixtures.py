"""Fixtures and helpers of the streaming-scorer tests: a trained model, a stream with garbage in it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from consumer.backends.abstract import Record
from consumer.model_source import ModelSource
from consumer.processor import Processor, Topics
from consumer.replay import INVALID_SAMPLES
from consumer.state_store import StateStore
from model.events import encode_event
from model.features import EVENT_FEATURE_SPEC
from model.synthetic import synthetic_events
from training.sources import from_events, load_table
from training.train import TrainOptions, train

N_CUSTOMERS = 150
EXAMPLES = Path(__file__).resolve().parents[2] / "training" / "examples"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A small model trained on synthetic customers with demographics (so every feature is used)."""
    out = tmp_path_factory.mktemp("model")
    data = from_events(synthetic_events(2000, seed=11), "synthetic:2000")
    train(data, out, TrainOptions(k_max=5, stability_rounds=2, report=False, compare_sample=2000))
    return out


@pytest.fixture(scope="session")
def retrained_model_dir(tmp_path_factory):
    """Another model of ``model_dir``'s input schema (other seed, k=3): a retrain to swap to."""
    out = tmp_path_factory.mktemp("retrained-model")
    data = from_events(synthetic_events(2000, seed=11), "synthetic:2000")
    train(data, out, TrainOptions(k_min=3, k_max=3, seed=4, stability_rounds=2, report=False))
    return out


@pytest.fixture(scope="session")
def table_model_dir(tmp_path_factory):
    """A model trained from the README's customer table (4 numeric, 2 categorical columns)."""
    out = tmp_path_factory.mktemp("table-model")
    data = load_table(EXAMPLES / "customers.csv", EXAMPLES / "customers.spec.json", 0.2, seed=0)
    train(data, out, TrainOptions(k_max=4, stability_rounds=2, report=False))
    return out


@pytest.fixture(scope="session")
def shoppers_model_dir(tmp_path_factory):
    """A model of the shoppers example (12 columns: the aggregator's age, income and gender, and nine
    table columns), k fixed at the 4 its data is drawn from, no report: a few seconds."""
    out = tmp_path_factory.mktemp("shoppers-model")
    data = load_table(EXAMPLES / "shoppers.csv", EXAMPLES / "shoppers.spec.json", 0.2, seed=0)
    train(data, out, TrainOptions(k_min=4, k_max=4, stability_rounds=2, report=False))
    return out


@pytest.fixture(scope="session")
def model_source(model_dir):
    return ModelSource(model_dir, expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash())


@pytest.fixture(scope="session")
def stream() -> list[tuple[bytes | None, bytes]]:
    """(key, value) records in event-time order: valid synthetic events plus one bad one in 40."""
    events = sorted(synthetic_events(N_CUSTOMERS, seed=5), key=lambda e: (e.ts_ms, e.event_id))
    out: list[tuple[bytes | None, bytes]] = []
    for n, event in enumerate(events, start=1):
        out.append((event.customer_id.encode(), encode_event(event)))
        if n % 40 == 0:
            out.append((b"bad", INVALID_SAMPLES[(n // 40) % len(INVALID_SAMPLES)]))
    return out


def as_records(pairs: Sequence[tuple[bytes | None, bytes]], topic: str = "events", partition: int = 0):
    return [Record(topic, partition, offset, key, value) for offset, (key, value) in enumerate(pairs)]


def changelog_records(outputs, partition: int = 0) -> list[Record]:
    """Changelog outputs of a batch as the records a restore reads back, offsets in order."""
    return [Record("state", partition, n, o.key, o.value) for n, o in enumerate(outputs)]


def valid_count(pairs) -> int:
    return sum(1 for key, _ in pairs if key != b"bad")


# Fields that describe one run's emission history (batch cuts, wall clock, partition), not the segment.
RUN_FIELDS = {"scored_at", "source", "previous_segment_id", "changed"}


def final_updates(values: Sequence[bytes]) -> dict[str, dict]:
    """The compacted view of segment updates: the last per customer, without per-run fields."""
    latest: dict[str, dict] = {}
    for value in values:
        body = json.loads(value)
        latest[body["customer_id"]] = {k: v for k, v in body.items() if k not in RUN_FIELDS}
    return latest


def reference_run(model, pairs_or_records, batch_size: int = 10_000):
    """The uninterrupted, single-process result: (final updates, final state entries).

    Give (key, value) pairs for one partition, or the records a Kafka run read (their partitions and
    offsets): each partition has its own stream time, so a Kafka run is compared with a reference
    over the same partitions.
    """
    updates, store = reference_outputs(model, pairs_or_records, batch_size)
    states = {cid: entry.state for cid, entry in store.customers()}
    return final_updates([value for _, value in updates if value is not None]), states


def reference_outputs(model, pairs_or_records, batch_size: int = 10_000):
    """Every (key, value) the uninterrupted run publishes on the output topic, in order, and its store."""
    records = list(pairs_or_records)
    if records and not isinstance(records[0], Record):
        records = as_records(records)
    store = StateStore()
    for partition in {r.partition for r in records} | {0}:
        store.assign(partition)
    processor = Processor(store, model, Topics())
    updates: list[tuple[bytes, bytes | None]] = []
    for start in range(0, len(records), batch_size):
        result = processor.process(records[start : start + batch_size])
        processor.commit_entries(result)
        updates += [(o.key, o.value) for o in result.outputs if o.topic == Topics().output]
    return updates, store


def updates_by_customer(pairs) -> dict[bytes, list[dict | None]]:
    """Each customer's updates (``None``: a tombstone) in order, without the wall-clock ``scored_at``:
    what "record for record" compares (one key's records keep their order on a Kafka partition)."""
    by_key: dict[bytes, list[dict | None]] = {}
    for key, value in pairs:
        body = None if value is None else json.loads(value)
        if body is not None:
            body.pop("scored_at")
        by_key.setdefault(key, []).append(body)
    return by_key


def customer_entries(records) -> dict[str, bytes]:
    """The compacted view of a changelog's customer entries (NUL-prefixed keys are the partition's
    clock and online-model records, not customers)."""
    return {r.key.decode(): r.value for r in records if not r.key.startswith(b"\x00")}


def same_records(model, backend, topics: Topics) -> bool:
    """Whether the output topic, as a read_committed reader sees it, holds exactly the records an
    uninterrupted run over the same input partitions publishes: per customer, the same updates in the
    same order (every field but ``scored_at``), tombstones included, nothing more."""
    from scorer_process import read

    expected, _ = reference_outputs(model, read(backend, topics.input))
    seen = [(r.key, r.value) for r in read(backend, topics.output)]
    return len(seen) == len(expected) and updates_by_customer(seen) == updates_by_customer(expected)
