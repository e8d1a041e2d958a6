"""The confluent-kafka backend (librdkafka; the optional ``fast`` extra).

- ``backend``: :class:`ConfluentBackend`: consumers, producers, topic creation
- ``consumer``: the group member and restore reader (callbacks run inside ``consume()``)
- ``producer``: the idempotent, optionally transactional producer
- ``config``: :class:`~consumer.backends.config.ClientConfig` in librdkafka's option names
- ``errors``: librdkafka errors translated into :mod:`consumer.backends.errors`; ``ErrorWatch``
- ``partitions``: our partitions and offsets in confluent-kafka's types

Importing this package without confluent-kafka installed raises :class:`ConfigurationError`.
"""

from consumer.backends.errors import ConfigurationError

try:
    import confluent_kafka  # noqa: F401  (the `fast` extra is optional)
except ImportError as exc:
    raise ConfigurationError(
        "backend 'confluent' needs confluent-kafka: pip install 'customer-segmenter[fast]'"
    ) from exc

from consumer.backends.confluent.backend import ConfluentBackend

__all__ = ["ConfluentBackend"]
