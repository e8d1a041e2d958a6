"""The in-memory producer: appends to the :class:`~.broker.MemoryBroker` at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consumer.backends.abstract import Headers, Producer, TopicPartition
from consumer.backends.errors import TransactionError
from consumer.backends.memory.broker import MemoryBroker, Transaction


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
