"""Restore and offsets rules on the in-memory backend (README, "Delivery guarantees and state").

A bad changelog entry is quarantined (or, with ``strict_restore``, refuses the start); state whose
applied offsets are beyond the input's end refuses the start unless ``reset_state``; events dropped
as duplicates are counted and logged; no NaN reaches an output record.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from scorer_process import read, topics_named

from consumer.backends import TopicSpec, make_backend
from consumer.backends.memory import MemoryBroker
from consumer.metrics import ScorerMetrics
from consumer.model_source import ModelSource
from consumer.outputs import encode_json
from consumer.runner import RunnerSettings, ScorerRunner
from consumer.state_restore import CorruptStateError, StateAheadOfInputError
from consumer.state_store import ONLINE_MODEL_KEY, Entry
from model.events import Event, encode_event
from model.features import EVENT_FEATURE_SPEC, features, initialize, update
from model.online import OnlineKMeans

DAY = 86_400_000
T0 = 1_704_067_200_000


def _purchase(customer: str, n: int) -> bytes:
    return encode_event(Event(f"{customer}-{n}", customer, "purchase", T0 + n * DAY, amount=10.0 + n))


def _entry(last_offset: int) -> bytes:
    state = update(initialize(), Event("old", "c1", "purchase", T0, amount=5.0))
    return Entry(state, last_offset=last_offset, last_segment=0).to_bytes()


class Setup:
    """Fresh topics on a memory broker, with changelog and input records placed by partition."""

    def __init__(self, name: str) -> None:
        self.backend = make_backend("memory", broker=MemoryBroker())
        self.topics = topics_named(name)
        self.backend.ensure_topics([TopicSpec(self.topics.input, 3), TopicSpec(self.topics.changelog, 3)])

    def changelog(self, partition: int, *pairs) -> None:
        self._produce(self.topics.changelog, partition, pairs)

    def events(self, partition: int, *pairs) -> None:
        self._produce(self.topics.input, partition, pairs)

    def _produce(self, topic: str, partition: int, pairs) -> None:
        with self.backend.producer() as producer:
            for key, value in pairs:
                producer.produce(topic, key, value, partition=partition)

    def last_entries(self) -> dict[bytes, Entry]:
        """The compacted view of the changelog: the last valid entry per key."""
        last = {r.key: r.value for r in read(self.backend, self.topics.changelog)}
        return {k: Entry.from_bytes(v) for k, v in last.items() if v and not k.startswith(b"\x00")}

    def run(self, model, **settings) -> ScorerRunner:
        metrics = ScorerMetrics()
        runner = ScorerRunner(
            self.backend,
            RunnerSettings(group_id="g", topics=self.topics, exit_when_idle=True, **settings),
            model,
            metrics=metrics,
        )
        runner.run()
        return runner


def sample(runner: ScorerRunner, name: str, **labels) -> float | None:
    return runner.metrics.registry.get_sample_value(name, labels)


def test_a_bad_changelog_entry_is_quarantined_and_the_customer_starts_fresh(model_source, caplog):
    setup = Setup("quarantine")
    setup.changelog(0, (b"c1", _entry(1)), (b"cGarbage", b"garbage"), (b"\xff\xfe", _entry(1)))
    setup.events(0, *[(b"cGarbage", _purchase("cGarbage", n)) for n in range(2)])
    with caplog.at_level(logging.ERROR, logger="consumer.partition_restore"):
        runner = setup.run(model_source)
    assert sample(runner, "segmenter_restore_invalid_total", partition="0") == 2
    lines = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert any("partition 0, offset 1, key 'cGarbage'" in line for line in lines), lines
    assert any("partition 0, offset 2, key b'\\xff\\xfe'" in line for line in lines), lines
    assert runner.summary.valid == 2, "the quarantined customer's events are not dropped"
    fresh = setup.last_entries()[b"cGarbage"]
    assert (fresh.last_offset, features(fresh.state, 0)["frequency"]) == (1, 2.0), "started fresh"


def test_strict_restore_refuses_to_start_naming_partition_offset_and_key(model_source):
    setup = Setup("strict")
    setup.changelog(2, (b"cGarbage", b"garbage"))
    with pytest.raises(CorruptStateError, match=r"changelog partition 2, offset 0, key 'cGarbage'"):
        setup.run(model_source, strict_restore=True)


def test_strict_restore_accepts_a_bad_value_repaired_by_a_later_tombstone(model_source):
    setup = Setup("repaired")
    setup.changelog(0, (b"cGarbage", b"garbage"), (b"cGarbage", None))
    runner = setup.run(model_source, strict_restore=True)
    assert sample(runner, "segmenter_restore_invalid_total", partition="0") is None


def test_state_beyond_the_input_end_refuses_the_start_and_reset_state_discards_it(model_source, caplog):
    setup = Setup("ahead")
    setup.changelog(1, (b"c1", _entry(10**12)), (ONLINE_MODEL_KEY, b"centres"))
    setup.events(1, *[(b"c1", _purchase("c1", n)) for n in range(3)])
    with pytest.raises(StateAheadOfInputError, match=r"ahead-in\[1\] ends at offset 3.*--reset-state"):
        setup.run(model_source)

    runner = setup.run(model_source, reset_state=True)
    assert (runner.summary.valid, runner.summary.duplicates) == (3, 0), "no event dropped as duplicate"
    tombstones = [r for r in read(setup.backend, setup.topics.changelog) if r.value is None]
    assert sorted(r.key for r in tombstones) == [ONLINE_MODEL_KEY, b"c1"]
    # The discard is durable: the next start needs no flag and finds the new state.
    assert setup.run(model_source).summary.restored > 0
    assert setup.last_entries()[b"c1"].last_offset == 2


def test_events_dropped_as_duplicates_are_counted_and_logged_by_partition(model_source, caplog):
    setup = Setup("duplicates")
    setup.changelog(0, (b"c1", _entry(5)))
    setup.events(0, *[(b"c1", _purchase("c1", n)) for n in range(8)])
    with caplog.at_level(logging.WARNING, logger="consumer.duplicates"):
        runner = setup.run(model_source)
    assert runner.summary.duplicates == 6
    assert sample(runner, "segmenter_events_duplicate_total", kind="offset") == 6
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "consumer.duplicates"]
    assert "dropped 6 events of input partition 0 as duplicates (offset)" in warning


def test_a_bad_online_checkpoint_is_reseeded_and_no_nan_reaches_an_output(model_dir, caplog):
    source = ModelSource(model_dir, expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash(), wrap=OnlineKMeans)
    river = source()
    k, d = river.base.centroids_scaled.shape
    good = river._checkpoint(river._seed_centres, 0)
    poisoned = good[: -8 * k * d] + np.full(k * d, np.nan).astype("<f8").tobytes()
    setup = Setup("checkpoint")
    setup.changelog(0, (ONLINE_MODEL_KEY, poisoned))
    setup.changelog(1, (ONLINE_MODEL_KEY, b"garbage"))
    for partition in (0, 1):
        setup.events(
            partition, *[(f"c{partition}".encode(), _purchase(f"c{partition}", n)) for n in range(3)]
        )
    with caplog.at_level(logging.WARNING):
        runner = setup.run(source)
    reseeded = [r.getMessage() for r in caplog.records if "reseeded from the artifact" in r.getMessage()]
    assert any("partition 0" in m and "not all finite" in m for m in reseeded), reseeded
    assert any("partition 1" in m and "shorter than its header" in m for m in reseeded), reseeded
    assert runner.summary.valid == 6
    for record in read(setup.backend, setup.topics.output):
        json.loads(record.value, parse_constant=_no_constants)  # NaN/Infinity would raise here


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan")])
def test_non_finite_floats_become_null_never_nan(bad):
    body = {"customer_id": "c1", "distance": bad, "nested": {"d": [1.0, bad]}}
    decoded = json.loads(encode_json(body), parse_constant=_no_constants)
    assert decoded == {"customer_id": "c1", "distance": None, "nested": {"d": [1.0, None]}}


def test_a_checkpoint_of_another_model_or_shape_is_refused_by_check_checkpoint(model_source):
    river = OnlineKMeans(model_source(), learning_rate=0.01)
    good = river._checkpoint(river._seed_centres, 0)
    river.check_checkpoint(good)
    other = OnlineKMeans(model_source(), learning_rate=0.01)
    other.base = type("Other", (), {"model_id": "another", "centroids_scaled": river._seed_centres})()
    with pytest.raises(ValueError, match="another model"):
        river.check_checkpoint(other._checkpoint(river._seed_centres, 5))
    with pytest.raises(ValueError, match="does not fit"):
        river.check_checkpoint(good[:-8])


def _no_constants(token: str):
    raise AssertionError(f"{token} in an output record is not JSON")
