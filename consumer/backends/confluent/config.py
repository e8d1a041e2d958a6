"""librdkafka's option names: :class:`~consumer.backends.config.ClientConfig` mapped onto them, and
the consumer, producer and admin settings this package uses.

>>> from consumer.backends.config import ClientConfig
>>> conf = client_conf(ClientConfig("a:9092", security_protocol="SASL_SSL", sasl_mechanism="PLAIN"))
>>> conf["security.protocol"], conf["sasl.mechanism"]
('sasl_ssl', 'PLAIN')
>>> sorted(admin_conf({**conf, "group.id": "g", "error_cb": print}))
['bootstrap.servers', 'client.id', 'logger', 'sasl.mechanism', 'sasl.password', 'sasl.username', \
'security.protocol']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from consumer.backends.config import ClientConfig
from consumer.backends.secret import reveal

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "range",
    # librdkafka pauses a partition's fetching this long once its local queue is full (default 1 s):
    # whenever processing is slower than fetching, that stalls the consumer to ~15% of its rate.
    "fetch.queue.backoff.ms": 10,
    # A killed member's partitions wait this long for a new owner (Kafka's client default is 45 s).
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
}
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    # Java's and kafka-python's partitioner, so a key lands on the same partition whichever client wrote it.
    "partitioner": "murmur2_random",
}
# End-of-partition events tell the restore reader its position past transaction markers.
RESTORE_OPTIONS: dict[str, Any] = {"enable.partition.eof": True}
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


def admin_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The connection and credential settings of a client ``conf``, fit for an ``AdminClient``."""
    return {k: v for k, v in conf.items() if k in _ADMIN_KEYS or k.startswith(("sasl.", "ssl."))}
