"""The scorer's loop (poll → process → commit) and the rebalance callbacks; the rest is delegated:

- :mod:`consumer.processor`: one batch in; outputs, offsets and new state out (no I/O at all);
- :mod:`consumer.committers`: the delivery mode's commit protocol (at-least-once: flush, then commit
  the offsets; exactly-once: one transaction); state reaches memory only once the batch is durable,
  and a refused batch is sought back to and processed again;
- :mod:`consumer.telemetry`: run summary, batch metrics, the current model's drift monitor, lag, and
  the shadow model's comparison (``shadow``: a second ModelSource, scored but never published);
- :mod:`consumer.partition_restore`: assigned partitions are restored from the changelog inside the
  rebalance callback, before their first record; revoked ones are dropped (every batch is committed
  by the time poll runs);
- :mod:`consumer.dead_letter_limit`: stops the scorer when most of the input is invalid.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consumer.backends.abstract import Backend, Consumer, TopicPartition, TopicSpec
from consumer.committers import Committer, committer_for
from consumer.dead_letter_limit import InvalidShareLimit
from consumer.http import Readiness
from consumer.metrics import ScorerMetrics
from consumer.partition_restore import PartitionRestorer, check_copartitioned
from consumer.processor import Processor, TimeSettings, Topics
from consumer.settings import default_instance_id
from consumer.state_store import StateStore
from consumer.telemetry import RunSummary, Telemetry
from model.events import DEFAULT_MIN_EVENT_MS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerSettings:
    group_id: str = "customer-segmenter"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 3
    batch_size: int = 2000
    poll_timeout_s: float = 0.5
    exactly_once: bool = False
    instance_id: str = field(default_factory=default_instance_id)  # scorer-<host name>
    static_membership: bool = False  # join as static member instance_id: a restart takes its partitions
    retry_timeout_s: float = 120.0  # how long an at-least-once flush/commit waits out a missing broker
    emit_only_on_change: bool = False
    exit_when_idle: bool = False  # stop once every assigned partition is consumed to its end
    drift_every_s: float = 5.0
    drift_window: int = 10_000  # the live segment distribution covers the last this many assignments
    allow_keyless: bool = False  # records without a key are dead letters unless this is set
    min_event_ms: int | None = DEFAULT_MIN_EVENT_MS  # earlier events are implausible_timestamp
    time: TimeSettings = field(default_factory=TimeSettings)  # --tick, --clock, --state-ttl
    strict_restore: bool = False  # an invalid changelog entry refuses the start instead of quarantine
    reset_state: bool = False  # discard (tombstone) the state of partitions ahead of their input
    max_invalid_ratio: float | None = None  # stop (exit 3) above this invalid share; None: no limit
    invalid_window: int = 10_000  # ... of the last this many records (consumer/dead_letter_limit.py)


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
        shadow=None,
    ) -> None:
        s, self.backend, self.settings, self.model = settings, backend, settings, model  # model: ModelSource
        self.metrics, self.readiness = metrics or ScorerMetrics(), readiness or Readiness()
        self.store = store or StateStore()
        self.shadow = shadow  # a ModelSource of a candidate, or None
        self.processor = Processor(
            self.store, model, s.topics, emit_only_on_change=s.emit_only_on_change,
            allow_keyless=s.allow_keyless, min_event_ms=s.min_event_ms, clock=s.time,
        )  # fmt: skip
        self.telemetry = Telemetry(
            model, self.metrics, self.store, drift_every_s=s.drift_every_s, drift_window=s.drift_window,
            shadow=shadow,
        )  # fmt: skip
        self.restorer = PartitionRestorer(
            backend, self.store, model, s.topics.changelog, metrics=self.metrics,
            readiness=self.readiness, strict=s.strict_restore, reset_state=s.reset_state,
        )  # fmt: skip
        self.invalid_share = InvalidShareLimit(s.max_invalid_ratio, s.invalid_window)
        self._consumer: Consumer | None = None  # the group member, for the input's end offsets

    @property
    def summary(self) -> RunSummary:
        return self.telemetry.summary

    def ensure_topics(self) -> None:
        t, n, compact = self.settings.topics, self.settings.partitions, {"cleanup.policy": "compact"}
        specs = [TopicSpec(t.input, n), TopicSpec(t.output, n, config=compact), TopicSpec(t.dead_letter, n)]
        self.backend.ensure_topics([*specs, TopicSpec(t.changelog, n, config=compact)])

    def run(
        self, stop: threading.Event | None = None, *, at_stop: Callable[[StateStore], None] | None = None
    ) -> RunSummary:
        """Score until ``stop`` (or idle); ``at_stop`` sees the state before the partitions are released."""
        stop, s = stop or threading.Event(), self.settings
        self.ensure_topics()
        check_copartitioned(self.backend, s.topics.input, s.topics.changelog)
        started = time.monotonic()
        transactional_id = f"{s.group_id}-{s.instance_id}" if s.exactly_once else None
        with self.backend.producer(transactional_id=transactional_id) as producer:
            committer = committer_for(
                s.exactly_once, producer, self.processor, self.metrics, retry_timeout_s=s.retry_timeout_s
            )
            member = s.instance_id if s.static_membership else None
            consumer = self._consumer = self.backend.consumer(
                s.group_id, isolation_level="read_committed", group_instance_id=member
            )
            try:
                consumer.subscribe([s.topics.input], on_assign=self._on_assign, on_revoke=self._on_revoke)
                self.telemetry.model_loaded()
                self.readiness.set_model_loaded(True)
                while not stop.is_set():
                    self.readiness.heartbeat()
                    records = consumer.poll(max_records=s.batch_size, timeout_s=s.poll_timeout_s)
                    if records or self.processor.work_due():  # quiet partitions age and sweep too
                        self._handle(records, consumer, committer)
                    elif s.exit_when_idle and self.telemetry.caught_up(consumer):
                        break
                    if self.model.maybe_reload():
                        self.telemetry.model_loaded()
                    if self.shadow is not None:
                        self.shadow.maybe_reload()
                    self.telemetry.between_batches(consumer)
            finally:
                self.telemetry.finish(time.monotonic() - started)
                if at_stop is not None:
                    at_stop(self.store)
                consumer.close()
        return self.summary

    def _handle(self, records, consumer: Consumer, committer: Committer) -> None:
        """Process and commit one batch (a refused one is read again); stop if most input is invalid."""
        try:
            result = self.processor.process(records)
            self.metrics.scoring_latency.observe(result.scoring_seconds)
            if not committer.commit(records, result, consumer):
                return
            self.telemetry.account(records, result)
        except Exception as error:
            self.telemetry.batch_failed(records, error)
            raise
        self.invalid_share.observe(len(records), result.invalid)  # raises InvalidShareExceededError

    # -- rebalance callbacks (run inside poll, between batches) -----------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self.telemetry.restored(*self.restorer.on_assign(partitions, self._consumer))

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.store.drop(tp.partition)
        self.telemetry.revoked(partitions)
        log.info("revoked %s", [f"{tp.topic}[{tp.partition}]" for tp in partitions])
