"""The confluent-kafka backend (librdkafka; the ``fast`` extra).

Rebalance callbacks run inside ``consume()`` on the polling thread; librdkafka applies the new
assignment itself after ``on_assign`` returns. Offsets are stored and committed only explicitly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from consumer.backends.abstract import Backend, Consumer, IsolationLevel, Record, TopicPartition, TopicSpec
from consumer.backends.config import ClientConfig
from consumer.backends.confluent_errors import ErrorWatch, client_conf, confluent_kafka, translate, translated
from consumer.backends.confluent_producer import ConfluentProducer
from consumer.backends.restore import read_to_end

_LEADER_MOVING = {
    confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION,
    confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE,
    confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
}
_LEADER_BACKOFF_S = 0.1

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "range",
    # librdkafka pauses a partition's fetching this long once its local queue is full (default 1 s):
    # whenever processing is slower than fetching, that stalls the consumer to ~15% of its rate.
    "fetch.queue.backoff.ms": 10,
    # A killed member's partitions wait this long for a new owner (Kafka's client default is 45 s).
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
}
_EOF = confluent_kafka.KafkaError._PARTITION_EOF
_NO_OFFSET = confluent_kafka.OFFSET_INVALID


def _theirs(partitions: Iterable[TopicPartition]) -> list[Any]:
    return [confluent_kafka.TopicPartition(tp.topic, tp.partition) for tp in partitions]


def _ours(partitions: Iterable[Any]) -> list[TopicPartition]:
    return sorted(TopicPartition(tp.topic, tp.partition) for tp in partitions)


class ConfluentConsumer(Consumer):
    """A librdkafka group member with manual commits."""

    def __init__(self, config: ClientConfig, group_id: str, isolation_level: IsolationLevel, **tuning):
        self._servers = config.bootstrap_servers
        self._watch = ErrorWatch(self._servers)
        self._timeout_s = config.connect_timeout_s
        conf = {**client_conf(config), **CONSUMER_DEFAULTS, **tuning, "error_cb": self._watch}
        conf.update({"group.id": group_id, "isolation.level": isolation_level})
        with translated("creating a confluent consumer", self._servers):
            self._consumer = confluent_kafka.Consumer(conf)
        self._watch.check_reachable_with_admin(conf, self._timeout_s)
        self._positions: dict[TopicPartition, int] = {}
        self._callback_error: BaseException | None = None

    def subscribe(self, topics, on_assign=None, on_revoke=None) -> None:
        def call(callback, assign: bool = False):
            def run(_consumer: Any, partitions: list[Any]) -> None:
                if assign:  # applied before the callback, so a pause() inside it is kept
                    self._consumer.assign(partitions)
                if callback is not None and partitions and self._callback_error is None:
                    try:
                        callback(_ours(partitions))
                    except BaseException as exc:  # re-raised after consume() returns
                        self._callback_error = exc

            return run

        with translated(f"subscribing to {list(topics)}", self._servers):
            self._consumer.subscribe(
                list(topics),
                on_assign=call(on_assign, assign=True),
                on_revoke=call(on_revoke),
                on_lost=call(on_revoke),
            )

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        with translated("polling", self._servers):
            messages = self._fetch(max_records, timeout_s)
        self._raise_callback_error()
        records = []
        for m in messages:
            error = m.error()
            if error is None:
                records.append(
                    Record(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.value(),
                        tuple(m.headers() or ()),
                        m.timestamp()[1],
                    )
                )
            elif error.code() == _EOF:
                self._positions[TopicPartition(m.topic(), m.partition())] = m.offset()
            else:
                self._on_message_error(error)
        return records

    def _fetch(self, max_records: int, timeout_s: float) -> list[Any]:
        """What is already fetched (up to ``max_records``), else wait for the first record only.

        ``consume(n, timeout)`` waits until it has ``n`` messages or the timeout passes, so under a
        light load every batch would wait the whole poll timeout (hundreds of ms of latency).
        """
        messages = self._consumer.consume(num_messages=max_records, timeout=0)
        if messages or timeout_s <= 0:
            return messages
        messages = self._consumer.consume(num_messages=1, timeout=timeout_s)
        if messages and max_records > 1:
            messages += self._consumer.consume(num_messages=max_records - 1, timeout=0)
        return messages

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        positions = [confluent_kafka.TopicPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        with translated("committing offsets", self._servers):
            results = self._consumer.commit(offsets=positions, asynchronous=False)
        failed = [tp for tp in results or () if tp.error is not None]
        if failed:
            raise translate(failed[0].error, f"committing offsets of {_ours(failed)}", self._servers)

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        with translated("fetching committed offsets", self._servers):
            found = self._consumer.committed(_theirs(partitions), timeout=self._timeout_s)
        return {
            TopicPartition(tp.topic, tp.partition): (None if tp.offset < 0 else tp.offset) for tp in found
        }

    def assignment(self) -> list[TopicPartition]:
        return _ours(self._consumer.assignment())

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.pause(_theirs(partitions))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.resume(_theirs(partitions))

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        with translated("seeking", self._servers):
            for tp, offset in offsets.items():
                self._consumer.seek(confluent_kafka.TopicPartition(tp.topic, tp.partition, offset))
                self._positions[tp] = offset

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermarks; librdkafka asks for the last stable offset when ``read_committed``."""
        with translated("fetching end offsets", self._servers):
            return {tp: self._watermarks(t)[1] for tp, t in zip(partitions, _theirs(partitions), strict=True)}

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        with translated("closing the consumer", self._servers):
            self._consumer.close()
        self._raise_callback_error()

    def _watermarks(self, partition: Any) -> tuple[int, int]:
        """Low and high watermark, waiting out a leader not yet known for a just-created topic.

        Right after CreateTopics a broker can answer NOT_LEADER_FOR_PARTITION (or LEADER_NOT_AVAILABLE)
        until the partition's leadership has propagated; librdkafka refreshes its metadata meanwhile.
        """
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                return self._consumer.get_watermark_offsets(partition, self._timeout_s, False)
            except confluent_kafka.KafkaException as exc:
                if exc.args[0].code() not in _LEADER_MOVING or time.monotonic() > deadline:
                    raise
                time.sleep(_LEADER_BACKOFF_S)

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Assign ``partitions`` manually from their beginning (restore only); return the start offsets."""
        with translated("assigning partitions", self._servers):
            starts = {
                tp: self._watermarks(t)[0] for tp, t in zip(partitions, _theirs(partitions), strict=True)
            }
            self._consumer.assign(
                [confluent_kafka.TopicPartition(tp.topic, tp.partition, o) for tp, o in starts.items()]
            )
        self._positions.update(starts)
        return starts

    def position(self, tp: TopicPartition) -> int:
        """Next offset to fetch, counting end-of-partition events (which step over transaction markers)."""
        [theirs] = self._consumer.position(_theirs([tp]))
        return max(theirs.offset, self._positions.get(tp, 0))

    def _on_message_error(self, error: Any) -> None:
        if error.fatal() or error.code() in {confluent_kafka.KafkaError._AUTHENTICATION}:
            raise translate(error, "consuming", self._servers)
        self._watch(error)

    def _raise_callback_error(self) -> None:
        self._watch.raise_auth_error("polling")
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error


class ConfluentBackend(Backend):
    """Consumers, producers and topic creation with confluent-kafka."""

    name = "confluent"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def consumer(
        self,
        group_id: str,
        isolation_level: IsolationLevel = "read_committed",
        group_instance_id: str | None = None,
        **tuning: Any,
    ):
        if group_instance_id is not None:
            tuning = {**tuning, "group.instance.id": group_instance_id}
        return ConfluentConsumer(self.config, group_id, isolation_level, **tuning)

    def producer(self, transactional_id: str | None = None, **tuning: Any) -> ConfluentProducer:
        return ConfluentProducer(self.config, transactional_id, **tuning)

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        conf = client_conf(self.config)
        # Refused credentials or no broker: say so now, not after the topic-creation timeout.
        watch = ErrorWatch(self.config.bootstrap_servers)
        watch.check_reachable_with_admin(conf, self.config.connect_timeout_s)
        admin = AdminClient(conf)
        new = [NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config)) for s in specs]
        futures = admin.create_topics(new, operation_timeout=30) if new else {}
        for name, future in futures.items():
            with translated(f"creating topic {name!r}", self.config.bootstrap_servers):
                try:
                    future.result()
                except confluent_kafka.KafkaException as exc:
                    if exc.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                        raise

    def read_partitions(
        self,
        partitions: Sequence[TopicPartition],
        isolation_level: IsolationLevel = "read_committed",
        timeout_s: float = 60.0,
    ) -> Iterator[Record]:
        # librdkafka wants a group id even for manual assignment; nothing is ever committed under it.
        reader = ConfluentConsumer(
            self.config, f"restore-{uuid.uuid4().hex}", isolation_level, **{"enable.partition.eof": True}
        )
        try:
            yield from read_to_end(reader, partitions, timeout_s)
        finally:
            reader.close()
