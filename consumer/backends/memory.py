"""The in-memory backend: the same semantics as Kafka for the processor's unit tests, no broker.

Clients made by one :class:`MemoryBackend` share its :class:`MemoryBroker`; pass ``broker=`` to share
one between backends (two processor instances in one test).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from consumer.backends.abstract import (
    Backend,
    Consumer,
    Headers,
    IsolationLevel,
    PartitionsCallback,
    Producer,
    Record,
    TopicPartition,
    TopicSpec,
)
from consumer.backends.errors import BackendError, TransactionError
from consumer.backends.memory_broker import MemoryBroker, MemoryGroupMetadata, Transaction

_member_ids = itertools.count(1)


class MemoryConsumer(Consumer):
    """A group member of the in-memory broker."""

    def __init__(self, broker: MemoryBroker, group_id: str, isolation_level: IsolationLevel) -> None:
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
        deadline = time.monotonic() + timeout_s
        while True:
            self._sync_membership()
            records = self._fetch(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
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
        group = self._broker.group(self._group_id)
        if self._positions:
            self._revoke(list(self._positions))
        with self._broker.changed:
            group.leave(self._member_id)
            self._broker.changed.notify_all()

    def _sync_membership(self) -> None:
        """Run the rebalance steps the group asks of this member, callbacks outside the lock."""
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


class MemoryProducer(Producer):
    """Appends to the in-memory broker at once; transactional when given a ``transactional_id``."""

    def __init__(self, broker: MemoryBroker, transactional_id: str | None) -> None:
        self._broker = broker
        self._transactional_id = transactional_id
        self._epoch: int | None = None
        self._txn: Transaction | None = None

    def produce(self, topic, key, value, headers: Headers = (), partition: int | None = None) -> None:
        if self._transactional_id is not None and self._txn is None:
            raise TransactionError("transactional producer: call begin_transaction() before produce()")
        self._broker.append(topic, key, value, tuple(headers), partition, self._txn)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Nothing to wait for: every append is acknowledged at once."""

    def init_transactions(self) -> None:
        if self._transactional_id is None:
            raise TransactionError("init_transactions() needs a producer built with a transactional_id")
        self._epoch = self._broker.init_transactions(self._transactional_id)

    def begin_transaction(self) -> None:
        if self._epoch is None or self._transactional_id is None:
            raise TransactionError("call init_transactions() before begin_transaction()")
        if self._txn is not None:
            raise TransactionError("a transaction is already open")
        self._txn = self._broker.begin(self._transactional_id, self._epoch)

    def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_metadata: Any) -> None:
        self._broker.add_offsets(self._open_txn(), offsets, group_metadata)

    def commit_transaction(self) -> None:
        self._broker.end(self._open_txn(), commit=True)
        self._txn = None

    def abort_transaction(self) -> None:
        self._broker.end(self._open_txn(), commit=False)
        self._txn = None

    def close(self) -> None:
        self._txn = None

    def _open_txn(self) -> Transaction:
        if self._txn is None:
            raise TransactionError("no open transaction: call begin_transaction() first")
        return self._txn


class MemoryBackend(Backend):
    """Consumers and producers over one shared :class:`MemoryBroker`."""

    name = "memory"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()

    def consumer(
        self,
        group_id: str,
        isolation_level: IsolationLevel = "read_committed",
        group_instance_id: str | None = None,
        **tuning: Any,
    ):
        # One process, no session timeouts: static membership changes nothing here.
        return MemoryConsumer(self.broker, group_id, isolation_level)

    def producer(self, transactional_id: str | None = None, **tuning: Any) -> MemoryProducer:
        return MemoryProducer(self.broker, transactional_id)

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        for spec in specs:
            self.broker.create_topic(spec.name, spec.partitions)

    def read_partitions(
        self,
        partitions: Sequence[TopicPartition],
        isolation_level: IsolationLevel = "read_committed",
        timeout_s: float = 60.0,
    ) -> Iterator[Record]:
        committed_only = isolation_level == "read_committed"
        for tp in partitions:
            if self.broker.partitions_of(tp.topic) <= tp.partition:
                raise BackendError(f"cannot read {tp}: no such topic or partition")
            end = self.broker.end_offset(tp, committed_only)
            position = 0
            while position < end:
                batch, position = self.broker.fetch(tp, position, 10_000, committed_only, end)
                yield from batch
