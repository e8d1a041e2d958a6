"""The small Kafka interface the processor programs against (modelled on Sentry arroyo's backends).

Three implementations pass one contract suite (``tests/backends/``): ``memory`` (no broker, for unit
tests), ``kafka-python`` (the default) and ``confluent`` (librdkafka, the ``fast`` extra).

Offsets are always *the next offset to read*, as Kafka commits them: after processing the record at
offset 41, commit 42. Callbacks given to :meth:`Consumer.subscribe` run while :meth:`Consumer.poll`
(or :meth:`Consumer.close`) is in progress, so no record is processed concurrently with them: restore
state in ``on_assign`` before the first record of a partition arrives, flush and commit in
``on_revoke`` before another member takes the partition over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from consumer.backends.restore import read_to_end

if TYPE_CHECKING:
    from consumer.backends.restore import PositionedReader

Headers = tuple[tuple[str, bytes], ...]
IsolationLevel = Literal["read_committed", "read_uncommitted"]
PartitionsCallback = Callable[[list["TopicPartition"]], None]


class TopicPartition(NamedTuple):
    """One partition of one topic (our own type: client types never leak out of a backend)."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record, decoded from the client's message type.

    Examples
    --------
    >>> r = Record("events", 2, 41, b"c1", b"{}", (("source", b"web"),), 1_700_000_000_000)
    >>> r.topic_partition, r.next_offset
    (TopicPartition(topic='events', partition=2), 42)
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition this record came from."""
        return TopicPartition(self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        """The offset to commit once this record is processed."""
        return self.offset + 1


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create if missing, e.g. ``TopicSpec("state", 3, config={"cleanup.policy": "compact"})``."""

    name: str
    partitions: int = 1
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


class Consumer(ABC):
    """A consumer-group member with manual, synchronous commits (auto-commit is always off)."""

    @abstractmethod
    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
    ) -> None:
        """Join the group for ``topics``; callbacks fire inside later ``poll``/``close`` calls.

        Callbacks get the whole assignment (eager rebalancing) and never an empty list. ``on_revoke``
        also fires when partitions are lost or on ``close``; an exception raised by a callback
        propagates out of the ``poll`` (or ``close``) that ran it.
        """

    @abstractmethod
    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout_s`` for the first one."""

    @abstractmethod
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit next-offsets synchronously; raises :class:`CommitFailedError` if the group moved on."""

    def raise_if_fenced(self) -> None:
        """Raise :class:`InstanceFencedError` if the client has learnt (from a heartbeat, say) that
        another member joined with this one's ``group_instance_id``; ``poll`` raises it too."""
        return  # a client without static membership (the in-memory one) is never fenced

    @abstractmethod
    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed next-offset per partition (``None`` when never committed)."""

    @abstractmethod
    def assignment(self) -> list[TopicPartition]:
        """The partitions currently assigned to this member."""

    @abstractmethod
    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching from ``partitions`` (membership is kept)."""

    @abstractmethod
    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch again from paused ``partitions``."""

    @abstractmethod
    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Fetch the given assigned partitions again from these offsets (e.g. to redo an aborted batch)."""

    @abstractmethod
    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """End offset per partition: the last stable offset for a ``read_committed`` consumer."""

    @abstractmethod
    def group_metadata(self) -> Any:
        """Opaque group membership snapshot for :meth:`Producer.send_offsets_to_transaction`."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group (``on_revoke`` fires first for held partitions) and release the client."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Producer(ABC):
    """An idempotent producer (``acks=all``); transactional when built with a ``transactional_id``."""

    @abstractmethod
    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        """Queue one record; ``partition=None`` picks one by key hash.

        Delivery is confirmed by :meth:`flush` (or :meth:`commit_transaction`), not per record:
        per-record futures cost more than the rest of the produce path.
        """

    @abstractmethod
    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued record is acknowledged; raise :class:`DeliveryError` otherwise."""

    @abstractmethod
    def init_transactions(self) -> None:
        """Fence older producers with the same transactional id; call once before the first transaction."""

    @abstractmethod
    def begin_transaction(self) -> None:
        """Start a transaction: records produced from now on commit or abort together."""

    @abstractmethod
    def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_metadata: Any) -> None:
        """Add the consumer's next-offsets to the transaction: committed only if it commits."""

    @abstractmethod
    def commit_transaction(self) -> None:
        """Commit (flushing first); may raise ``TransactionAbortedError`` or ``ProducerFencedError``."""

    @abstractmethod
    def abort_transaction(self) -> None:
        """Abort the transaction: its records are never visible to ``read_committed`` readers."""

    @abstractmethod
    def close(self) -> None:
        """Flush what can be flushed and release the client."""

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Backend(ABC):
    """A factory for consumers and producers of one client library, plus the few admin helpers needed.

    A backend implements :meth:`_new_consumer`, :meth:`_restore_reader`, :meth:`producer`,
    :meth:`ensure_topics` and :meth:`partition_counts`; :meth:`consumer` and :meth:`read_partitions`
    are the same for all.
    """

    name: str
    #: The client option that carries ``group_instance_id`` (None: static membership changes nothing).
    group_instance_option: str | None = None

    def consumer(
        self,
        group_id: str,
        isolation_level: IsolationLevel = "read_committed",
        group_instance_id: str | None = None,
        **tuning: Any,
    ) -> Consumer:
        """A group member starting from the earliest offset when the group has no commit.

        ``group_instance_id`` makes it a static member (KIP-345): a member restarted with the same id
        gets its partitions back at once instead of after the session timeout, and closing does not
        leave the group (its partitions wait for it, up to the session timeout). ``tuning`` takes the
        client's own option names.
        """
        if group_instance_id is not None and self.group_instance_option is not None:
            tuning = {**tuning, self.group_instance_option: group_instance_id}
        return self._new_consumer(group_id, isolation_level, tuning)

    @abstractmethod
    def producer(self, transactional_id: str | None = None, **tuning: Any) -> Producer:
        """An idempotent producer, transactional when ``transactional_id`` is given."""

    @abstractmethod
    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    @abstractmethod
    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        """How many partitions each of ``topics`` has (0 for a topic that does not exist)."""

    def read_partitions(
        self,
        partitions: Sequence[TopicPartition],
        isolation_level: IsolationLevel = "read_committed",
        timeout_s: float = 60.0,
    ) -> Iterator[Record]:
        """Read ``partitions`` from the beginning to the end offsets seen at the start, then stop.

        For restoring state from a (compacted) changelog: a manual assignment outside any group,
        fetched in large batches; empty partitions and offset gaps (compaction, transaction markers)
        end the read too. Raises ``TimeoutError`` if the ends are not reached within ``timeout_s``.
        """
        reader = self._restore_reader(isolation_level)
        try:
            yield from read_to_end(reader, partitions, timeout_s)
        finally:
            reader.close()

    @abstractmethod
    def _new_consumer(
        self, group_id: str, isolation_level: IsolationLevel, tuning: dict[str, Any]
    ) -> Consumer:
        """The group member :meth:`consumer` returns, ``tuning`` already holding the static-member id."""

    @abstractmethod
    def _restore_reader(self, isolation_level: IsolationLevel) -> PositionedReader:
        """A consumer outside any group for :meth:`read_partitions` (which closes it)."""
