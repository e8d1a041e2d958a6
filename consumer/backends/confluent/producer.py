"""The confluent-kafka (librdkafka) producer behind :class:`~consumer.backends.abstract.Producer`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import confluent_kafka

from consumer.backends.abstract import Headers, TopicPartition
from consumer.backends.client import ClientProducer
from consumer.backends.config import ClientConfig
from consumer.backends.confluent.config import PRODUCER_DEFAULTS, client_conf
from consumer.backends.confluent.errors import ErrorWatch, translate, translated
from consumer.backends.confluent.partitions import their_offsets
from consumer.backends.errors import DeliveryError, ProducerFencedError

_SERVE_EVERY = 1000
logger = logging.getLogger(__name__)


class ConfluentProducer(ClientProducer):
    """An idempotent ``acks=all`` librdkafka producer; transactional when given a ``transactional_id``."""

    def __init__(self, config: ClientConfig, transactional_id: str | None = None, **tuning: Any) -> None:
        self._servers = config.bootstrap_servers
        self._watch = ErrorWatch(self._servers)
        conf = {**client_conf(config), **PRODUCER_DEFAULTS, **tuning, "error_cb": self._watch}
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
        self._timeout_s = config.connect_timeout_s
        with translated("creating a confluent producer", self._servers):
            self._client = confluent_kafka.Producer(conf)
        self._watch.check_reachable(self._client, self._timeout_s, lambda: self._client.poll(0))
        self._failures: list[Any] = []
        self._produced = 0
        self._fenced = False

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
                self._client.produce(topic, value, **kwargs)
                break
            except BufferError:  # local queue full: serve deliveries to make room
                self._client.poll(0.05)
            except confluent_kafka.KafkaException as exc:
                error = translate(exc, f"producing to {topic!r}", self._servers)
                self._fenced = isinstance(error, ProducerFencedError)
                raise error from exc
        self._produced += 1
        if self._produced % _SERVE_EVERY == 0:
            self._client.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._client.flush(timeout_s)
        self._watch.raise_auth_error("flushing the producer")
        if remaining:
            raise DeliveryError(f"{remaining} records not acknowledged by {self._servers} after {timeout_s}s")
        self._raise_failures()

    def init_transactions(self) -> None:
        with translated("init_transactions", self._servers):
            self._client.init_transactions(self._timeout_s)

    def close(self) -> None:
        if self._fenced:  # its transaction is aborted by the newcomer; flushing it raised SystemError
            return
        try:
            self._client.flush(self._timeout_s)
        except confluent_kafka.KafkaException as exc:  # a fenced or failed producer has nothing to flush
            logger.warning("closing the producer (%s): %s", self._servers, exc)

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            with translated(what, self._servers):
                yield
        except ProducerFencedError:
            self._fenced = True
            raise

    def _client_offsets(self, offsets: Mapping[TopicPartition, int]) -> Any:
        return their_offsets(offsets)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._failures.append(error)

    def _raise_failures(self) -> None:
        failures, self._failures = self._failures, []
        if failures:
            cause = translate(failures[0], "delivering records", self._servers)
            if isinstance(cause, ProducerFencedError):
                self._fenced = True
                raise cause
            raise DeliveryError(f"{len(failures)} records were not delivered: {cause}")

    def _forget_deliveries(self) -> None:
        self._failures.clear()
