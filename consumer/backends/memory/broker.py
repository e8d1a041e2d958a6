"""An in-memory Kafka broker: partition logs, committed offsets, groups and transactions.

Transactional records are appended at once but stay invisible to ``read_committed`` readers until the
transaction ends: the last stable offset stops at the first open transaction. Ending a transaction
writes a control marker into each partition it touched, so offsets have gaps as in Kafka. There is
no compaction: readers see every record.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from consumer.backends.abstract import Headers, Record, TopicPartition
from consumer.backends.errors import (
    BackendError,
    CommitFailedError,
    ProducerFencedError,
    TransactionAbortedError,
)
from consumer.backends.memory.group import MemoryGroup


@dataclass
class Transaction:
    """One open transaction of a transactional producer."""

    transactional_id: str
    epoch: int
    state: Literal["open", "committed", "aborted"] = "open"
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    offsets: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryGroupMetadata:
    """What ``group_metadata()`` returns: enough to refuse offsets from a stale generation."""

    group_id: str
    generation: int
    member_id: str


class MemoryBroker:
    """Shared state of the in-memory backend; every method is thread-safe."""

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.RLock())
        self._logs: dict[str, list[list[tuple[Record | None, Transaction | None]]]] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._groups: dict[str, MemoryGroup] = {}
        self._epochs: dict[str, int] = {}
        self._open: dict[str, Transaction] = {}

    def create_topic(self, name: str, partitions: int) -> None:
        """Create ``name`` unless it exists."""
        with self.changed:
            self._logs.setdefault(name, [[] for _ in range(partitions)])

    def partitions_of(self, topic: str) -> int:
        """Number of partitions of ``topic`` (0 when it does not exist)."""
        return len(self._logs.get(topic, ()))

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None,
        txn: Transaction | None,
    ) -> None:
        """Append one record; the partition defaults to a hash of the key."""
        with self.changed:
            log = self._log(topic, partition)
            if partition is None:
                partition = zlib.crc32(key) % len(log) if key is not None else 0
            entries = log[partition]
            record = Record(topic, partition, len(entries), key, value, headers, int(time.time() * 1000))
            if txn is not None:
                self._check_epoch(txn)
                txn.first_offsets.setdefault(TopicPartition(topic, partition), len(entries))
            entries.append((record, txn))
            self.changed.notify_all()

    def fetch(
        self, tp: TopicPartition, position: int, limit: int, committed_only: bool
    ) -> tuple[list[Record], int]:
        """Visible records from ``position`` on, at most ``limit``; and the new position."""
        entries = self._logs[tp.topic][tp.partition]
        end = self.end_offset(tp, committed_only)
        records: list[Record] = []
        while position < end and len(records) < limit:
            record, txn = entries[position]
            position += 1
            if record is not None and not (committed_only and txn is not None and txn.state == "aborted"):
                records.append(record)
        return records, position

    def end_offset(self, tp: TopicPartition, committed_only: bool) -> int:
        """High watermark, or for ``read_committed`` the last stable offset."""
        with self.changed:
            end = len(self._logs[tp.topic][tp.partition])
            if committed_only:
                starts = [t.first_offsets[tp] for t in self._open.values() if tp in t.first_offsets]
                end = min([end, *starts])
            return end

    def group(self, group_id: str) -> MemoryGroup:
        """The group called ``group_id``, created on first use."""
        with self.changed:
            return self._groups.setdefault(group_id, MemoryGroup(group_id, self.partitions_of))

    def commit(self, group_id: str, member_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit offsets of partitions the member holds; refuse the others."""
        with self.changed:
            group = self.group(group_id)
            foreign = [tp for tp in offsets if not group.owns(member_id, tp)]
            if foreign:
                raise CommitFailedError(f"group {group_id!r} rebalanced: member no longer owns {foreign}")
            self._committed.update({(group_id, tp): offset for tp, offset in offsets.items()})

    def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        """The committed next-offset of ``tp`` for ``group_id``."""
        return self._committed.get((group_id, tp))

    def init_transactions(self, transactional_id: str) -> int:
        """Abort the id's open transaction, bump and return its epoch (fencing older producers)."""
        with self.changed:
            stale = self._open.get(transactional_id)
            if stale is not None:
                self._finish(stale, commit=False)
            self._epochs[transactional_id] = self._epochs.get(transactional_id, 0) + 1
            return self._epochs[transactional_id]

    def begin(self, transactional_id: str, epoch: int) -> Transaction:
        """Open a transaction for the id at ``epoch``."""
        with self.changed:
            txn = Transaction(transactional_id, epoch)
            self._check_epoch(txn)
            self._open[transactional_id] = txn
            return txn

    def add_offsets(self, txn: Transaction, offsets: Mapping[TopicPartition, int], meta: object) -> None:
        """Attach group offsets to ``txn``; refused when the group generation moved on."""
        if not isinstance(meta, MemoryGroupMetadata):
            raise BackendError(f"group_metadata={meta!r} is not from a memory consumer")
        with self.changed:
            self._check_epoch(txn)
            if self.group(meta.group_id).generation != meta.generation:
                raise TransactionAbortedError(
                    f"group {meta.group_id!r} rebalanced since generation {meta.generation}"
                )
            txn.offsets.update({(meta.group_id, tp): offset for tp, offset in offsets.items()})

    def end(self, txn: Transaction, commit: bool) -> None:
        """Commit or abort ``txn``: markers are written and, on commit, its offsets applied."""
        with self.changed:
            self._check_epoch(txn)
            self._finish(txn, commit)

    def _finish(self, txn: Transaction, commit: bool) -> None:
        txn.state = "committed" if commit else "aborted"
        for tp in txn.first_offsets:
            self._logs[tp.topic][tp.partition].append((None, txn))
        if commit:
            self._committed.update(txn.offsets)
        self._open.pop(txn.transactional_id, None)
        self.changed.notify_all()

    def _check_epoch(self, txn: Transaction) -> None:
        if self._epochs.get(txn.transactional_id) != txn.epoch:
            raise ProducerFencedError(
                f"transactional_id={txn.transactional_id!r} was taken by a newer producer"
            )

    def _log(self, topic: str, partition: int | None) -> list[list]:
        log = self._logs.get(topic)
        if log is None:
            raise BackendError(f"topic {topic!r} does not exist; create it with ensure_topics")
        if partition is not None and not 0 <= partition < len(log):
            raise BackendError(f"partition={partition} is out of range for topic {topic!r} ({len(log)})")
        return log
