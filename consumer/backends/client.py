"""What the two backends over a real Kafka client (kafka-python, confluent) share.

Both translate their client's exceptions into :mod:`consumer.backends.errors` with the same wording
(:func:`client_error`, :func:`translating`), and both clients name their transaction calls as
:class:`~consumer.backends.abstract.Producer` does, so :class:`ClientProducer` makes those calls once.

>>> client_error(BrokerUnavailableError, "polling", "k1:9092", "timed out")
BrokerUnavailableError('polling: no broker answered at k1:9092: timed out')
>>> ours([TopicPartition("t", 1), TopicPartition("t", 0)])
[TopicPartition(topic='t', partition=0), TopicPartition(topic='t', partition=1)]
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from consumer.backends.abstract import Producer, TopicPartition
from consumer.backends.errors import AuthenticationError, BackendError, BrokerUnavailableError


def ours(partitions: Iterable[Any]) -> list[TopicPartition]:
    """Our :class:`TopicPartition`, sorted, for a client's partition objects (``.topic``, ``.partition``)."""
    return sorted(TopicPartition(tp.topic, tp.partition) for tp in partitions)


def client_error(kind: type[BackendError], what: str, servers: str, cause: object) -> BackendError:
    """A ``kind`` error for a client failure while ``what``, worded alike for every backend."""
    if kind is AuthenticationError:
        return AuthenticationError(f"{what}: the broker refused the credentials ({servers}): {cause}")
    if kind is BrokerUnavailableError:
        return BrokerUnavailableError(f"{what}: no broker answered at {servers}: {cause}")
    return kind(f"{what} failed ({servers}): {cause}")


@contextmanager
def translating(
    caught: type[BaseException],
    translate: Callable[[Any, str, str], BackendError],
    what: str,
    servers: str,
) -> Iterator[None]:
    """Re-raise ``caught`` client exceptions inside the block as ``translate`` makes them."""
    try:
        yield
    except caught as exc:
        raise translate(exc, what, servers) from exc


class ClientProducer(Producer):
    """The transaction calls of a :class:`Producer` that wraps a client producer (``_client``)."""

    _client: Any

    @abstractmethod
    def _translated(self, what: str) -> AbstractContextManager[None]:
        """Translate the client's exceptions raised while ``what`` (the client's ``translated``)."""

    @abstractmethod
    def _client_offsets(self, offsets: Mapping[TopicPartition, int]) -> Any:
        """``offsets`` in the form the client's ``send_offsets_to_transaction`` takes."""

    @abstractmethod
    def _raise_failures(self) -> None:
        """Raise :class:`DeliveryError` for deliveries that failed since the last check."""

    @abstractmethod
    def _forget_deliveries(self) -> None:
        """Drop what is known about deliveries of an aborted transaction."""

    def begin_transaction(self) -> None:
        with self._translated("begin_transaction"):
            self._client.begin_transaction()

    def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_metadata: Any) -> None:
        client_offsets = self._client_offsets(offsets)
        with self._translated("send_offsets_to_transaction"):
            self._client.send_offsets_to_transaction(client_offsets, group_metadata)

    def commit_transaction(self) -> None:
        with self._translated("commit_transaction"):
            self._client.commit_transaction()
        self._raise_failures()

    def abort_transaction(self) -> None:
        with self._translated("abort_transaction"):
            self._client.abort_transaction()
        self._forget_deliveries()
