"""Every setting of `segmenter consume` / `segmenter replay`, with its flag and environment variable.

One table, so the flags, the environment names (used by docker-compose and Kubernetes manifests) and
the README cannot drift apart. A flag beats its environment variable, which beats the default.
The SASL password is parsed into a :class:`~consumer.backends.secret.Secret`, so the parsed arguments
can be printed or logged without showing it.
``KAFKA_BOOTSTRAP_SERVERS`` is also honoured, as the test fixtures and local-kafka.sh print it.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.backends.config import ClientConfig
from consumer.backends.secret import Secret
from consumer.dead_letter_limit import invalid_ratio


@dataclass(frozen=True)
class Setting:
    flag: str
    env: str
    default: Any
    help: str
    type: type = str


# The key that signs artifacts; SEGMENTER_MODEL_KEY (the key itself) is read when no file is given.
MODEL_KEY_FILE = Setting(
    "--model-key-file",
    "SEGMENTER_MODEL_KEY_FILE",
    None,
    "file holding the model signing key; artifacts must be signed with it (or set SEGMENTER_MODEL_KEY)",
)
CONNECTION = (
    Setting("--bootstrap-servers", "SEGMENTER_BOOTSTRAP_SERVERS", "127.0.0.1:19092", "Kafka host:port list"),
    Setting("--client", "SEGMENTER_CLIENT", "kafka-python", "kafka-python | confluent"),
    Setting(
        "--security-protocol",
        "SEGMENTER_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL",
    ),
    Setting("--sasl-mechanism", "SEGMENTER_SASL_MECHANISM", None, "PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512"),
    Setting("--sasl-username", "SEGMENTER_SASL_USERNAME", None, "SASL user"),
    Setting(
        "--sasl-password", "SEGMENTER_SASL_PASSWORD", None, "SASL password (prefer the environment)", Secret
    ),
    Setting("--ssl-cafile", "SEGMENTER_SSL_CAFILE", None, "CA bundle (PEM)"),
    Setting("--ssl-certfile", "SEGMENTER_SSL_CERTFILE", None, "client certificate (PEM)"),
    Setting("--ssl-keyfile", "SEGMENTER_SSL_KEYFILE", None, "client key (PEM)"),
)
TOPICS = (
    Setting("--input-topic", "SEGMENTER_INPUT_TOPIC", "customer-events", "events in, keyed by customer id"),
    Setting("--output-topic", "SEGMENTER_OUTPUT_TOPIC", "customer-segments", "segment updates (compacted)"),
    Setting("--dlq-topic", "SEGMENTER_DLQ_TOPIC", "customer-events-dlq", "dead letters"),
    Setting(
        "--changelog-topic", "SEGMENTER_CHANGELOG_TOPIC", "customer-segmenter-state", "state (compacted)"
    ),
    Setting("--partitions", "SEGMENTER_PARTITIONS", 3, "partitions of topics created if missing", int),
)
SCORER = (
    Setting("--group-id", "SEGMENTER_GROUP_ID", "customer-segmenter", "consumer group"),
    Setting(
        "--instance-id", "SEGMENTER_INSTANCE_ID", "scorer-0", "stable per instance: names its transactions"
    ),
    Setting("--model-dir", "SEGMENTER_MODEL_DIR", "artifacts/cdnow", "model directory (hot-reloaded)"),
    MODEL_KEY_FILE,
    Setting("--batch-size", "SEGMENTER_BATCH_SIZE", 2000, "max records per poll", int),
    Setting("--metrics-port", "SEGMENTER_METRICS_PORT", 9108, "Prometheus /metrics, /healthz, /readyz", int),
    Setting("--metrics-host", "SEGMENTER_METRICS_HOST", "127.0.0.1", "address the metrics server binds"),
    Setting("--drift-window", "SEGMENTER_DRIFT_WINDOW", 10_000, "assignments in the live drift window", int),
    Setting(
        "--strict-restore", "SEGMENTER_STRICT_RESTORE", False,
        "refuse to start (exit 2) on an invalid changelog entry instead of quarantining it", bool,
    ),
    Setting(
        "--reset-state", "SEGMENTER_RESET_STATE", False,
        "discard (tombstone) the stored state of assigned partitions whose applied offsets are beyond "
        "the input's end (input topic recreated) instead of refusing to start", bool,
    ),
    Setting(
        "--max-invalid-ratio", "SEGMENTER_MAX_INVALID_RATIO", None,
        "stop (exit 3) when more than this share of the last --invalid-window records is invalid "
        "(default none: no limit)", invalid_ratio,
    ),
    Setting("--invalid-window", "SEGMENTER_INVALID_WINDOW", 10_000, "records the invalid share is of", int),
)  # fmt: skip
ADMISSION = (
    Setting(
        "--allow-keyless",
        "SEGMENTER_ALLOW_KEYLESS",
        False,
        "accept records without a key (else dead letters, reason missing_key): only for a 1-partition input",
        bool,
    ),
    Setting(
        "--min-event-time",
        "SEGMENTER_MIN_EVENT_TIME",
        "1990-01-01",
        "events before this date are dead letters (implausible_timestamp); 'none' turns the check off",
    ),
)


TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def add_settings(parser: argparse.ArgumentParser, *groups: tuple[Setting, ...]) -> None:
    for group in groups:
        for s in group:
            default = os.environ.get(s.env, s.default)
            if s.flag == "--bootstrap-servers":
                default = os.environ.get(s.env) or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or s.default
            if s.type is bool:  # a switch: the flag turns it on, so does a true environment value
                try:
                    on = _switch(s.env, default)
                except ValueError as error:
                    parser.error(str(error))
                parser.add_argument(s.flag, action="store_true", default=on, help=f"{s.help} [env {s.env}]")
                continue
            parser.add_argument(s.flag, default=default, type=s.type, help=f"{s.help} [env {s.env}]")


def min_event_ms(text: str) -> int | None:
    """``--min-event-time`` as epoch milliseconds (``none``: no floor); ``ValueError`` names the value.

    >>> min_event_ms("1990-01-01"), min_event_ms("none")
    (631152000000, None)
    """
    if text.strip().lower() == "none":
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--min-event-time {text!r} is not an ISO-8601 date or 'none'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _switch(env: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise ValueError(f"{env}={value!r} is not a switch value: use one of {TRUE + FALSE[1:]}")
    return text in TRUE


def client_config(args: argparse.Namespace, client_id: str) -> ClientConfig:
    return ClientConfig(
        bootstrap_servers=args.bootstrap_servers,
        security_protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
        sasl_password=args.sasl_password,
        ssl_cafile=args.ssl_cafile,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        client_id=client_id,
    )
