"""The kafka-python producer behind :class:`~consumer.backends.abstract.Producer`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.structs import OffsetAndMetadata

from consumer.backends.abstract import Headers, Producer, TopicPartition
from consumer.backends.config import ClientConfig
from consumer.backends.errors import DeliveryError
from consumer.backends.kafka_python_errors import client_options, translate, translated

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    # A few milliseconds of lingering fills batches under load at little latency cost.
    "linger_ms": 5,
    "batch_size": 256 * 1024,
}


class KafkaPythonProducer(Producer):
    """An idempotent ``acks=all`` KafkaProducer; transactional when given a ``transactional_id``."""

    def __init__(self, config: ClientConfig, transactional_id: str | None = None, **tuning: Any) -> None:
        self._servers = config.bootstrap_servers
        options = {**client_options(config), **PRODUCER_DEFAULTS, **tuning}
        options.setdefault("max_block_ms", int(config.connect_timeout_s * 1000))
        if transactional_id is not None:
            options["transactional_id"] = transactional_id
        with translated("creating a kafka-python producer", self._servers):
            self._producer = KafkaProducer(**options)
        self._pending: list[Any] = []

    def produce(self, topic, key, value, headers: Headers = (), partition: int | None = None) -> None:
        with translated(f"producing to {topic!r}", self._servers):
            future = self._producer.send(
                topic, value=value, key=key, headers=list(headers) or None, partition=partition
            )
        self._pending.append(future)

    def flush(self, timeout_s: float = 30.0) -> None:
        with translated("flushing the producer", self._servers):
            self._producer.flush(timeout=timeout_s)
        self._raise_failures()

    def init_transactions(self) -> None:
        with translated("init_transactions", self._servers):
            self._producer.init_transactions()

    def begin_transaction(self) -> None:
        with translated("begin_transaction", self._servers):
            self._producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_metadata: Any) -> None:
        kafka_offsets = {
            KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
            for tp, offset in offsets.items()
        }
        with translated("send_offsets_to_transaction", self._servers):
            self._producer.send_offsets_to_transaction(kafka_offsets, group_metadata)

    def commit_transaction(self) -> None:
        with translated("commit_transaction", self._servers):
            self._producer.commit_transaction()
        self._raise_failures()

    def abort_transaction(self) -> None:
        with translated("abort_transaction", self._servers):
            self._producer.abort_transaction()
        self._pending.clear()

    def close(self) -> None:
        with translated("closing the producer", self._servers):
            self._producer.close(timeout=30)

    def _raise_failures(self) -> None:
        """Turn failed deliveries since the last check into one :class:`DeliveryError`."""
        pending, self._pending = self._pending, []
        failures = [f.exception for f in pending if f.is_done and f.exception is not None]
        if failures:
            cause = translate(failures[0], "delivering records", self._servers)
            raise DeliveryError(f"{len(failures)} of {len(pending)} records were not delivered: {cause}")
