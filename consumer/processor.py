"""One poll batch in, everything to write out: the scorer's logic, with no I/O at all.

``Processor.process(records)`` decodes each record (invalid ones become dead letters), folds the
valid events into their customers' state, scores them and returns the outputs to produce, the
offsets to commit and the new state entries and partition clocks. The caller applies them to the
store only after the outputs and offsets are durably committed, so an aborted or failed batch leaves
the in-memory state exactly as the changelog has it.

One clock (``model.clock``): each input partition's records are handled in partition order, and
every valid event is scored as of the partition's **stream time** after it (the largest event time
applied so far; a late event folds in and is scored as of stream time). When stream time crosses a
tick boundary, the events before it are scored first, then every customer of the partition is
re-scored as of the boundary (:mod:`consumer.ageing`) and those whose segment moved get an update
with ``"reason": "ageing"``; then the events after it. Each partition's output therefore depends
only on its own records, never on how they were cut into poll batches, on restarts or on which
instance owns the partition. The event rows between two ticks are scored in ONE vectorised call
per partition. ``--clock wall`` ages as of the system clock instead (not replay-deterministic).

A new model (a hot reload, or a restart with another model directory) re-scores every stored
customer: each partition's clock records the model its segments come from, and a partition whose
record names another model is swept (:meth:`Processor._sweep`, the ageing tick's vectorised path)
before its next event, or in an empty batch when it is quiet (:meth:`Processor.work_due`). The sweep
is part of that batch's commit, so a crash repeats it and exactly-once publishes it once.

One record never stops the stream: whatever decoding, validating or folding one record raises becomes
a dead letter (``internal_error`` for anything that is not an :class:`InvalidEvent`), and the batch
goes on. A record without a key is a dead letter (``missing_key``) unless ``allow_keyless``: keyless
records of one customer land on several partitions and split its state. An event whose ``event_id``
is among the customer's last few (``Entry.recent_ids``) is a re-sent duplicate and is dropped (and
does not move the clock). An ``erase`` event deletes the customer: tombstones on the changelog and
on the output topic.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.ageing import age_partition
from consumer.backends.abstract import Record, TopicPartition
from consumer.outputs import Output, dead_letter, encode_json, segment_update, wall_time
from consumer.state_store import CLOCK_KEY, NO_SEGMENT, ONLINE_MODEL_KEY, Entry, StateStore
from model.attributes import TableColumns
from model.changelog import encode_clock, model_fingerprint
from model.clock import DAY_MS, PartitionClock
from model.errors import InvalidEvent, shown
from model.events import DEFAULT_MIN_EVENT_MS, decode_event
from model.features import (
    DEMOGRAPHICS,
    TIME_DEPENDENT,
    features,
    initialize,
    last_event_ms,
    table_columns,
    update,
)
from model.scoring import Assignment, Scorer

log = logging.getLogger(__name__)

_UNKNOWN_LOGGED_MAX = 100  # distinct unknown attribute names named in the log (then only counted)


@dataclass(frozen=True)
class Topics:
    input: str = "customer-events"
    output: str = "customer-segments"
    dead_letter: str = "customer-events-dlq"
    changelog: str = "customer-segmenter-state"


@dataclass(frozen=True)
class TimeSettings:
    """The clock: ``tick_ms`` between ageing ticks (0: no ageing), stream or wall time, state TTL."""

    tick_ms: int = DAY_MS
    wall_clock: bool = False  # --clock wall: ticks and as_of from the system clock
    state_ttl_ms: int = 0  # drop a customer this long after its last event, at a tick (0: never)


DEFAULT_TIME = TimeSettings()


@dataclass
class Scored:
    """One scored customer's result, kept for metrics and drift."""

    customer_id: str
    segment_id: int
    previous_segment: int | None
    event_time_ms: int
    features: dict[str, Any]


@dataclass
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    entries: dict[int, dict[str, bytes | None]] = field(default_factory=dict)
    clocks: dict[int, PartitionClock] = field(default_factory=dict)  # partitions whose clock moved
    scored: list[Scored] = field(default_factory=list)
    checkpoints: dict[int, bytes] = field(default_factory=dict)  # online model, per partition
    invalid: Counter = field(default_factory=Counter)
    valid: int = 0
    duplicates: int = 0
    duplicates_by: Counter = field(default_factory=Counter)  # (kind, input partition) -> events dropped
    erasures: int = 0
    out_of_range: Counter = field(default_factory=Counter)  # scored feature values outside the spec
    scoring_seconds: float = 0.0
    ticks: int = 0  # ageing ticks run
    aged_customers: int = 0  # customers ticks re-scored
    aged_skipped: int = 0  # stored customers ticks skipped: provably still in their segment
    aged: list[tuple[int | None, int]] = field(default_factory=list)  # (from, to) of each ageing update
    expired: int = 0  # customers dropped by the state TTL
    attributes_unknown: int = 0  # profile attributes neither a model column nor a demographic (ignored)
    swept: int = 0  # customers re-scored because a new model became live
    sweeps: int = 0  # partitions swept
    model_change_updates: int = 0  # updates published by sweeps (reason=model_change)


@dataclass
class _Step:
    """One applied event, waiting to be scored with the others before the next tick or the end."""

    customer_id: str
    entry: Entry  # after the event (its ``last_segment`` is settled when scored)
    as_of_ms: int
    record: Record
    erased: bool = False


class _Stamp:
    """What every update of one batch carries alike, worked out once per batch, on first use (a batch
    of dead letters needs no model)."""

    def __init__(self, model: Callable[[], Scorer], now: float) -> None:
        self._model, self._now = model, now

    @functools.cached_property
    def fields(self) -> tuple[str, str, str]:
        """``(model_id, schema_hash, scored_at)``."""
        model = self._model()
        return model.model_id, model.spec.schema_hash(), wall_time(self._now)

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """The live model's fingerprint, which the partition clocks record (``model.changelog``)."""
        return model_fingerprint(self._model().model_id)

    @functools.cached_property
    def table(self) -> TableColumns | None:
        """The model's table columns, which profile events update (``None``: an event-feature model)."""
        return table_columns(self._model().spec)

    @functools.cached_property
    def ages(self) -> bool:
        """Whether the model uses a feature that moves with the clock alone (else ticks re-score nothing)."""
        return not TIME_DEPENDENT.isdisjoint(self._model().spec.feature_names)


@dataclass
class _PartitionWork:
    """One partition's part of the batch: its clock, changed entries and unscored steps."""

    partition: int
    clock: PartitionClock
    checkpoint: bytes | None
    stamp: _Stamp
    entries: dict[str, Entry] = field(default_factory=dict)  # changed in this batch
    steps: list[_Step] = field(default_factory=list)
    # customer -> until when its pending entry provably keeps its segment (``consumer.ageing``): this
    # batch's own ageing schedule, dropped with the batch
    pending_safe: dict[str, int] = field(default_factory=dict)
    learned: bool = False  # the online model's checkpoint moved
    settled: bool = False  # the partition's segments are known to come from the live model


class Processor:
    """Pure batch logic over a :class:`StateStore` and the current model (see module docstring)."""

    def __init__(
        self,
        store: StateStore,
        model: Callable[[], Scorer],
        topics: Topics = Topics(),
        *,
        emit_only_on_change: bool = False,
        wall_clock: Callable[[], float] = time.time,
        allow_keyless: bool = False,
        min_event_ms: int | None = DEFAULT_MIN_EVENT_MS,
        clock: TimeSettings = DEFAULT_TIME,
    ) -> None:
        self.store = store
        self.model = model
        self.topics = topics
        self.emit_only_on_change = emit_only_on_change
        self.wall_clock = wall_clock
        self.allow_keyless = allow_keyless
        self.min_event_ms = min_event_ms
        self.clock = clock
        self._unknown_logged: set[str] = set()

    def process(self, records: Sequence[Record]) -> BatchResult:
        """One batch (possibly empty: in wall-clock mode that still runs the ticks that are due)."""
        result = BatchResult()
        now = self.wall_clock()
        now_ms = int(now * 1000)
        stamp = _Stamp(self.model, now)
        works: dict[int, _PartitionWork] = {}
        for record in records:
            work = works.get(record.partition) or self._start(record.partition, now_ms, stamp, works, result)
            result.offsets[record.topic_partition] = record.next_offset
            try:
                self._fold(record, work, now_ms, result)
            except InvalidEvent as error:
                self._dead_letter(record, error.reason, _message(error), result)
            except Exception as error:  # one record must never stop the stream: a bug becomes a dead letter
                self._dead_letter(
                    record, "internal_error", f"{type(error).__name__}: {_message(error)}", result
                )
        for partition in self.store.partitions():  # quiet partitions: wall ticks, a model change
            if partition not in works and (self.clock.wall_clock or self._sweep_due(partition, stamp)):
                self._start(partition, now_ms, stamp, works, result)
        for work in works.values():
            if work.clock.model and not work.settled:  # no event to score, but maybe a sweep to do
                self._settle_model(work, now_ms, result)
            self._finish(work, result)
        return result

    def work_due(self) -> bool:
        """Whether ``process([])`` has work with no record to wait for: a wall-clock tick, or a sweep
        of a quiet partition whose segments come from another model than the live one."""
        stamp = _Stamp(self.model, 0.0)
        return self._wall_ticks_due() or any(self._sweep_due(p, stamp) for p in self.store.partitions())

    def _wall_ticks_due(self) -> bool:
        if not self.clock.wall_clock:
            return False
        now_ms = int(self.wall_clock() * 1000)
        return any(
            clock.tick_at(now_ms, self.clock.tick_ms)[0] != clock for clock in self.store.clocks().values()
        )

    def _sweep_due(self, partition: int, stamp: _Stamp) -> bool:
        """The partition's segments come from a known model that is not the live one."""
        recorded = self.store.clock(partition).model
        return bool(recorded) and recorded != stamp.fingerprint

    def sweeps_pending(self) -> int:
        """Owned partitions still to be re-scored with the live model (the sweep-progress gauge)."""
        stamp = _Stamp(self.model, 0.0)
        return sum(self._sweep_due(p, stamp) for p in self.store.partitions())

    def _start(
        self, partition: int, now_ms: int, stamp: _Stamp, works: dict, result: BatchResult
    ) -> _PartitionWork:
        work = works[partition] = _PartitionWork(
            partition, self.store.clock(partition), self.store.checkpoint(partition), stamp
        )
        if self.clock.wall_clock:  # wall-clock ticks fire between polls, before the batch's events
            clock, tick = work.clock.tick_at(now_ms, self.clock.tick_ms)
            if tick is not None:
                self._settle_model(work, now_ms, result)
                self._age(work, tick, None, result)
            work.clock = clock
        return work

    def _settle_model(self, work: _PartitionWork, now_ms: int, result: BatchResult) -> None:
        """Before the partition's first score in this batch: sweep it if its segments come from another
        model, and record the live one in its clock. (A batch of dead letters never gets here, so it
        needs no model.)"""
        if work.settled:
            return
        work.settled = True
        live = work.stamp.fingerprint
        if work.clock.model != live:
            if work.clock.model:
                self._sweep(work, now_ms, result)
            work.clock = work.clock._replace(model=live)

    def _sweep(self, work: _PartitionWork, now_ms: int, result: BatchResult) -> None:
        """Re-score every stored customer of the partition with the live model, as of its clock, in the
        batch's commit (a crash repeats it); publish the moved ones, or everyone when every update is
        published (``--emit-only-on-change`` off), with ``"reason": "model_change"``."""
        as_of = now_ms if self.clock.wall_clock else work.clock.stream_ms
        swept = age_partition(
            self.store.raw_entries(work.partition), work.entries, as_of, self.model(), work.checkpoint,
            0, work.stamp.table, everyone=not self.emit_only_on_change,
        )  # fmt: skip
        work.pending_safe.clear()
        result.sweeps += 1
        result.swept += swept.customers
        result.model_change_updates += len(swept.changed)
        for customer_id, entry, assignment in swept.changed:
            previous = None if entry.last_segment == NO_SEGMENT else entry.last_segment
            entry = work.entries[customer_id] = entry.scored(assignment.segment_id)
            self._publish(work, entry, assignment, previous, as_of, "model_change", None, result, customer_id)
        log.info(
            "partition %d: re-scored %d customers with model %s (%d published)",
            work.partition, swept.customers, work.stamp.fields[0], len(swept.changed),
        )  # fmt: skip

    def _dead_letter(self, record: Record, reason: str, message: str, result: BatchResult) -> None:
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        log.warning("dead letter %s: %s", where, message, extra={**where, "reason": reason})
        result.invalid[reason] += 1
        result.outputs.append(dead_letter(self.topics.dead_letter, record, reason, message))

    def _entry(self, work: _PartitionWork, customer_id: str) -> Entry:
        entry = work.entries.get(customer_id)
        return self.store.get(work.partition, customer_id) if entry is None else entry

    def _fold(self, record: Record, work: _PartitionWork, now_ms: int, result: BatchResult) -> None:
        """Validate one record, run a tick it crosses, fold it into its customer; raises for a dead letter."""
        # "In the future" is judged against this processor's wall clock (a test may set it).
        event = decode_event(record.value, min_event_ms=self.min_event_ms, now_ms=now_ms)
        if record.key is None:
            if not self.allow_keyless:
                raise InvalidEvent(
                    "$key", "is required: records are keyed by customer_id", None, reason="missing_key"
                )
        elif record.key != event.customer_id.encode("utf-8"):
            raise InvalidEvent(
                "customer_id", "differs from the record key", event.customer_id, reason="key_mismatch"
            )
        self._settle_model(work, now_ms, result)
        customer_id = event.customer_id
        entry = self._entry(work, customer_id)
        if record.offset <= entry.last_offset:
            result.duplicates += 1  # already in the changelog: a replay after a crash
            result.duplicates_by["offset", record.partition] += 1
            return
        if entry.has_seen(event.event_id):
            result.duplicates += 1  # re-sent by its producer: count it once
            result.duplicates_by["event_id", record.partition] += 1
            return
        erased = event.type == "erase"
        state = initialize() if erased else update(entry.state, event, work.stamp.table)
        if event.attributes:
            self._count_unknown(event.attributes, work.stamp.table, result)
        if self.clock.wall_clock:  # stream time is still kept (and exported); ticks follow the system clock
            clock, tick = work.clock._replace(stream_ms=max(work.clock.stream_ms, event.ts_ms)), None
        else:
            clock, tick = work.clock.advance(event.ts_ms, self.clock.tick_ms)
        if tick is not None:  # the events before the boundary are scored, then everyone ages
            self._age(work, tick, record, result)
            entry = self._entry(work, customer_id)  # the tick may have moved its segment (or expired it)
        work.clock = clock
        if erased:
            # The ring is kept for the rest of the batch: a repeat of an erased event must not revive it.
            # (Across batches the tombstone forgets the ring too; see the README's erase paragraph.)
            entry = Entry(state, record.offset, NO_SEGMENT, entry.recent_ids)
            result.erasures += 1
        else:
            entry = entry.after(state, record.offset, event.event_id)
        result.valid += 1
        work.entries[customer_id] = entry
        work.pending_safe.pop(customer_id, None)
        as_of = now_ms if self.clock.wall_clock else clock.stream_ms
        work.steps.append(_Step(customer_id, entry, as_of, record, erased))

    def _count_unknown(self, attributes: dict, table: TableColumns | None, result: BatchResult) -> None:
        """Count (and name once in the log) profile attributes that no column of the model uses."""
        known = (*DEMOGRAPHICS, *(table.names if table else ()))
        unknown = [name for name in attributes if name not in known]
        result.attributes_unknown += len(unknown)
        for name in unknown:
            if name not in self._unknown_logged and len(self._unknown_logged) < _UNKNOWN_LOGGED_MAX:
                self._unknown_logged.add(name)
                log.warning(
                    "profile attribute %s is neither a column of the model nor a demographic: ignored "
                    "(counted in segmenter_attributes_unknown_total; each name is logged once)",
                    shown(name),
                )

    def _score_steps(self, work: _PartitionWork, result: BatchResult) -> None:
        """Score the steps since the last tick in one call; publish their updates in partition order."""
        steps, work.steps = work.steps, []
        if not steps:
            return
        model = self.model()
        live = [step for step in steps if not step.erased]
        rows = [features(step.entry.state, step.as_of_ms, work.stamp.table) for step in live]
        _count_out_of_range(rows, model.spec, result.out_of_range)
        started = time.perf_counter()
        assignments, checkpoint = _score_rows(model, rows, work.checkpoint) if live else ([], None)
        result.scoring_seconds += time.perf_counter() - started
        if checkpoint is not None:  # an online model's learned centres
            work.checkpoint, work.learned = checkpoint, True
        scored = iter(zip(assignments, rows, strict=True))
        segments: dict[str, int] = {}  # the segment each customer holds so far in these steps
        for step in steps:
            customer_id, key = step.customer_id, step.customer_id.encode("utf-8")
            if step.erased:
                result.outputs.append(Output(self.topics.output, key, None))
                segments[customer_id] = NO_SEGMENT
                work.entries[customer_id] = step.entry
                continue
            assignment, row = next(scored)
            previous = segments.get(customer_id, step.entry.last_segment)
            if assignment is None:  # the model refused this customer's row: keep its state, publish nothing
                result.valid -= 1
                self._dead_letter(
                    step.record, "internal_error", "the model could not score this customer", result
                )
                work.entries[customer_id] = step.entry.scored(previous)
                continue
            segments[customer_id] = assignment.segment_id
            entry = work.entries[customer_id] = step.entry.scored(assignment.segment_id)
            before = None if previous == NO_SEGMENT else previous
            if before != assignment.segment_id or not self.emit_only_on_change:
                self._publish(
                    work, entry, assignment, before, step.as_of_ms, "event", step.record, result, customer_id
                )
            result.scored.append(
                Scored(customer_id, assignment.segment_id, before, last_event_ms(entry.state), row)
            )

    def _age(self, work: _PartitionWork, at_ms: int, record: Record | None, result: BatchResult) -> None:
        """A tick at boundary ``at_ms``: score what came before, then re-score the whole partition."""
        self._score_steps(work, result)
        result.ticks += 1
        if not work.stamp.ages and not self.clock.state_ttl_ms:
            return  # a model of table columns alone: nothing it uses moves with the clock
        aged = age_partition(
            self.store.raw_entries(work.partition), work.entries, at_ms, self.model(), work.checkpoint,
            self.clock.state_ttl_ms, work.stamp.table,
            schedule=self.store.schedule(work.partition), model_key=work.stamp.fingerprint,
            pending_safe=work.pending_safe,
        )  # fmt: skip
        result.aged_customers += aged.customers
        result.aged_skipped += aged.skipped
        for customer_id, entry in aged.expired:
            result.outputs.append(Output(self.topics.output, customer_id.encode("utf-8"), None))
            work.entries[customer_id] = Entry(initialize(), entry.last_offset)  # a tombstone at the end
            work.pending_safe.pop(customer_id, None)
            result.expired += 1
        for customer_id, entry, assignment in aged.changed:
            previous = None if entry.last_segment == NO_SEGMENT else entry.last_segment
            entry = work.entries[customer_id] = entry.scored(assignment.segment_id)
            self._publish(work, entry, assignment, previous, at_ms, "ageing", record, result, customer_id)
            result.aged.append((previous, assignment.segment_id))

    def _publish(
        self, work: _PartitionWork, entry: Entry, assignment: Assignment, previous: int | None,
        as_of_ms: int, reason: str, source: Record | None, result: BatchResult, customer_id: str,
    ) -> None:  # fmt: skip
        model_id, schema_hash, scored_at = work.stamp.fields
        body = segment_update(
            customer_id=customer_id,
            assignment=assignment,
            previous_segment=previous,
            model_id=model_id,
            schema_hash=schema_hash,
            event_time_ms=last_event_ms(entry.state),
            as_of_ms=as_of_ms,
            reason=reason,
            scored_at=scored_at,
            source=source,
        )
        result.outputs.append(Output(self.topics.output, customer_id.encode("utf-8"), encode_json(body)))

    def _finish(self, work: _PartitionWork, result: BatchResult) -> None:
        """Score what is left; the partition's changed entries, clock and checkpoint to the changelog.

        Co-partitioned with the input, so restoring input partition p reads changelog partition p.
        """
        self._score_steps(work, result)
        partition, changelog = work.partition, self.topics.changelog
        entries = result.entries.setdefault(partition, {})
        for customer_id, entry in work.entries.items():
            encoded = None if last_event_ms(entry.state) < 0 else entry.to_bytes()  # None: erased/expired
            entries[customer_id] = encoded
            result.outputs.append(
                Output(changelog, customer_id.encode("utf-8"), encoded, partition=partition)
            )
        if work.clock != self.store.clock(partition):
            result.clocks[partition] = work.clock
            value = encode_clock(*work.clock)
            result.outputs.append(Output(changelog, CLOCK_KEY, value, partition=partition))
        if work.learned:
            result.checkpoints[partition] = work.checkpoint
            result.outputs.append(Output(changelog, ONLINE_MODEL_KEY, work.checkpoint, partition=partition))

    def commit_entries(self, result: BatchResult) -> None:
        """Apply a committed batch's entries (``None``: erased), for partitions this instance still owns."""
        for partition, entries in result.entries.items():
            if self.store.owns(partition):
                self.store.put_many(partition, entries)
        for partition, checkpoint in result.checkpoints.items():
            if self.store.owns(partition):
                self.store.put_checkpoint(partition, checkpoint)
        for partition, clock in result.clocks.items():
            if self.store.owns(partition):
                self.store.put_clock(partition, clock)


def _message(error: BaseException) -> str:
    """``str(error)``, whatever the error: building a dead letter's message must not fail either."""
    try:
        return str(error)[:1000]
    except Exception:
        return shown(error)


def _score_rows(model: Scorer, rows: list[dict], checkpoint: bytes | None) -> tuple[list, bytes | None]:
    """One partition's rows in one call; if that fails, row by row, so one customer's row cannot fail
    the batch (``None`` for a row the model refuses). Returns the assignments and the next checkpoint."""
    try:
        return model.score_partition(rows, checkpoint)
    except Exception:
        log.exception("scoring %d customers in one call failed; scoring them one by one", len(rows))
    scored, learned = [], None
    for row in rows:
        try:
            (assignment,), after = model.score_partition([row], learned or checkpoint)
        except Exception as error:
            log.error(
                "the model refused a customer's features: %s: %s", type(error).__name__, _message(error)
            )
            scored.append(None)
            continue
        scored.append(assignment)
        learned = after or learned
    return scored, learned


def _count_out_of_range(rows: list[dict], spec, counts: Counter) -> None:
    """Count scored feature values outside the spec's declared ranges (the API rejects them)."""
    for name, bounds in spec.ranges.items():
        low = -math.inf if bounds.minimum is None else bounds.minimum
        high = math.inf if bounds.maximum is None else bounds.maximum
        for row in rows:
            value = row.get(name)
            if value is not None and not low <= value <= high:
                counts[name] += 1
