"""Translate kafka-python exceptions and settings into this package's terms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import errors as kafka_errors

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

_AUTH = (
    kafka_errors.SaslAuthenticationFailedError,
    kafka_errors.UnsupportedSaslMechanismError,
    kafka_errors.IllegalSaslStateError,
    kafka_errors.AuthorizationError,
)
_FENCED = (kafka_errors.ProducerFencedError, kafka_errors.InvalidProducerEpochError)
_COMMIT = (
    kafka_errors.CommitFailedError,
    kafka_errors.RebalanceInProgressError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
)
_UNAVAILABLE = (kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError)


def client_options(config: ClientConfig) -> dict[str, Any]:
    """kafka-python keyword arguments for ``config`` (``extra`` wins over the mapped names)."""
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers.split(","),
        "client_id": config.client_id,
        "security_protocol": config.security_protocol,
        "bootstrap_timeout_ms": int(config.connect_timeout_s * 1000),
    }
    if config.uses_sasl:
        options.update(
            sasl_mechanism=config.sasl_mechanism,
            sasl_plain_username=config.sasl_username,
            sasl_plain_password=reveal(config.sasl_password),
        )
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if getattr(config, name) is not None:
            options[name] = getattr(config, name)
    options.update(config.extra)
    return options


def translate(exc: BaseException, what: str, servers: str) -> BackendError:
    """The :mod:`consumer.backends.errors` exception for a kafka-python one raised while ``what``."""
    detail = f"{what} failed ({servers}): {exc}"
    if isinstance(exc, _AUTH):
        return AuthenticationError(f"{what}: the broker refused the credentials ({servers}): {exc}")
    if isinstance(exc, _FENCED):
        return ProducerFencedError(detail)
    if isinstance(exc, _COMMIT):
        return CommitFailedError(detail)
    if isinstance(exc, kafka_errors.TransactionAbortedError | kafka_errors.TransactionAbortableError):
        return TransactionAbortedError(detail)
    if isinstance(exc, kafka_errors.KafkaConfigurationError):
        return ConfigurationError(detail)
    if isinstance(exc, _UNAVAILABLE):
        return BrokerUnavailableError(f"{what}: no broker answered at {servers}: {exc}")
    return BackendError(detail)


@contextmanager
def translated(what: str, servers: str) -> Iterator[None]:
    """Re-raise kafka-python errors inside the block as :class:`BackendError` subclasses."""
    try:
        yield
    except kafka_errors.KafkaError as exc:
        raise translate(exc, what, servers) from exc
