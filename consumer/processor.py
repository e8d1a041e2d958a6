"""One poll batch in, everything to write out: the scorer's logic, with no I/O at all.

``Processor.process(records)`` decodes each record (invalid ones become dead letters), folds the
valid events into their customers' state, scores every changed customer in ONE vectorised call, and
returns the outputs to produce, the offsets to commit and the new state entries. The caller applies
the entries to the store only after the outputs and offsets are durably committed, so an aborted or
failed batch leaves the in-memory state exactly as the changelog has it.

A customer is scored as of its own latest event (event time): the result depends only on that
customer's events, never on how the stream was cut into batches or partitions, which is what lets a
restarted, rebalanced or file-mode run produce the same segments as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from consumer.backends.abstract import Record, TopicPartition
from consumer.outputs import Output, dead_letter, encode_json, segment_update, wall_time
from consumer.state_store import NO_SEGMENT, ONLINE_MODEL_KEY, Entry, StateStore
from model.errors import InvalidEvent
from model.events import decode_event
from model.features import features, last_event_ms, update
from model.spec import FeatureSpec

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """What the processor needs of a model: the batch artifact model and the online river model."""

    model_id: str
    spec: FeatureSpec

    def score(self, rows: Sequence[dict[str, Any]]) -> list: ...


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
    ) -> None:
        self.store = store
        self.model = model
        self.topics = topics
        self.emit_only_on_change = emit_only_on_change
        self.wall_clock = wall_clock

    def process(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        changed: dict[tuple[int, str], tuple[Entry, Record]] = {}
        for record in records:
            result.offsets[record.topic_partition] = record.next_offset
            self._fold(record, changed, result)
        if changed:
            self._score(changed, result)
        return result

    def _fold(self, record: Record, changed: dict, result: BatchResult) -> None:
        try:
            event = decode_event(record.value)
            if record.key is not None and record.key.decode("utf-8", "replace") != event.customer_id:
                raise InvalidEvent(
                    "customer_id", "differs from the record key", event.customer_id, reason="key_mismatch"
                )
        except InvalidEvent as error:
            where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            log.warning("dead letter %s: %s", where, error, extra={**where, "reason": error.reason})
            result.invalid[error.reason] += 1
            result.outputs.append(dead_letter(self.topics.dead_letter, record, error))
            return
        slot = (record.partition, event.customer_id)
        entry = changed[slot][0] if slot in changed else self.store.get(*slot)
        if record.offset <= entry.last_offset:
            result.duplicates += 1  # already in the changelog: a replay after a crash
            result.duplicates_by["offset", record.partition] += 1
            return
        result.valid += 1
        entry = Entry(update(entry.state, event), record.offset, entry.last_segment)
        changed[slot] = (entry, record)

    def _score(self, changed: dict, result: BatchResult) -> None:
        model = self.model()
        rows = [features(entry.state, last_event_ms(entry.state)) for entry, _ in changed.values()]
        started = time.perf_counter()
        if hasattr(model, "score_partition"):
            assignments = self._score_online(model, changed, rows, result)
        else:
            assignments = model.score(rows)
        result.scoring_seconds = time.perf_counter() - started
        scored_at = wall_time(self.wall_clock())
        schema_hash = model.spec.schema_hash()
        for ((partition, customer_id), (entry, record)), assignment, row in zip(
            changed.items(), assignments, rows, strict=True
        ):
            previous = None if entry.last_segment == NO_SEGMENT else entry.last_segment
            entry = Entry(entry.state, entry.last_offset, assignment.segment_id)
            encoded = entry.to_bytes()
            result.entries.setdefault(partition, {})[customer_id] = encoded
            key = customer_id.encode("utf-8")
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

    def _score_online(self, model, changed: dict, rows: list, result: BatchResult) -> list:
        """Score per partition with that partition's learned centres; checkpoint them with the batch."""
        by_partition: dict[int, list[int]] = {}
        for i, (partition, _) in enumerate(changed):
            by_partition.setdefault(partition, []).append(i)
        assignments: list = [None] * len(rows)
        for partition, indexes in by_partition.items():
            scored, checkpoint = model.score_partition(
                [rows[i] for i in indexes], self.store.checkpoint(partition)
            )
            for i, assignment in zip(indexes, scored, strict=True):
                assignments[i] = assignment
            result.checkpoints[partition] = checkpoint
            result.outputs.append(
                Output(self.topics.changelog, ONLINE_MODEL_KEY, checkpoint, partition=partition)
            )
        return assignments

    def commit_entries(self, result: BatchResult) -> None:
        """Apply a committed batch's entries, for partitions this instance still owns."""
        for partition, entries in result.entries.items():
            if self.store.owns(partition):
                self.store.put_many(partition, entries)
        for partition, checkpoint in result.checkpoints.items():
            if self.store.owns(partition):
                self.store.put_checkpoint(partition, checkpoint)
