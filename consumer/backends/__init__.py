"""Kafka clients behind one small interface: kafka-python, confluent-kafka and in-memory.

What every backend shares lives here: the interface and ``Backend``'s common methods
(``abstract``), connection settings (``config``), the error tree (``errors``), passwords
(``secret``), state restore (``restore``) and what the two real clients share (``client``). Each
client has a subpackage (``kafka_python/``, ``confluent/``, ``memory/``) with its backend, consumer,
producer, option mapping and error translation; :func:`make_backend` imports only the one asked for.

>>> backend = make_backend("memory")
>>> backend.ensure_topics([TopicSpec("events", partitions=2)])
>>> with backend.producer() as producer:
...     producer.produce("events", b"c1", b"hello")
>>> [r.value for r in backend.read_partitions([TopicPartition("events", p) for p in (0, 1)])]
[b'hello']
"""

from __future__ import annotations

from typing import Any

from consumer.backends.abstract import (
    Backend,
    Consumer,
    Headers,
    IsolationLevel,
    Producer,
    Record,
    TopicPartition,
    TopicSpec,
)
from consumer.backends.config import ClientConfig
from consumer.backends.errors import (
    AuthenticationError,
    BackendError,
    BrokerUnavailableError,
    CommitFailedError,
    ConfigurationError,
    DeliveryError,
    InstanceFencedError,
    ProducerFencedError,
    TransactionAbortedError,
    TransactionError,
)

BACKENDS = ("kafka-python", "confluent", "memory")

__all__ = [
    "BACKENDS",
    "AuthenticationError",
    "Backend",
    "BackendError",
    "BrokerUnavailableError",
    "ClientConfig",
    "CommitFailedError",
    "ConfigurationError",
    "Consumer",
    "DeliveryError",
    "Headers",
    "InstanceFencedError",
    "IsolationLevel",
    "Producer",
    "ProducerFencedError",
    "Record",
    "TopicPartition",
    "TopicSpec",
    "TransactionAbortedError",
    "TransactionError",
    "make_backend",
]


def make_backend(name: str, config: ClientConfig | None = None, **options: Any) -> Backend:
    """Build the backend called ``name``.

    Parameters
    ----------
    name : {"kafka-python", "confluent", "memory"}
        Which client library to use.
    config : ClientConfig, optional
        Broker address and credentials; required except for ``memory``.
    **options
        Backend-specific: ``memory`` takes ``broker=`` (a shared ``MemoryBroker``).

    Raises
    ------
    ConfigurationError
        For an unknown name, a missing ``config``, or ``confluent`` without the ``fast`` extra.
    """
    if name == "memory":
        from consumer.backends.memory import MemoryBackend

        return MemoryBackend(**options)
    if name not in BACKENDS:
        raise ConfigurationError(f"backend={name!r} is not one of {', '.join(BACKENDS)}")
    if config is None:
        raise ConfigurationError(f"backend={name!r} needs a ClientConfig with bootstrap_servers")
    if name == "kafka-python":
        from consumer.backends.kafka_python import KafkaPythonBackend

        return KafkaPythonBackend(config, **options)
    from consumer.backends.confluent import ConfluentBackend

    return ConfluentBackend(config, **options)
