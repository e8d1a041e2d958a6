"""The confluent-kafka (librdkafka) producer behind :class:`~consumer.backends.abstract.Producer`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from consumer.backends.abstract import Headers, Producer, TopicPartition
from consumer.backends.config import ClientConfig
from consumer.backends.confluent_errors import ErrorWatch, client_conf, confluent_kafka, translate, translated
from consumer.backends.errors import DeliveryError

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    # Java's and kafka-python's partitioner, so a key lands on the same partition whichever client wrote it.
    "partitioner": "murmur2_random",
}
_SERVE_EVERY = 1000
logger = logging.getLogger(__name__)


class ConfluentProducer(Producer):
    """An idempotent ``acks=all`` librdkafka producer; transactional when given a ``transactional_id``."""

    def __init__(self, config: ClientConfig, transactional_id: str | None = None, **tuning: Any) -> None:
        self._servers = config.bootstrap_servers
        self._watch = ErrorWatch(self._servers)
        conf = {**client_conf(config), **PRODUCER_DEFAULTS, **tuning, "error_cb": self._watch}
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
        self._timeout_s = config.connect_timeout_s
        with translated("creating a confluent producer", self._servers):
            self._producer = confluent_kafka.Producer(conf)
        self._watch.check_reachable(self._producer, self._timeout_s, lambda: self._producer.poll(0))
        self._failures: list[Any] = []
        self._produced = 0

    def produce(self, topic, key, value, headers: Headers = (), partition: int | None = None) -> None:
        kwargs: dict[str, Any] = {
            "key": key,
            "headers": list(headers) or None,
            "on_delivery": self._delivered,
        }
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                break
            except BufferError:  # local queue full: serve deliveries to make room
                self._producer.poll(0.05)
            except confluent_kafka.KafkaException as exc:
                raise translate(exc.args[0], f"producing to {topic!r}", self._servers) from exc
        self._produced += 1
        if self._produced % _SERVE_EVERY == 0:
            self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._producer.flush(timeout_s)
        self._watch.raise_auth_error("flushing the producer")
        if remaining:
            raise DeliveryError(f"{remaining} records not acknowledged by {self._servers} after {timeout_s}s")
        self._raise_failures()

    def init_transactions(self) -> None:
        with translated("init_transactions", self._servers):
            self._producer.init_transactions(self._timeout_s)

    def begin_transaction(self) -> None:
        with translated("begin_transaction", self._servers):
            self._producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_metadata: Any) -> None:
        positions = [confluent_kafka.TopicPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        with translated("send_offsets_to_transaction", self._servers):
            self._producer.send_offsets_to_transaction(positions, group_metadata)

    def commit_transaction(self) -> None:
        with translated("commit_transaction", self._servers):
            self._producer.commit_transaction()
        self._raise_failures()

    def abort_transaction(self) -> None:
        with translated("abort_transaction", self._servers):
            self._producer.abort_transaction()
        self._failures.clear()

    def close(self) -> None:
        try:
            self._producer.flush(self._timeout_s)
        except confluent_kafka.KafkaException as exc:  # a fenced or failed producer has nothing to flush
            logger.warning("closing the producer (%s): %s", self._servers, exc)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def _raise_failures(self) -> None:
        failures, self._failures = self._failures, []
        if failures:
            cause = translate(failures[0], "delivering records", self._servers)
            raise DeliveryError(f"{len(failures)} records were not delivered: {cause}")
