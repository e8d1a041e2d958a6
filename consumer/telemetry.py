"""What a scorer run reports: its summary, the batch metrics, the drift monitor and the lag.

:class:`Telemetry` is told about every committed batch (``account``), every restore and revocation,
and is called between batches (``between_batches``): at most every ``drift_every_s`` it publishes the
drift snapshot and the lag of every assigned partition. The drift monitor belongs to one model: when
the model changes (a hot reload), the next batch starts a fresh monitor from the new model's manifest,
so the live distribution is never compared with another model's references.

With a shadow model (``--shadow-model-dir``), every committed batch's scored rows are also scored by
the candidate (:class:`model.shadow.ShadowModel`), on the same schedule its comparison and drift are
published (``segmenter_shadow_*``). Nothing of the shadow reaches an output, the changelog or the
state: it only ever sees rows the live model already scored. A new candidate starts a fresh window.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumer.backends.abstract import Consumer, Record, TopicPartition
from consumer.backends.errors import BrokerUnavailableError
from consumer.duplicates import DuplicateWarnings
from consumer.metrics import ScorerMetrics
from consumer.processor import BatchResult
from consumer.state_store import StateStore
from model.changelog import model_fingerprint
from model.monitor import DriftMonitor, WindowSpec
from model.scoring import Scorer
from model.shadow import ShadowModel

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    events: int = 0
    valid: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    updates: int = 0
    ageing_updates: int = 0  # of the updates, those an ageing tick published
    model_change_updates: int = 0  # of the updates, those a model-change sweep published
    batches: int = 0
    restored: int = 0
    restore_seconds: float = 0.0
    seconds: float = 0.0
    segment_counts: dict[int, int] = field(default_factory=dict)  # assignments published, per segment
    transitions: Counter = field(default_factory=Counter)  # "from->to" segment -> changes, both reasons
    final_segments: dict[int, int] = field(default_factory=dict)  # customers per current segment, at stop

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Telemetry:
    """The run summary and the scorer's metrics, fed by the runner (see module docstring)."""

    def __init__(
        self,
        model: Callable[[], Scorer],
        metrics: ScorerMetrics,
        store: StateStore,
        *,
        drift_every_s: float,
        drift_window: int,
        clock: Callable[[], float] = time.monotonic,
        shadow: Callable[[], Scorer] | None = None,
    ) -> None:
        self.model = model
        self.shadow = shadow  # the candidate's ModelSource, or None
        self.metrics = metrics
        self.store = store
        self.drift_every_s = drift_every_s
        self.drift_window = drift_window
        self.clock = clock
        self.wall_clock = time.time  # the stream-time lag is against the system clock
        self.summary = RunSummary()
        self._drift: DriftMonitor | None = None
        self._drift_model_id: str | None = None
        self._shadow: ShadowModel | None = None
        self._shadow_failed: str | None = None  # the candidate whose failure was logged
        self._next_drift = 0.0
        self._duplicate_warnings = DuplicateWarnings()

    def model_loaded(self) -> None:
        """Label the metrics with the model now serving (at start and after a reload)."""
        model = self.model()
        self.metrics.set_model(model.model_id, model.k, model.algorithm)

    def account(self, records: Sequence[Record], result: BatchResult) -> None:
        """Count a committed batch into the summary, the metrics and the drift monitor."""
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
        metrics.observe_admission(
            erasures=result.erasures,
            out_of_range=result.out_of_range,
            attributes_unknown=result.attributes_unknown,
        )
        segment_ids = [s.segment_id for s in result.scored]
        for segment in segment_ids:
            summary.segment_counts[segment] = summary.segment_counts.get(segment, 0) + 1
        metrics.record_assignments(segment_ids, [s.previous_segment != s.segment_id for s in result.scored])
        metrics.observe_end_to_end([s.event_time_ms for s in result.scored])
        metrics.set_customers_tracked(len(self.store))
        metrics.record_ageing(
            result.ticks, len(result.aged), result.expired, result.aged_customers, result.aged_skipped
        )
        metrics.record_sweeps(result.swept, result.model_change_updates, self._sweeps_pending())
        summary.model_change_updates += result.model_change_updates
        summary.updates += result.model_change_updates
        summary.ageing_updates += len(result.aged)
        summary.updates += len(result.aged)
        moves = [(s.previous_segment, s.segment_id) for s in result.scored] + result.aged
        summary.transitions.update(f"{a}->{b}" for a, b in moves if a is not None and a != b)
        self._report_stream_times()
        rows, stamps = [s.features for s in result.scored], [s.event_time_ms / 1000 for s in result.scored]
        self._drift_monitor().observe(segment_ids, rows, stamps)
        if self.shadow is not None:
            self._observe_shadow(segment_ids, rows, stamps)

    def batch_failed(self, records: Sequence[Record], error: Exception) -> None:
        """One line naming where the failed batch lies (``topic[partition]@first-last`` each)."""
        where = offset_ranges(records)
        log.error("batch %s failed: %s", where, error, extra={"batch": where, "error": type(error).__name__})

    def restored(self, records: int, seconds: float) -> None:
        self.summary.restored += records
        self.summary.restore_seconds += seconds
        self.metrics.record_restore(seconds, records)
        self.metrics.set_customers_tracked(len(self.store))

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.metrics.forget_partition(tp.topic, tp.partition)
        self._report_stream_times()

    def _report_stream_times(self) -> None:
        """Stream time per owned partition that has seen an event (``segmenter_stream_time_seconds``)."""
        clocks = self.store.clocks()
        self.metrics.set_stream_times(
            {p: c.stream_ms / 1000 for p, c in clocks.items() if c.stream_ms >= 0}, self.wall_clock()
        )

    def _sweeps_pending(self) -> int:
        """Owned partitions whose segments come from a known model other than the live one."""
        live = model_fingerprint(self.model().model_id)
        return sum(bool(c.model) and c.model != live for c in self.store.clocks().values())

    def between_batches(self, consumer: Consumer) -> None:
        """Every ``drift_every_s``: the drift snapshot and the lag of each assigned partition."""
        now = self.clock()
        if now >= self._next_drift:
            self._next_drift = now + self.drift_every_s
            self.metrics.set_drift(self._drift_monitor().snapshot())
            if self.shadow is not None:
                self.metrics.set_shadow(self._shadow_model().snapshot())
            self._report_lag(consumer)
            self._report_stream_times()  # the lag to the wall clock grows while a partition is quiet

    def caught_up(self, consumer: Consumer) -> bool:
        """Every assigned partition consumed to its end (False while unknown: keep polling)."""
        try:
            lags = _lags(consumer)
        except BrokerUnavailableError:  # cannot tell while the broker is away: keep polling
            return False
        return bool(lags) and not any(lags.values())

    def finish(self, seconds: float) -> RunSummary:
        self.summary.seconds = seconds
        self.summary.final_segments = dict(Counter(e.last_segment for _, e in self.store.customers()))
        return self.summary

    def _drift_monitor(self) -> DriftMonitor:
        model = self.model()
        if self._drift is None or self._drift_model_id != model.model_id:
            window = WindowSpec(max_count=self.drift_window)
            self._drift = DriftMonitor.from_manifest(model.manifest, window=window)
            self._drift_model_id = model.model_id
        return self._drift

    def _observe_shadow(self, segment_ids: list[int], rows: list[dict], stamps: list[float]) -> None:
        """Score the batch with the candidate; its failure skips the batch's comparison, nothing else.

        The batch is committed and published already: a candidate that cannot score these rows must
        not stop the live scorer. Logged once per candidate (every batch would fail alike).
        """
        shadow = self._shadow_model()
        try:
            shadow.observe(segment_ids, rows, stamps)
        except Exception as error:  # any error of a model that serves nobody
            if self._shadow_failed != shadow.model_id:
                self._shadow_failed = shadow.model_id
                log.error("the shadow model %s failed to score a batch: %s: %s", shadow.model_id,
                          type(error).__name__, error)  # fmt: skip

    def _shadow_model(self) -> ShadowModel:
        candidate = self.shadow()
        if self._shadow is None or self._shadow.model_id != candidate.model_id:
            self._shadow = ShadowModel(candidate, self.drift_window)
        return self._shadow

    def _report_lag(self, consumer: Consumer) -> None:
        try:
            lags = _lags(consumer)
        except BrokerUnavailableError as error:  # a metric can wait for the broker to come back
            log.warning("lag not reported: %s", error)
            return
        for tp, lag in lags.items():
            self.metrics.set_lag(tp.topic, tp.partition, lag)


def _lags(consumer: Consumer) -> dict[TopicPartition, int]:
    """Records between the group's commit and the end, per assigned partition (none: empty)."""
    assigned = consumer.assignment()
    if not assigned:
        return {}
    ends = consumer.end_offsets(assigned)
    committed = consumer.committed(assigned)
    return {tp: max(ends[tp] - (committed.get(tp) or 0), 0) for tp in assigned}


def offset_ranges(records: Sequence[Record]) -> str:
    """``topic[partition]@first-last`` per partition of a batch: where an error happened."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for record in records:
        ranges.setdefault((record.topic, record.partition), []).append(record.offset)
    return ", ".join(f"{t}[{p}]@{min(o)}-{max(o)}" for (t, p), o in sorted(ranges.items()))
