"""The kafka-python producer behind :class:`~consumer.backends.abstract.Producer`."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from kafka import KafkaProducer

from consumer.backends.abstract import Headers, TopicPartition
from consumer.backends.client import ClientProducer
from consumer.backends.config import ClientConfig
from consumer.backends.errors import DeliveryError, ProducerFencedError
from consumer.backends.kafka_python.config import PRODUCER_DEFAULTS, client_options
from consumer.backends.kafka_python.errors import translate, translated
from consumer.backends.kafka_python.partitions import their_offsets


class KafkaPythonProducer(ClientProducer):
    """An idempotent ``acks=all`` KafkaProducer; transactional when given a ``transactional_id``."""

    def __init__(self, config: ClientConfig, transactional_id: str | None = None, **tuning: Any) -> None:
        self._servers = config.bootstrap_servers
        options = {**client_options(config), **PRODUCER_DEFAULTS, **tuning}
        options.setdefault("max_block_ms", int(config.connect_timeout_s * 1000))
        if transactional_id is not None:
            options["transactional_id"] = transactional_id
        with translated("creating a kafka-python producer", self._servers):
            self._client = KafkaProducer(**options)
        self._pending: list[Any] = []

    def produce(self, topic, key, value, headers: Headers = (), partition: int | None = None) -> None:
        with translated(f"producing to {topic!r}", self._servers):
            future = self._client.send(
                topic, value=value, key=key, headers=list(headers) or None, partition=partition
            )
        self._pending.append(future)

    def flush(self, timeout_s: float = 30.0) -> None:
        with translated("flushing the producer", self._servers):
            self._client.flush(timeout=timeout_s)
        self._raise_failures()

    def init_transactions(self) -> None:
        with translated("init_transactions", self._servers):
            self._client.init_transactions()

    def close(self) -> None:
        with translated("closing the producer", self._servers):
            self._client.close(timeout=30)

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return translated(what, self._servers)

    def _client_offsets(self, offsets: Mapping[TopicPartition, int]) -> Any:
        return their_offsets(offsets)

    def _raise_failures(self) -> None:
        pending, self._pending = self._pending, []
        failures = [f.exception for f in pending if f.is_done and f.exception is not None]
        if failures:
            cause = translate(failures[0], "delivering records", self._servers)
            if isinstance(cause, ProducerFencedError):  # commit_transaction may not have said so
                raise cause
            raise DeliveryError(f"{len(failures)} of {len(pending)} records were not delivered: {cause}")

    def _forget_deliveries(self) -> None:
        self._pending.clear()
