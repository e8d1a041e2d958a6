"""Translate librdkafka errors into :mod:`consumer.backends.errors`; notice refused credentials early.

>>> from confluent_kafka import KafkaError
>>> translate(KafkaError(KafkaError.ILLEGAL_GENERATION), "committing offsets", "k1:9092")
CommitFailedError('committing offsets failed (k1:9092): KafkaError{code=ILLEGAL_GENERATION,val=22,\
str="Broker: Specified group generation id is not valid"}')
"""

from __future__ import annotations

import functools
import logging
import time
from contextlib import AbstractContextManager
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from consumer.backends.client import client_error, translating
from consumer.backends.confluent.config import admin_conf
from consumer.backends.errors import (
    AuthenticationError,
    BackendError,
    BrokerUnavailableError,
    CommitFailedError,
    InstanceFencedError,
    ProducerFencedError,
    TransactionAbortedError,
)

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
# The broker (or its group coordinator) is briefly away, as during a restart: worth waiting out.
_UNAVAILABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
    }
)
_COMMIT = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})
_PROBE_SLICE_S = 0.25


def translate(error: Any, what: str, servers: str, static_member: bool = False) -> BackendError:
    """The :mod:`consumer.backends.errors` exception for a librdkafka ``KafkaError`` or ``KafkaException``.

    A fenced static member gets ``_FATAL`` (its cause, FENCED_INSTANCE_ID, only in the text): it is
    the one fatal error of a consumer, so ``static_member`` makes ``_FATAL`` an :class:`InstanceFencedError`.
    """
    if isinstance(error, KafkaException) and error.args:
        error = error.args[0]
    return client_error(_kind(error, static_member), what, servers, error)


def _kind(error: Any, static_member: bool = False) -> type[BackendError]:
    code = error.code() if isinstance(error, KafkaError) else None
    if code == KafkaError.FENCED_INSTANCE_ID or (static_member and code == KafkaError._FATAL):
        return InstanceFencedError
    if code in AUTH_CODES:
        return AuthenticationError
    if code in _FENCED:
        return ProducerFencedError
    if code in _COMMIT:
        return CommitFailedError
    if isinstance(error, KafkaError) and error.txn_requires_abort():
        return TransactionAbortedError
    if code in _UNAVAILABLE:
        return BrokerUnavailableError
    return BackendError


def translated(what: str, servers: str, static_member: bool = False) -> AbstractContextManager[None]:
    """Re-raise librdkafka exceptions inside the block as :class:`BackendError` subclasses."""
    translate_as = functools.partial(translate, static_member=static_member)
    return translating(KafkaException, translate_as, what, servers)


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
        # A broker not (yet) reachable is retried by librdkafka, hundreds of times a minute; what came
        # of it is ours to say (BrokerUnavailableError, the retry warnings), so it shows at DEBUG.
        level = logging.DEBUG if error.code() in _UNAVAILABLE else logging.WARNING
        logger.log(level, "kafka client error (%s): %s", self.servers, error)

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

        admin = AdminClient({**admin_conf(conf), "error_cb": self})
        self.check_reachable(admin, timeout_s, lambda: admin.poll(0))
