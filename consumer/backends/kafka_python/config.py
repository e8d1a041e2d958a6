"""kafka-python's option names: :class:`~consumer.backends.config.ClientConfig` mapped onto them, and
the consumer and producer defaults this package sets.

>>> from consumer.backends.config import ClientConfig
>>> client_options(ClientConfig("a:9092,b:9092", extra={"client_id": "mine"}))["bootstrap_servers"]
['a:9092', 'b:9092']
>>> client_options(ClientConfig("a:9092", extra={"client_id": "mine"}))["client_id"]
'mine'
"""

from __future__ import annotations

from typing import Any

from consumer.backends.config import ClientConfig
from consumer.backends.secret import reveal

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    # Larger fetches per partition: fewer round trips when catching up or restoring.
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
    # A killed member's partitions wait this long for a new owner (Kafka's client default is 45 s).
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
    # New partitions of a subscribed topic (or a just-created topic whose metadata had not reached
    # this client when the group formed) are seen at the next metadata refresh: 10 s, not 5 min.
    "metadata_max_age_ms": 10_000,
}
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    # A few milliseconds of lingering fills batches under load at little latency cost.
    "linger_ms": 5,
    "batch_size": 256 * 1024,
}
RESTORE_OPTIONS: dict[str, Any] = {"max_poll_records": 10_000}


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
