"""Translate kafka-python exceptions into :mod:`consumer.backends.errors`.

>>> from kafka import errors as kafka_errors
>>> translate(kafka_errors.IllegalGenerationError(), "committing offsets", "k1:9092")
CommitFailedError('committing offsets failed (k1:9092): [Error 22] IllegalGenerationError')
>>> type(translate(kafka_errors.FencedInstanceIdError(), "polling", "k1:9092")).__name__
'InstanceFencedError'
>>> failed_before = kafka_errors.KafkaError("Cannot perform send", kafka_errors.ProducerFencedError())
>>> type(translate(failed_before, "producing", "k1:9092")).__name__
'ProducerFencedError'
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from kafka import errors as kafka_errors

from consumer.backends.client import client_error, translating
from consumer.backends.errors import (
    AuthenticationError,
    BackendError,
    BrokerUnavailableError,
    CommitFailedError,
    ConfigurationError,
    InstanceFencedError,
    ProducerFencedError,
    TransactionAbortedError,
)

AUTH_ERRORS = (
    kafka_errors.SaslAuthenticationFailedError,
    kafka_errors.UnsupportedSaslMechanismError,
    kafka_errors.IllegalSaslStateError,
    kafka_errors.AuthorizationError,
)
_KINDS: tuple[tuple[tuple[type[BaseException], ...], type[BackendError]], ...] = (
    (AUTH_ERRORS, AuthenticationError),
    ((kafka_errors.ProducerFencedError, kafka_errors.InvalidProducerEpochError), ProducerFencedError),
    ((kafka_errors.FencedInstanceIdError,), InstanceFencedError),
    (
        (
            kafka_errors.CommitFailedError,
            kafka_errors.RebalanceInProgressError,
            kafka_errors.IllegalGenerationError,
            kafka_errors.UnknownMemberIdError,
        ),
        CommitFailedError,
    ),
    ((kafka_errors.TransactionAbortedError, kafka_errors.TransactionAbortableError), TransactionAbortedError),
    ((kafka_errors.KafkaConfigurationError,), ConfigurationError),
    ((kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError), BrokerUnavailableError),
)


def translate(exc: BaseException, what: str, servers: str) -> BackendError:
    """The :mod:`consumer.backends.errors` exception for a kafka-python one raised while ``what``.

    A plain ``KafkaError`` may carry the error it stands for (a fenced producer's ``send``: "Cannot
    perform send because at least one previous transactional ... request has failed", ProducerFencedError).
    """
    kind = _kind(exc)
    for inner in exc.args if kind is BackendError else ():
        if isinstance(inner, kafka_errors.KafkaError):
            kind = _kind(inner)
    return client_error(kind, what, servers, exc)


def _kind(exc: BaseException) -> type[BackendError]:
    return next((ours for theirs, ours in _KINDS if isinstance(exc, theirs)), BackendError)


def translated(what: str, servers: str) -> AbstractContextManager[None]:
    """Re-raise kafka-python errors inside the block as :class:`BackendError` subclasses."""
    return translating(kafka_errors.KafkaError, translate, what, servers)
