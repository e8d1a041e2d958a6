"""Connection settings shared by every backend, in one frozen object.

Each backend maps :class:`ClientConfig` onto its own client's option names (kafka-python says
``sasl_plain_username``, librdkafka says ``sasl.username``) in its ``config`` module
(``kafka_python/config.py``, ``confluent/config.py``); the processor never sees those names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consumer.backends.errors import ConfigurationError
from consumer.backends.secret import Secret

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")


@dataclass(frozen=True)
class ClientConfig:
    """Where the brokers are and how to authenticate.

    Parameters
    ----------
    bootstrap_servers : str
        Comma-separated ``host:port`` list.
    security_protocol : str
        One of ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``.
    sasl_mechanism, sasl_username : str or None
        SASL settings, used with the ``SASL_*`` protocols.
    sasl_password : Secret or None
        The SASL password; a plain string is wrapped in a :class:`~consumer.backends.secret.Secret`,
        so neither ``repr`` nor a log line shows it. Backends call ``reveal()`` when they build a client.
    ssl_cafile, ssl_certfile, ssl_keyfile : str or None
        PEM file paths, used with the ``*SSL`` protocols.
    client_id : str
        Shown in broker logs and metrics.
    connect_timeout_s : float
        How long creating a client may wait for a first broker answer before raising
        :class:`~consumer.backends.errors.BrokerUnavailableError`.
    extra : Mapping[str, Any]
        Passed unchanged to the underlying client (its own option names).

    Examples
    --------
    >>> ClientConfig("localhost:9092").security_protocol
    'PLAINTEXT'
    >>> ClientConfig("localhost:9092", sasl_password="hunter2").sasl_password
    Secret('***')
    >>> ClientConfig("localhost:9092", security_protocol="TLS")
    Traceback (most recent call last):
    ...
    consumer.backends.errors.ConfigurationError: security_protocol='TLS' is not one of PLAINTEXT, SSL, \
SASL_PLAINTEXT, SASL_SSL
    """

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "customer-segmenter"
    connect_timeout_s: float = 10.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sasl_password is not None and not isinstance(self.sasl_password, Secret):
            object.__setattr__(self, "sasl_password", Secret(self.sasl_password))
        if not self.bootstrap_servers or not self.bootstrap_servers.strip():
            raise ConfigurationError("bootstrap_servers is empty; expected 'host:port[,host:port...]'")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigurationError(
                f"security_protocol={self.security_protocol!r} is not one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.sasl_mechanism is not None and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigurationError(
                f"sasl_mechanism={self.sasl_mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}"
            )
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ConfigurationError(f"security_protocol={self.security_protocol} needs a sasl_mechanism")
        if self.connect_timeout_s <= 0:
            raise ConfigurationError(f"connect_timeout_s={self.connect_timeout_s!r} must be positive")

    @property
    def uses_sasl(self) -> bool:
        """True when the protocol authenticates with SASL."""
        return self.security_protocol.startswith("SASL")
