"""Restore on assignment: the state of newly assigned partitions, read back from the changelog.

Runs inside the rebalance callback, before a partition's first record is processed. Each partition's
changelog is judged by :mod:`consumer.state_restore` (last value per key): a bad entry is quarantined
(logged, counted) or, with ``strict``, refuses the start. The state's applied offsets are compared with
the input partition's end: state ahead of its input (the topic was recreated) refuses the start, or
with ``reset_state`` is tombstoned and the partition starts empty. An online-model checkpoint the
model cannot use is dropped (the model starts again from the artifact).

Before any of that, :func:`check_copartitioned` refuses a start whose input and changelog topics have
different partition counts: input partition p is restored from changelog partition p, so a mismatch
either leaves customers' state unread or fails to find the partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import closing

from consumer.backends.abstract import Backend, Consumer, TopicPartition
from consumer.http import Readiness
from consumer.metrics import ScorerMetrics
from consumer.state_restore import (
    JudgedPartition,
    RestoreRefusedError,
    StateAheadOfInputError,
    judge,
    refuse_corrupt,
)
from consumer.state_store import StateStore
from model.scoring import Scorer

log = logging.getLogger(__name__)


class NotCopartitionedError(RestoreRefusedError):
    """The input and changelog topics have different partition counts."""


def check_copartitioned(backend: Backend, input_topic: str, changelog: str) -> None:
    """Raise :class:`NotCopartitionedError` unless ``changelog`` has as many partitions as the input."""
    counts = backend.partition_counts([input_topic, changelog])
    if counts[input_topic] != counts[changelog]:
        raise NotCopartitionedError(
            f"input topic {input_topic!r} has {counts[input_topic]} partitions and changelog topic "
            f"{changelog!r} has {counts[changelog]}: state is restored partition by partition, so they "
            f"must match; point --changelog-topic at a new topic (it is created with "
            f"{counts[input_topic]}) or recreate {changelog!r} with {counts[input_topic]} partitions"
        )


class PartitionRestorer:
    """Restores assigned partitions into ``store`` from the ``changelog`` topic (module docstring)."""

    def __init__(
        self,
        backend: Backend,
        store: StateStore,
        model: Callable[[], Scorer],
        changelog: str,
        *,
        metrics: ScorerMetrics,
        readiness: Readiness,
        strict: bool = False,
        reset_state: bool = False,
    ) -> None:
        self.backend = backend
        self.store = store
        self.model = model
        self.changelog = changelog
        self.metrics = metrics
        self.readiness = readiness
        self.strict = strict
        self.reset_state = reset_state

    def on_assign(self, partitions: Sequence[TopicPartition], consumer: Consumer | None) -> tuple[int, float]:
        """Restore the partitions this instance does not hold yet; (changelog records, seconds)."""
        self.readiness.set_state_restored(False)
        started = time.perf_counter()
        fresh = [tp for tp in partitions if not self.store.owns(tp.partition)]
        ends = consumer.end_offsets(fresh) if fresh and consumer is not None else {}
        restored = sum(self.restore(tp, ends.get(tp)) for tp in fresh)
        seconds = time.perf_counter() - started
        log.info(
            "assigned %s; restored %d changelog records in %.3fs",
            [f"{tp.topic}[{tp.partition}]" for tp in partitions],
            restored,
            seconds,
        )
        self.readiness.set_state_restored(True)
        return restored, seconds

    def restore(self, tp: TopicPartition, input_end: int | None) -> int:
        """Restore one partition's state from its changelog partition; the records read."""
        changelog = TopicPartition(self.changelog, tp.partition)
        # Closed even when reading fails: an abandoned kafka-python reader hung the interpreter's exit.
        with closing(self.backend.read_partitions([changelog])) as records:
            judged = judge(tp.partition, records)
        for bad in judged.quarantined:
            where = {"partition": bad.partition, "offset": bad.offset, "key": bad.key}
            log.error("quarantined changelog entry: %s", bad, extra={**where, "reason": bad.reason})
            self.metrics.record_restore_invalid(tp.partition)
        if judged.quarantined and self.strict:
            raise refuse_corrupt(judged.quarantined)
        if input_end is not None and judged.max_applied_offset >= input_end:
            judged = self._state_ahead_of_input(tp, input_end, judged)
        self._check_checkpoint(judged)
        return self.store.restore(judged)

    def _check_checkpoint(self, judged: JudgedPartition) -> None:
        """Drop an online-model checkpoint the model cannot use: it starts again from the artifact."""
        if judged.checkpoint is None:
            return
        try:
            self.model().check_checkpoint(judged.checkpoint)
        except ValueError as error:
            log.warning(
                "changelog partition %d: online model checkpoint reseeded from the artifact: %s",
                judged.partition,
                error,
                extra={"partition": judged.partition},
            )
            judged.checkpoint = None

    def _state_ahead_of_input(self, tp: TopicPartition, end: int, judged: JudgedPartition) -> JudgedPartition:
        """Refuse, or with ``reset_state`` tombstone the partition's changelog and start it empty."""
        where = (
            f"input {tp.topic}[{tp.partition}] ends at offset {end} but its state in changelog "
            f"{self.changelog}[{tp.partition}] has applied offset {judged.max_applied_offset}"
        )
        if not self.reset_state:
            raise StateAheadOfInputError(
                f"{where}: the input topic was probably deleted and recreated while the changelog was "
                "kept, and every event of a known customer would be dropped as a duplicate. Restart "
                "with --reset-state (SEGMENTER_RESET_STATE=1) to discard this state, or restore the "
                "input topic"
            )
        with self.backend.producer() as producer:
            for key in judged.live_keys:
                producer.produce(self.changelog, key, None, partition=tp.partition)
            producer.flush()
        log.warning(
            "%s: --reset-state discarded it (%d tombstones written); its customers start fresh",
            where,
            len(judged.live_keys),
            extra={"partition": tp.partition},
        )
        return JudgedPartition(tp.partition, judged.records)
