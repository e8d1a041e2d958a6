"""Import confluent-kafka (optional), map settings to librdkafka names, translate its errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consumer.backends.config import ClientConfig
from consumer.backends.errors import (
    AuthenticationError,
    BackendError,
    BrokerUnavailableError,
    CommitFailedError,
    ConfigurationError,
    ProducerFencedError,
    TransactionAbortedError,
)
from consumer.backends.secret import reveal

try:
    import confluent_kafka
    from confluent_kafka import KafkaError, KafkaException
except ImportError as exc:  # the `fast` extra is optional
    raise ConfigurationError(
        "backend 'confluent' needs confluent-kafka: pip install 'customer-segmenter[fast]'"
    ) from exc

logger = logging.getLogger(__name__)
AUTH_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
_UNAVAILABLE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT})
_COMMIT = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})
_PROBE_SLICE_S = 0.25
_ADMIN_KEYS = frozenset({"bootstrap.servers", "client.id", "security.protocol", "logger"})
_SSL_FILES = {"ssl_cafile": "ssl.ca.location", "ssl_certfile": "ssl.certificate.location"}


def client_conf(config: ClientConfig) -> dict[str, Any]:
    """librdkafka settings for ``config`` (``extra`` wins over the mapped names)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "client.id": config.client_id,
        "security.protocol": config.security_protocol.lower(),
        # librdkafka's own log lines go through `logging` instead of straight to stderr.
        "logger": logging.getLogger("librdkafka"),
    }
    if config.uses_sasl:
        conf.update({"sasl.mechanism": config.sasl_mechanism})
        conf.update({"sasl.username": config.sasl_username, "sasl.password": reveal(config.sasl_password)})
    for name, key in {**_SSL_FILES, "ssl_keyfile": "ssl.key.location"}.items():
        if getattr(config, name) is not None:
            conf[key] = getattr(config, name)
    conf.update(config.extra)
    return conf


def translate(error: Any, what: str, servers: str) -> BackendError:
    """The :mod:`consumer.backends.errors` exception for a librdkafka ``KafkaError``."""
    code = error.code() if isinstance(error, KafkaError) else None
    detail = f"{what} failed ({servers}): {error}"
    if code in AUTH_CODES:
        return AuthenticationError(f"{what}: the broker refused the credentials ({servers}): {error}")
    if code in _FENCED:
        return ProducerFencedError(detail)
    if code in _COMMIT:
        return CommitFailedError(detail)
    if isinstance(error, KafkaError) and error.txn_requires_abort():
        return TransactionAbortedError(detail)
    if code in _UNAVAILABLE:
        return BrokerUnavailableError(f"{what}: no broker answered at {servers}: {error}")
    return BackendError(detail)


@contextmanager
def translated(what: str, servers: str) -> Iterator[None]:
    """Re-raise librdkafka exceptions inside the block as :class:`BackendError` subclasses."""
    try:
        yield
    except KafkaException as exc:
        raise translate(exc.args[0] if exc.args else exc, what, servers) from exc


class ErrorWatch:
    """An ``error_cb``: remembers authentication failures so calls can raise them instead of hanging."""

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self.auth_error: Any = None
        self.last_error: Any = None

    def __call__(self, error: Any) -> None:
        self.last_error = error
        if error.code() in AUTH_CODES:
            self.auth_error = error
        logger.warning("kafka client error (%s): %s", self.servers, error)

    def raise_auth_error(self, what: str) -> None:
        """Raise :class:`AuthenticationError` if the broker refused the credentials."""
        if self.auth_error is not None:
            raise translate(self.auth_error, what, self.servers)

    def check_reachable(self, client: Any, timeout_s: float, serve: Any) -> None:
        """Ask ``client`` for metadata; raise a clear error when no broker answers in ``timeout_s``.

        Asks in short slices and checks for an authentication failure after each, so refused
        credentials fail in well under a second instead of after the whole timeout.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.list_topics(timeout=min(_PROBE_SLICE_S, max(deadline - time.monotonic(), 0.01)))
                break
            except KafkaException as exc:
                serve()
                self.raise_auth_error("connecting")
                if time.monotonic() >= deadline:
                    cause = self.last_error or exc.args[0]
                    raise BrokerUnavailableError(
                        f"no broker answered at {self.servers} within {timeout_s}s: {cause}"
                    ) from exc
        serve()
        self.raise_auth_error("connecting")

    def check_reachable_with_admin(self, conf: dict[str, Any], timeout_s: float) -> None:
        """``check_reachable`` through a short-lived admin client.

        A consumer must not be polled before it subscribes: doing so left librdkafka consuming
        about ten times slower for the life of the consumer (measured by ``bench/raw_consume.py``).
        """
        from confluent_kafka.admin import AdminClient

        admin_conf = {k: v for k, v in conf.items() if k in _ADMIN_KEYS or k.startswith(("sasl.", "ssl."))}
        admin = AdminClient({**admin_conf, "error_cb": self})
        self.check_reachable(admin, timeout_s, lambda: admin.poll(0))


__all__ = ["ErrorWatch", "client_conf", "confluent_kafka", "translate", "translated"]
