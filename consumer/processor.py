"""One poll batch in, everything to write out: the scorer's logic, with no I/O at all.

``Processor.process(records)`` decodes each record (invalid ones become dead letters), folds the
valid events into their customers' state, scores the changed customers of each partition in ONE
vectorised call (of any :class:`~model.scoring.Scorer`: the batch or the online model), and returns
the outputs to produce, the offsets to commit and the new state entries. The caller applies
the entries to the store only after the outputs and offsets are durably committed, so an aborted or
failed batch leaves the in-memory state exactly as the changelog has it.

A customer is scored as of its own latest event (event time): the result depends only on that
customer's events, never on how the stream was cut into batches or partitions, which is what lets a
restarted, rebalanced or file-mode run produce the same segments as an uninterrupted one.

One record never stops the stream: whatever decoding, validating or folding one record raises becomes
a dead letter (``internal_error`` for anything that is not an :class:`InvalidEvent`), and the batch
goes on. A record without a key is a dead letter (``missing_key``) unless ``allow_keyless``: keyless
records of one customer land on several partitions and split its state. An event whose ``event_id``
is among the customer's last few (``Entry.recent_ids``) is a re-sent duplicate and is dropped. An
``erase`` event deletes the customer: tombstones on the changelog and on the output topic.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.backends.abstract import Record, TopicPartition
from consumer.outputs import Output, dead_letter, encode_json, segment_update, wall_time
from consumer.state_store import NO_SEGMENT, ONLINE_MODEL_KEY, Entry, StateStore
from model.errors import InvalidEvent, shown
from model.events import DEFAULT_MIN_EVENT_MS, decode_event
from model.features import features, initialize, last_event_ms, update
from model.scoring import Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    input: str = "customer-events"
    output: str = "customer-segments"
    dead_letter: str = "customer-events-dlq"
    changelog: str = "customer-segmenter-state"


@dataclass
class Scored:
    """One changed customer's result, kept for metrics and drift."""

    customer_id: str
    segment_id: int
    previous_segment: int | None
    event_time_ms: int
    features: dict[str, Any]


@dataclass
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    entries: dict[int, dict[str, bytes]] = field(default_factory=dict)
    scored: list[Scored] = field(default_factory=list)
    checkpoints: dict[int, bytes] = field(default_factory=dict)  # online model, per partition
    invalid: Counter = field(default_factory=Counter)
    valid: int = 0
    duplicates: int = 0
    duplicates_by: Counter = field(default_factory=Counter)  # (kind, input partition) -> events dropped
    erasures: int = 0
    out_of_range: Counter = field(default_factory=Counter)  # scored feature values outside the spec
    scoring_seconds: float = 0.0


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
    ) -> None:
        self.store = store
        self.model = model
        self.topics = topics
        self.emit_only_on_change = emit_only_on_change
        self.wall_clock = wall_clock
        self.allow_keyless = allow_keyless
        self.min_event_ms = min_event_ms

    def process(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        changed: dict[tuple[int, str], tuple[Entry, Record]] = {}
        for record in records:
            result.offsets[record.topic_partition] = record.next_offset
            try:
                self._fold(record, changed, result)
            except InvalidEvent as error:
                self._dead_letter(record, error.reason, _message(error), result)
            except Exception as error:  # one record must never stop the stream: a bug becomes a dead letter
                self._dead_letter(
                    record, "internal_error", f"{type(error).__name__}: {_message(error)}", result
                )
        erased = [slot for slot, (entry, _) in changed.items() if last_event_ms(entry.state) < 0]
        for slot in erased:
            self._erase(slot, changed.pop(slot), result)
        if changed:
            self._score(changed, result)
        return result

    def _dead_letter(self, record: Record, reason: str, message: str, result: BatchResult) -> None:
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        log.warning("dead letter %s: %s", where, message, extra={**where, "reason": reason})
        result.invalid[reason] += 1
        result.outputs.append(dead_letter(self.topics.dead_letter, record, reason, message))

    def _fold(self, record: Record, changed: dict, result: BatchResult) -> None:
        """Validate one record and fold it into its customer's entry; raises for a dead letter."""
        event = decode_event(record.value, min_event_ms=self.min_event_ms)
        if record.key is None:
            if not self.allow_keyless:
                raise InvalidEvent(
                    "$key", "is required: records are keyed by customer_id", None, reason="missing_key"
                )
        elif record.key != event.customer_id.encode("utf-8"):
            raise InvalidEvent(
                "customer_id", "differs from the record key", event.customer_id, reason="key_mismatch"
            )
        slot = (record.partition, event.customer_id)
        entry = changed[slot][0] if slot in changed else self.store.get(*slot)
        if record.offset <= entry.last_offset:
            result.duplicates += 1  # already in the changelog: a replay after a crash
            result.duplicates_by["offset", record.partition] += 1
            return
        if entry.has_seen(event.event_id):
            result.duplicates += 1  # re-sent by its producer: count it once
            result.duplicates_by["event_id", record.partition] += 1
            return
        if event.type == "erase":
            # The ring is kept for the rest of the batch: a repeat of an erased event must not revive it.
            # (Across batches the tombstone forgets the ring too; see the README's erase paragraph.)
            entry = Entry(initialize(), record.offset, NO_SEGMENT, entry.recent_ids)
            result.erasures += 1
        else:
            entry = entry.after(update(entry.state, event), record.offset, event.event_id)
        result.valid += 1
        changed[slot] = (entry, record)

    def _erase(self, slot: tuple[int, str], change: tuple[Entry, Record], result: BatchResult) -> None:
        """Tombstones for a customer whose last event in the batch was ``erase``."""
        partition, customer_id = slot
        key = customer_id.encode("utf-8")
        result.entries.setdefault(partition, {})[customer_id] = None
        result.outputs.append(Output(self.topics.output, key, None))
        result.outputs.append(Output(self.topics.changelog, key, None, partition=partition))

    def _score(self, changed: dict, result: BatchResult) -> None:
        model = self.model()
        rows = [features(entry.state, last_event_ms(entry.state)) for entry, _ in changed.values()]
        _count_out_of_range(rows, model.spec, result.out_of_range)
        started = time.perf_counter()
        assignments = self._score_partitions(model, changed, rows, result)
        result.scoring_seconds = time.perf_counter() - started
        scored_at = wall_time(self.wall_clock())
        schema_hash = model.spec.schema_hash()
        for ((partition, customer_id), (entry, record)), assignment, row in zip(
            changed.items(), assignments, rows, strict=True
        ):
            key = customer_id.encode("utf-8")
            if assignment is None:  # this customer's row cannot be scored: keep its state, publish nothing
                result.valid -= 1
                self._dead_letter(record, "internal_error", "the model could not score this customer", result)
                result.outputs.append(
                    Output(self.topics.changelog, key, entry.to_bytes(), partition=partition)
                )
                result.entries.setdefault(partition, {})[customer_id] = entry.to_bytes()
                continue
            previous = None if entry.last_segment == NO_SEGMENT else entry.last_segment
            entry = entry.scored(assignment.segment_id)
            encoded = entry.to_bytes()
            result.entries.setdefault(partition, {})[customer_id] = encoded
            event_time = last_event_ms(entry.state)
            if previous != assignment.segment_id or not self.emit_only_on_change:
                body = segment_update(
                    customer_id=customer_id,
                    assignment=assignment,
                    previous_segment=previous,
                    model_id=model.model_id,
                    schema_hash=schema_hash,
                    event_time_ms=event_time,
                    scored_at=scored_at,
                    source=record,
                )
                result.outputs.append(Output(self.topics.output, key, encode_json(body)))
            # Co-partitioned with the input, so restoring input partition p reads changelog partition p.
            result.outputs.append(Output(self.topics.changelog, key, encoded, partition=partition))
            result.scored.append(Scored(customer_id, assignment.segment_id, previous, event_time, row))

    def _score_partitions(self, model: Scorer, changed: dict, rows: list, result: BatchResult) -> list:
        """Score per partition, from that partition's checkpoint; a new checkpoint goes with the batch."""
        by_partition: dict[int, list[int]] = {}
        for i, (partition, _) in enumerate(changed):
            by_partition.setdefault(partition, []).append(i)
        assignments: list = [None] * len(rows)
        for partition, indexes in by_partition.items():
            part_rows = [rows[i] for i in indexes]
            scored, checkpoint = _score_rows(model, part_rows, self.store.checkpoint(partition))
            for i, assignment in zip(indexes, scored, strict=True):
                assignments[i] = assignment
            if checkpoint is not None:  # an online model's learned centres
                result.checkpoints[partition] = checkpoint
                result.outputs.append(
                    Output(self.topics.changelog, ONLINE_MODEL_KEY, checkpoint, partition=partition)
                )
        return assignments

    def commit_entries(self, result: BatchResult) -> None:
        """Apply a committed batch's entries (``None``: erased), for partitions this instance still owns."""
        for partition, entries in result.entries.items():
            if self.store.owns(partition):
                self.store.put_many(partition, entries)
        for partition, checkpoint in result.checkpoints.items():
            if self.store.owns(partition):
                self.store.put_checkpoint(partition, checkpoint)


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
