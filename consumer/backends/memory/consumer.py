"""The in-memory consumer: a group member of the :class:`~.broker.MemoryBroker`, or a restore reader."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence

from consumer.backends.abstract import Consumer, IsolationLevel, PartitionsCallback, Record, TopicPartition
from consumer.backends.errors import BackendError
from consumer.backends.memory.broker import MemoryBroker, MemoryGroupMetadata

_member_ids = itertools.count(1)


class MemoryConsumer(Consumer):
    """A group member of the in-memory broker; without a ``group_id`` a reader assigned by hand."""

    def __init__(self, broker: MemoryBroker, group_id: str | None, isolation_level: IsolationLevel) -> None:
        self._broker = broker
        self._group_id = group_id
        self._member_id = f"{group_id}-member-{next(_member_ids)}"
        self._committed_only = isolation_level == "read_committed"
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._on_assign: PartitionsCallback | None = None
        self._on_revoke: PartitionsCallback | None = None

    def subscribe(self, topics, on_assign=None, on_revoke=None) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke
        with self._broker.changed:
            self._broker.group(self._group_id).join(self._member_id, list(topics))
            self._broker.changed.notify_all()

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Wait for records; a restore reader also returns once it stepped over aborted records only.

        (Its position is what tells ``read_to_end`` that a partition is finished.)
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self._sync_membership()
            before = dict(self._positions) if self._group_id is None else None
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0 or (before is not None and before != self._positions):
                return records
            with self._broker.changed:
                self._broker.changed.wait(remaining)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            self._broker.commit(self._group_id, self._member_id, offsets)

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        return {tp: self._broker.committed(self._group_id, tp) for tp in partitions}

    def assignment(self) -> list[TopicPartition]:
        return list(self._positions)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._positions.update({tp: offset for tp, offset in offsets.items() if tp in self._positions})

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.end_offset(tp, self._committed_only) for tp in partitions}

    def group_metadata(self) -> MemoryGroupMetadata:
        return MemoryGroupMetadata(
            self._group_id, self._broker.group(self._group_id).generation, self._member_id
        )

    def close(self) -> None:
        if self._positions:
            self._revoke(list(self._positions))
        if self._group_id is None:
            return
        with self._broker.changed:
            self._broker.group(self._group_id).leave(self._member_id)
            self._broker.changed.notify_all()

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Assign ``partitions`` manually from their beginning (restore only); return the start offsets."""
        for tp in partitions:
            if self._broker.partitions_of(tp.topic) <= tp.partition:
                raise BackendError(f"cannot read {tp}: no such topic or partition")
        self._positions = dict.fromkeys(partitions, 0)
        return dict(self._positions)

    def position(self, tp: TopicPartition) -> int:
        """Next offset this consumer will fetch from ``tp`` (past any transaction markers)."""
        return self._positions[tp]

    def _sync_membership(self) -> None:
        """Run the rebalance steps the group asks of this member, callbacks outside the lock."""
        if self._group_id is None:
            return
        group = self._broker.group(self._group_id)
        while True:
            with self._broker.changed:
                step = group.next_step(self._member_id)
            if step is None:
                return
            action, partitions = step
            if action == "revoke":
                self._revoke(partitions)
                with self._broker.changed:
                    group.ack_revoke(self._member_id)
                    self._broker.changed.notify_all()
            else:
                self._assign(partitions)

    def _revoke(self, partitions: list[TopicPartition]) -> None:
        if self._on_revoke is not None and partitions:
            self._on_revoke(partitions)
        self._positions.clear()
        self._paused.clear()

    def _assign(self, partitions: list[TopicPartition]) -> None:
        committed = self.committed(partitions)
        self._positions = {tp: committed[tp] or 0 for tp in partitions}
        if self._on_assign is not None and partitions:
            self._on_assign(partitions)

    def _fetch(self, max_records: int) -> list[Record]:
        records: list[Record] = []
        for tp, position in list(self._positions.items()):
            if tp in self._paused or len(records) >= max_records:
                continue
            batch, self._positions[tp] = self._broker.fetch(
                tp, position, max_records - len(records), self._committed_only
            )
            records.extend(batch)
        return records
