"""Fail fast on refused SASL credentials with kafka-python.

kafka-python 3.0 retries a bootstrap connection whose authentication failed until its bootstrap
timeout runs out and then reports ``Unable to bootstrap`` (a timeout), so a wrong password looked
exactly like a broker that is down, ten seconds later. Before the first client of a SASL backend is
built, :func:`check_credentials` opens one connection to a bootstrap broker and authenticates:

- the broker answers the SASL exchange with an error → :class:`AuthenticationError`;
- the TCP connection is accepted but the broker drops it during the exchange (what Kafka 4 does to
  a wrong SCRAM password, before kafka-python reads the error response) → :class:`AuthenticationError`
  saying so;
- nothing accepts the TCP connection → :class:`BrokerUnavailableError`.

It uses kafka-python's connection manager (``kafka.net``), the layer its own clients bootstrap with.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from kafka import errors as kafka_errors
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector

from consumer.backends.config import ClientConfig
from consumer.backends.errors import AuthenticationError, BrokerUnavailableError
from consumer.backends.kafka_python.errors import AUTH_ERRORS


def _first_reachable(servers: list[str], timeout_s: float) -> str | None:
    """The first ``host:port`` that accepts a TCP connection, or None."""
    for server in servers:
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return server.strip()
        except (OSError, ValueError):
            continue
    return None


def _authenticate(server: str, options: dict[str, Any], timeout_s: float) -> None:
    """Connect to ``server`` and run the SASL exchange; raise what kafka-python raised."""
    options = {**options, "bootstrap_servers": [server]}
    manager = KafkaConnectionManager(NetworkSelector(**options), **options)

    async def connect() -> None:
        broker = manager.cluster.bootstrap_brokers()[0]
        connection = manager.get_connection(
            broker.node_id,
            timeout_ms=int(timeout_s * 1000),
            pop_on_close=False,
            refresh_metadata_on_err=False,
        )
        await connection

    try:
        manager.run(connect)
    finally:
        manager.close()


def check_credentials(config: ClientConfig, options: dict[str, Any]) -> None:
    """Raise :class:`AuthenticationError` now if the broker refuses ``config``'s SASL credentials.

    ``options`` are the kafka-python keyword arguments built from ``config``. Does nothing for
    non-SASL protocols.
    """
    if not config.uses_sasl:
        return
    servers = config.bootstrap_servers
    server = _first_reachable(servers.split(","), config.connect_timeout_s)
    if server is None:
        raise BrokerUnavailableError(f"no broker accepted a connection at {servers}")
    who = f"user {config.sasl_username!r} with {config.security_protocol}/{config.sasl_mechanism}"
    started = time.monotonic()
    try:
        _authenticate(server, options, config.connect_timeout_s)
    except AUTH_ERRORS as exc:
        raise AuthenticationError(f"the broker at {server} refused the credentials of {who}: {exc}") from exc
    except kafka_errors.KafkaConnectionError as exc:
        raise AuthenticationError(
            f"the broker at {server} accepted the connection but closed it during the SASL exchange "
            f"for {who} after {time.monotonic() - started:.1f}s: wrong username or password? ({exc})"
        ) from exc
    except kafka_errors.KafkaTimeoutError as exc:
        raise BrokerUnavailableError(
            f"the broker at {server} did not finish authenticating {who} "
            f"within {config.connect_timeout_s}s: {exc}"
        ) from exc
