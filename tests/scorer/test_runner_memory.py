"""The runner's own decisions, on the in-memory backend: an aborted transaction is redone in place."""

from __future__ import annotations

from scorer_fixtures import final_updates, reference_run, same_records
from scorer_process import changelog_states, read, repeated_effects, replayed

from consumer.backends import TransactionAbortedError, make_backend
from consumer.backends.memory import MemoryBroker
from consumer.metrics import ScorerMetrics
from consumer.runner import RunnerSettings, ScorerRunner


class RefusingCommits:
    """A real in-memory producer whose first ``refusals`` commits the broker aborts."""

    def __init__(self, producer, refusals: int) -> None:
        self._producer = producer
        self.refusals = refusals

    def commit_transaction(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise TransactionAbortedError("injected: the coordinator aborted the transaction")
        self._producer.commit_transaction()

    def __getattr__(self, name):
        return getattr(self._producer, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._producer.close()


class AbortingBackend:
    """The memory backend, but its transactional producers see aborted commits."""

    def __init__(self, refusals: int) -> None:
        self._backend = make_backend("memory", broker=MemoryBroker())
        self.refusals = refusals
        self.producers: list[RefusingCommits] = []

    def producer(self, transactional_id=None, **tuning):
        producer = RefusingCommits(self._backend.producer(transactional_id, **tuning), self.refusals)
        self.producers.append(producer)
        return producer

    def __getattr__(self, name):
        return getattr(self._backend, name)


def test_an_aborted_transaction_is_redone_and_its_effects_are_seen_once(model_source, stream):
    backend = AbortingBackend(refusals=3)
    topics = replayed(backend, "aborts", stream)
    metrics = ScorerMetrics()
    settings = RunnerSettings(
        group_id="g-aborts", topics=topics, batch_size=100, exactly_once=True, exit_when_idle=True
    )
    runner = ScorerRunner(backend, settings, model_source, metrics=metrics)
    summary = runner.run()

    assert backend.producers[-1].refusals == 0, "the injected aborts happened"
    assert metrics.registry.get_sample_value("segmenter_transactions_total", {"result": "aborted"}) == 3
    assert summary.events == len(stream), "each event counted once, aborted batches not at all"
    expected_updates, expected_states = reference_run(model_source, read(backend, topics.input))
    outputs = [r.value for r in read(backend, topics.output)]
    assert final_updates(outputs) == expected_updates
    assert not repeated_effects(outputs), "read_committed shows no event's effect twice"
    assert same_records(model_source, backend, topics), "record for record"
    assert changelog_states(read(backend, topics.changelog)) == expected_states
