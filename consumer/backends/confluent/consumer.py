"""The confluent-kafka consumer behind :class:`~consumer.backends.abstract.Consumer`.

Rebalance callbacks run inside ``consume()`` on the polling thread; librdkafka applies the new
assignment itself after ``on_assign`` returns. Offsets are stored and committed only explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka

from consumer.backends.abstract import Consumer, IsolationLevel, Record, TopicPartition
from consumer.backends.client import ours
from consumer.backends.config import ClientConfig
from consumer.backends.confluent.config import CONSUMER_DEFAULTS, client_conf
from consumer.backends.confluent.errors import ErrorWatch, translate, translated
from consumer.backends.confluent.partitions import their_offsets, theirs

_LEADER_MOVING = {
    confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION,
    confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE,
    confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
}
_LEADER_BACKOFF_S = 0.1
_EOF = confluent_kafka.KafkaError._PARTITION_EOF
_STOPPING = {confluent_kafka.KafkaError._AUTHENTICATION, confluent_kafka.KafkaError._FATAL}


class ConfluentConsumer(Consumer):
    """A librdkafka group member with manual commits."""

    def __init__(self, config: ClientConfig, group_id: str, isolation_level: IsolationLevel, **tuning):
        self._servers = config.bootstrap_servers
        self._watch = ErrorWatch(self._servers)
        self._timeout_s = config.connect_timeout_s
        conf = {**client_conf(config), **CONSUMER_DEFAULTS, **tuning, "error_cb": self._watch}
        conf.update({"group.id": group_id, "isolation.level": isolation_level})
        self._static = "group.instance.id" in conf  # a fatal error then means fenced (errors.translate)
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
                        callback(ours(partitions))
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
        with translated("polling", self._servers, self._static):
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
        with translated("committing offsets", self._servers, self._static):
            results = self._consumer.commit(offsets=their_offsets(offsets), asynchronous=False)
        failed = [tp for tp in results or () if tp.error is not None]
        if failed:
            what = f"committing offsets of {ours(failed)}"
            raise translate(failed[0].error, what, self._servers, self._static)

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        with translated("fetching committed offsets", self._servers):
            found = self._consumer.committed(theirs(partitions), timeout=self._timeout_s)
        return {
            TopicPartition(tp.topic, tp.partition): (None if tp.offset < 0 else tp.offset) for tp in found
        }

    def assignment(self) -> list[TopicPartition]:
        return ours(self._consumer.assignment())

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.pause(theirs(partitions))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.resume(theirs(partitions))

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        with translated("seeking", self._servers):
            for tp, offset in offsets.items():
                self._consumer.seek(confluent_kafka.TopicPartition(tp.topic, tp.partition, offset))
                self._positions[tp] = offset

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermarks; librdkafka asks for the last stable offset when ``read_committed``."""
        with translated("fetching end offsets", self._servers):
            return {tp: self._watermarks(t)[1] for tp, t in zip(partitions, theirs(partitions), strict=True)}

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
                tp: self._watermarks(t)[0] for tp, t in zip(partitions, theirs(partitions), strict=True)
            }
            self._consumer.assign(their_offsets(starts))
        self._positions.update(starts)
        return starts

    def position(self, tp: TopicPartition) -> int:
        """Next offset to fetch, counting end-of-partition events (which step over transaction markers)."""
        [client_position] = self._consumer.position(theirs([tp]))
        return max(client_position.offset, self._positions.get(tp, 0))

    def _on_message_error(self, error: Any) -> None:
        if error.fatal() or error.code() in _STOPPING:  # a fenced static member's _FATAL is not fatal()
            raise translate(error, "consuming", self._servers, self._static)
        self._watch(error)

    def _raise_callback_error(self) -> None:
        self._watch.raise_auth_error("polling")
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error
