"""The scorer's loop: poll → process → produce → commit, with restore on assignment.

Everything the loop decides lives in :class:`~consumer.processor.Processor` (pure, unit-tested with
the in-memory backend); this module only moves its results through a backend:

- at-least-once (default): produce updates, dead letters and changelog, ``flush`` (raises unless all
  were acknowledged), then commit the input offsets. A crash in between re-reads the batch; the
  changelog's last-applied offsets make the state skip what it already holds, so only identical
  updates are re-emitted.
- exactly-once (``exactly_once=True``): the same records and the input offsets go into one Kafka
  transaction; a ``read_committed`` reader sees each event's effect once. A transaction the broker
  aborts is redone: the consumer seeks back to the batch's first offsets and processes it again.

The new state entries are applied in memory only after the commit succeeded. Partitions assigned to
this instance are restored from the changelog (inside the rebalance callback, before their first
record is processed); revoked ones are dropped, as every batch is already committed when poll runs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

from consumer.backends.abstract import Backend, Consumer, Producer, TopicPartition, TopicSpec
from consumer.backends.errors import BrokerUnavailableError, CommitFailedError, TransactionAbortedError
from consumer.duplicates import DuplicateWarnings
from consumer.http import Readiness
from consumer.metrics import ScorerMetrics
from consumer.processor import BatchResult, Processor, Topics
from consumer.retry import retry_transient
from consumer.state_restore import JudgedPartition, StateAheadOfInputError, judge, refuse_corrupt
from consumer.state_store import StateStore
from model.events import DEFAULT_MIN_EVENT_MS
from model.monitor import DriftMonitor, WindowSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerSettings:
    group_id: str = "customer-segmenter"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 3
    batch_size: int = 2000
    poll_timeout_s: float = 0.5
    exactly_once: bool = False
    instance_id: str = "scorer-0"
    # Join as static member ``instance_id``: a restarted instance takes its partitions back at once.
    static_membership: bool = False
    # How long an at-least-once flush/commit waits out an unreachable broker before giving up.
    retry_timeout_s: float = 120.0
    emit_only_on_change: bool = False
    exit_when_idle: bool = False  # stop once every assigned partition is consumed to its end
    drift_every_s: float = 5.0
    drift_window: int = 10_000  # the live segment distribution covers the last this many assignments
    allow_keyless: bool = False  # records without a key are dead letters unless this is set
    min_event_ms: int | None = DEFAULT_MIN_EVENT_MS  # earlier events are implausible_timestamp
    strict_restore: bool = False  # an invalid changelog entry refuses the start instead of quarantine
    reset_state: bool = False  # discard (tombstone) the state of partitions ahead of their input


@dataclass
class RunSummary:
    events: int = 0
    valid: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    updates: int = 0
    batches: int = 0
    restored: int = 0
    restore_seconds: float = 0.0
    seconds: float = 0.0
    segment_counts: dict[int, int] = field(default_factory=dict)  # assignments published, per segment
    final_segments: dict[int, int] = field(default_factory=dict)  # customers per current segment, at stop

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class ScorerRunner:
    """One consumer-group member; ``run(stop)`` returns when ``stop`` is set (or idle, if asked)."""

    def __init__(
        self,
        backend: Backend,
        settings: RunnerSettings,
        model,
        *,
        metrics: ScorerMetrics | None = None,
        readiness: Readiness | None = None,
        store: StateStore | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.model = model  # a ModelSource: callable returning the current model, maybe_reload()
        self.metrics = metrics or ScorerMetrics()
        self.readiness = readiness or Readiness()
        self.store = store or StateStore()
        self.processor = Processor(
            self.store,
            model,
            settings.topics,
            emit_only_on_change=settings.emit_only_on_change,
            allow_keyless=settings.allow_keyless,
            min_event_ms=settings.min_event_ms,
        )
        self.summary = RunSummary()
        self._drift: DriftMonitor | None = None
        self._drift_model_id: str | None = None
        self._next_drift = 0.0
        self._duplicate_warnings = DuplicateWarnings()
        self._consumer: Consumer | None = None  # the group member, for the input's end offsets

    def ensure_topics(self) -> None:
        t, n = self.settings.topics, self.settings.partitions
        compact = {"cleanup.policy": "compact"}
        self.backend.ensure_topics(
            [
                TopicSpec(t.input, n),
                TopicSpec(t.output, n, config=compact),
                TopicSpec(t.dead_letter, n),
                TopicSpec(t.changelog, n, config=compact),
            ]
        )

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        stop = stop or threading.Event()
        s = self.settings
        self.ensure_topics()
        started = time.monotonic()
        transactional_id = f"{s.group_id}-{s.instance_id}" if s.exactly_once else None
        with self.backend.producer(transactional_id=transactional_id) as producer:
            if s.exactly_once:
                producer.init_transactions()  # also fences a killed predecessor's open transaction
            consumer = self.backend.consumer(
                s.group_id,
                isolation_level="read_committed",
                group_instance_id=s.instance_id if s.static_membership else None,
            )
            self._consumer = consumer
            try:
                consumer.subscribe([s.topics.input], on_assign=self._on_assign, on_revoke=self._on_revoke)
                self._set_model_metrics()
                self.readiness.set_model_loaded(True)
                while not stop.is_set():
                    self.readiness.heartbeat()
                    records = consumer.poll(max_records=s.batch_size, timeout_s=s.poll_timeout_s)
                    if records:
                        self._handle(records, consumer, producer)
                    elif s.exit_when_idle and self._caught_up(consumer):
                        break
                    self._between_batches(consumer)
            finally:
                self.summary.seconds = time.monotonic() - started
                self.summary.final_segments = dict(Counter(e.last_segment for _, e in self.store.customers()))
                consumer.close()
        return self.summary

    # -- one batch -------------------------------------------------------------------------------

    def _handle(self, records, consumer: Consumer, producer: Producer) -> None:
        try:
            self._handle_batch(records, consumer, producer)
        except Exception as error:
            where = _offset_ranges(records)
            log.error(
                "batch %s failed: %s", where, error, extra={"batch": where, "error": type(error).__name__}
            )
            raise

    def _handle_batch(self, records, consumer: Consumer, producer: Producer) -> None:
        result = self.processor.process(records)
        self.metrics.scoring_latency.observe(result.scoring_seconds)
        commit = self._commit_transaction if self.settings.exactly_once else self._commit_at_least_once
        if not commit(result, consumer, producer):
            # Nothing of the batch was applied in memory: read it again and redo it. Partitions the
            # group took away meanwhile are restored from the changelog by whoever owns them next.
            assigned = set(consumer.assignment())
            consumer.seek({tp: o for tp, o in _first_offsets(records).items() if tp in assigned})
            return
        self.processor.commit_entries(result)
        self._account(records, result)

    def _produce(self, result: BatchResult, producer: Producer) -> None:
        for out in result.outputs:
            producer.produce(out.topic, out.key, out.value, out.headers, partition=out.partition)

    def _commit_at_least_once(self, result: BatchResult, consumer: Consumer, producer: Producer) -> bool:
        """Outputs flushed, then offsets committed; False if the group refused the commit (redo)."""
        self._produce(result, producer)
        # A broker briefly away (restart) is waited out, re-producing lost records (consumer/retry.py);
        # a longer outage raises, and as nothing was committed a restart re-reads the batch.
        timeout_s = self.settings.retry_timeout_s
        reproduce = functools.partial(self._produce, result, producer)
        retry_transient("flushing outputs", producer.flush, timeout_s=timeout_s, on_lost=reproduce)
        try:
            retry_transient(
                "committing offsets", lambda: consumer.commit(result.offsets), timeout_s=timeout_s
            )
        except CommitFailedError as error:
            # The group moved on (a broker restart outlasting the session, a rebalance): the outputs are
            # durable but the offsets are not, so the batch is redone; at-least-once allows the repeats.
            self.metrics.record_commit("failed")
            log.warning("offset commit refused, the batch will be processed again: %s", error)
            return False
        self.metrics.record_commit("committed")
        return True

    def _commit_transaction(self, result: BatchResult, consumer: Consumer, producer: Producer) -> bool:
        """Outputs and offsets in one transaction; False if the broker aborted it (the batch is redone)."""
        producer.begin_transaction()
        try:
            self._produce(result, producer)
            producer.send_offsets_to_transaction(result.offsets, consumer.group_metadata())
            producer.commit_transaction()
        except (TransactionAbortedError, CommitFailedError) as error:
            # Aborted by the broker, or the offsets refused because the group moved on (a member id
            # the coordinator no longer knows after a broker restart): nothing is visible, redo it.
            producer.abort_transaction()
            self.metrics.record_transaction("aborted")
            log.warning("transaction aborted, the batch will be processed again: %s", error)
            return False
        self.metrics.record_transaction("committed")
        return True

    def _account(self, records, result: BatchResult) -> None:
        summary, metrics = self.summary, self.metrics
        dead = sum(result.invalid.values())
        summary.batches += 1
        summary.events += len(records)
        summary.valid += result.valid
        summary.dead_letters += dead
        summary.duplicates += result.duplicates
        for (kind, partition), count in result.duplicates_by.items():
            metrics.record_duplicates(kind, count)
            self._duplicate_warnings.note(kind, partition, count)
        summary.updates += len(result.scored)
        metrics.observe_batch(
            consumed=len(records), valid=result.valid, invalid=result.invalid, dead_lettered=dead
        )
        metrics.observe_admission(erasures=result.erasures, out_of_range=result.out_of_range)
        segment_ids = [s.segment_id for s in result.scored]
        for segment in segment_ids:
            summary.segment_counts[segment] = summary.segment_counts.get(segment, 0) + 1
        metrics.record_assignments(segment_ids, [s.previous_segment != s.segment_id for s in result.scored])
        metrics.observe_end_to_end([s.event_time_ms for s in result.scored])
        metrics.set_customers_tracked(len(self.store))
        self._drift_monitor().observe(
            segment_ids, [s.features for s in result.scored], [s.event_time_ms / 1000 for s in result.scored]
        )

    # -- between batches -------------------------------------------------------------------------

    def _between_batches(self, consumer: Consumer) -> None:
        if self.model.maybe_reload():
            self._set_model_metrics()
        now = time.monotonic()
        if now >= self._next_drift:
            self._next_drift = now + self.settings.drift_every_s
            self.metrics.set_drift(self._drift_monitor().snapshot())
            self._report_lag(consumer)

    def _drift_monitor(self) -> DriftMonitor:
        model = self.model()
        if self._drift is None or self._drift_model_id != model.model_id:
            window = WindowSpec(max_count=self.settings.drift_window)
            self._drift = DriftMonitor.from_manifest(model.manifest, window=window)
            self._drift_model_id = model.model_id
        return self._drift

    def _set_model_metrics(self) -> None:
        model = self.model()
        self.metrics.set_model(model.model_id, model.k, model.algorithm)

    @staticmethod
    def _lags(consumer: Consumer) -> dict[TopicPartition, int]:
        """Records between the group's commit and the end, per assigned partition (none: empty)."""
        assigned = consumer.assignment()
        if not assigned:
            return {}
        ends = consumer.end_offsets(assigned)
        committed = consumer.committed(assigned)
        return {tp: max(ends[tp] - (committed.get(tp) or 0), 0) for tp in assigned}

    def _report_lag(self, consumer: Consumer) -> None:
        try:
            lags = self._lags(consumer)
        except BrokerUnavailableError as error:  # a metric can wait for the broker to come back
            log.warning("lag not reported: %s", error)
            return
        for tp, lag in lags.items():
            self.metrics.set_lag(tp.topic, tp.partition, lag)

    def _caught_up(self, consumer: Consumer) -> bool:
        try:
            lags = self._lags(consumer)
        except BrokerUnavailableError:  # cannot tell while the broker is away: keep polling
            return False
        return bool(lags) and not any(lags.values())

    # -- rebalance callbacks (run inside poll, between batches) -----------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self.readiness.set_state_restored(False)
        started = time.perf_counter()
        fresh = [tp for tp in partitions if not self.store.owns(tp.partition)]
        ends = self._consumer.end_offsets(fresh) if fresh and self._consumer is not None else {}
        restored = sum(self._restore(tp, ends.get(tp)) for tp in fresh)
        seconds = time.perf_counter() - started
        self.summary.restored += restored
        self.summary.restore_seconds += seconds
        self.metrics.record_restore(seconds, restored)
        self.metrics.set_customers_tracked(len(self.store))
        log.info(
            "assigned %s; restored %d changelog records in %.3fs",
            [f"{tp.topic}[{tp.partition}]" for tp in partitions],
            restored,
            seconds,
        )
        self.readiness.set_state_restored(True)

    def _restore(self, tp: TopicPartition, input_end: int | None) -> int:
        """Restore one partition's state from its changelog partition (consumer/state_restore.py)."""
        changelog = TopicPartition(self.settings.topics.changelog, tp.partition)
        # Closed even when reading fails: an abandoned kafka-python reader hung the interpreter's exit.
        with closing(self.backend.read_partitions([changelog])) as records:
            judged = judge(tp.partition, records)
        for bad in judged.quarantined:
            where = {"partition": bad.partition, "offset": bad.offset, "key": bad.key}
            log.error("quarantined changelog entry: %s", bad, extra={**where, "reason": bad.reason})
            self.metrics.record_restore_invalid(tp.partition)
        if judged.quarantined and self.settings.strict_restore:
            raise refuse_corrupt(judged.quarantined)
        if input_end is not None and judged.max_applied_offset >= input_end:
            judged = self._state_ahead_of_input(tp, input_end, judged)
        self._check_checkpoint(judged)
        return self.store.restore(judged)

    def _check_checkpoint(self, judged: JudgedPartition) -> None:
        """Drop an online-model checkpoint the model cannot use: it starts again from the artifact."""
        check = getattr(self.model(), "check_checkpoint", None)
        if judged.checkpoint is None or check is None:
            return
        try:
            check(judged.checkpoint)
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
        changelog = self.settings.topics.changelog
        where = (
            f"input {tp.topic}[{tp.partition}] ends at offset {end} but its state in changelog "
            f"{changelog}[{tp.partition}] has applied offset {judged.max_applied_offset}"
        )
        if not self.settings.reset_state:
            raise StateAheadOfInputError(
                f"{where}: the input topic was probably deleted and recreated while the changelog was "
                "kept, and every event of a known customer would be dropped as a duplicate. Restart "
                "with --reset-state (SEGMENTER_RESET_STATE=1) to discard this state, or restore the "
                "input topic"
            )
        with self.backend.producer() as producer:
            for key in judged.live_keys:
                producer.produce(changelog, key, None, partition=tp.partition)
            producer.flush()
        log.warning(
            "%s: --reset-state discarded it (%d tombstones written); its customers start fresh",
            where,
            len(judged.live_keys),
            extra={"partition": tp.partition},
        )
        return JudgedPartition(tp.partition, judged.records)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.store.drop(tp.partition)
            self.metrics.forget_partition(tp.topic, tp.partition)
        log.info("revoked %s", [f"{tp.topic}[{tp.partition}]" for tp in partitions])


def _first_offsets(records) -> dict[TopicPartition, int]:
    """The earliest offset of each partition in a batch: where to read from to redo it."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        first.setdefault(record.topic_partition, record.offset)
    return first


def _offset_ranges(records) -> str:
    """``topic[partition]@first-last`` per partition of a batch: where an error happened."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for record in records:
        ranges.setdefault((record.topic, record.partition), []).append(record.offset)
    return ", ".join(f"{t}[{p}]@{min(o)}-{max(o)}" for (t, p), o in sorted(ranges.items()))


def install_sigterm(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop``: the loop finishes the batch in hand, commits, and returns."""
    import signal

    def handler(signum, _frame):
        log.info("signal %d: finishing the current batch, then stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, prev) for sig, prev in previous.items()]
