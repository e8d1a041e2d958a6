"""Scale the scorer 1 → 2 → 1 while events keep arriving: the result equals a single-instance run.

Instance A starts alone; B joins while a new part of the stream is being produced; B leaves (clean
stop) while the next part is produced; A finishes. Exactly-once, so the ``read_committed`` output may
not show any event's effect twice across the hand-overs either.
"""

from __future__ import annotations

import threading

import pytest
from scorer_fixtures import final_updates, reference_run, same_records
from scorer_process import changelog_states, committed_total, read, repeated_effects, topics_named
from waiting import wait_for

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.runner import RunnerSettings, ScorerRunner

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]


class Instance:
    """A scorer in a thread, with a stop switch; its exception, if any, is kept for the assertions."""

    def __init__(self, backend, settings: RunnerSettings, model) -> None:
        self.runner = ScorerRunner(backend, settings, model)
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=settings.instance_id)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run(self.stop)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure.append(exc)

    def owns(self) -> list[int]:
        return self.runner.store.partitions()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def test_scale_one_two_one_mid_stream(kafka, unique_name, group_id, model_source, stream):
    bootstrap = kafka.bootstrap_servers
    backend = make_backend("kafka-python", ClientConfig(bootstrap))
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    quarter = len(stream) // 4
    parts = [stream[:quarter], stream[quarter : 2 * quarter], stream[2 * quarter : 3 * quarter]]
    parts.append(stream[3 * quarter :])
    base = RunnerSettings(
        group_id=group_id, topics=topics, batch_size=10, poll_timeout_s=0.2, exactly_once=True
    )

    def produce(pairs) -> None:
        with backend.producer() as producer:
            for key, value in pairs:
                producer.produce(topics.input, key, value)
            producer.flush()

    def committed() -> int:
        return committed_total(bootstrap, group_id)

    produce(parts[0])
    a = Instance(backend, base, model_source)
    b = None
    try:
        wait_for(lambda: committed() >= quarter // 2, what="A scoring alone")
        b = Instance(backend, RunnerSettings(**{**vars(base), "instance_id": "scorer-1"}), model_source)
        produce(parts[1])  # arrives while the group rebalances onto two members
        wait_for(
            lambda: a.owns() and b.owns(), what=f"A and B both owning partitions ({a.owns()}, {b.owns()})"
        )
        assert not set(a.owns()) & set(b.owns()), "a partition owned twice"
        produce(parts[2])
        wait_for(
            lambda: b.failure or (b.runner.summary.events > 0 and committed() >= 3 * quarter),
            what="A and B both scoring",
        )
        b.finish()  # leaves the group: A takes B's partitions back, restoring their state
        produce(parts[3])  # arrives while the group rebalances back onto A
        wait_for(lambda: a.failure or committed() >= len(stream), timeout=90, what="the whole stream")
        assert len(a.owns()) == 3, "A owns every partition again"
    finally:
        a.finish()
        if b is not None:
            b.finish()
    assert not a.failure, f"instance A died: {a.failure}"
    assert not b.failure, f"instance B died: {b.failure}"
    assert a.runner.summary.restored > 0, "A restored the state B had built"

    expected_updates, expected_states = reference_run(model_source, read(backend, topics.input))
    assert changelog_states(read(backend, topics.changelog)) == expected_states
    outputs = [r.value for r in read(backend, topics.output)]
    assert final_updates(outputs) == expected_updates
    assert not repeated_effects(outputs), "read_committed shows an event's effect twice"
    assert same_records(model_source, backend, topics), "a 1 -> 2 -> 1 rebalance keeps every record"
    assert sorted(r.value for r in read(backend, topics.dead_letter)) == sorted(
        value for key, value in stream if key == b"bad"
    )
