"""Every option of `segmenter consume` / `segmenter replay`, with its flag and environment variable.

One table per concern (tuples of :class:`Setting`); ``CONSUME`` and ``REPLAY_OPTIONS`` list the
tables each command takes, ``LOGGING`` is taken by every command, and ``serve``'s own table is
``deploy.web.serve.WEB``. From the tables come the parser (:func:`add_settings`: each option's help
ends with its default and ``[env NAME]``), the settings objects (:func:`build` fills a dataclass's
fields from the parsed options by name) and the README's settings table
(``python -m deploy.settings_table``), so flags, environment names (used by docker-compose and
Kubernetes manifests) and documentation cannot drift apart. A flag beats its environment variable,
which beats the default.
The SASL password is parsed into a :class:`~consumer.backends.secret.Secret`, so the parsed arguments
can be printed or logged without showing it; the model key is never an option (only the path of its
file is), it is read by :func:`model.signing.resolve_model_key` into a ``ModelKey`` that hides itself.
``KAFKA_BOOTSTRAP_SERVERS`` is also honoured, as the test fixtures and local-kafka.sh print it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import socket
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.backends.config import SASL_MECHANISMS, SECURITY_PROTOCOLS, ClientConfig
from consumer.backends.secret import Secret
from consumer.dead_letter_limit import invalid_ratio


@dataclass(frozen=True)
class Setting:
    """One option: ``--flag``, its environment variable, default, help and type.

    ``type`` is ``bool`` for a switch (the flag, or a true environment value, turns it on);
    ``choices`` limits the values (flag and environment alike); ``field`` names the settings-object
    field it fills (see :func:`build`) when that is not the flag's name (``--dlq-topic`` -> ``dlq_topic``);
    ``documented_default`` is what the README's table shows for a default computed on each machine.
    """

    flag: str
    env: str
    default: Any
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    field: str | None = None
    documented_default: str | None = None  # the README's default when it depends on the machine

    @property
    def dest(self) -> str:
        """The attribute of the parsed namespace: ``--batch-size`` -> ``batch_size``."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def target(self) -> str:
        """The settings-object field this option fills."""
        return self.field or self.dest


def default_instance_id(host: str | None = None) -> str:
    """``scorer-`` and the host name (a pod's name under Kubernetes), fit for a Kafka id.

    Two instances left on the default must not share an id: with --exactly-once the newer one would
    fence the older (they would share a transactional id). Characters a static member id may not hold
    become ``-``.

    >>> default_instance_id("pod 7/a.example")
    'scorer-pod-7-a.example'
    """
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname() if host is None else host)[:200]
    return f"scorer-{host}" if host else "scorer-0"


# The key that signs artifacts; SEGMENTER_MODEL_KEY (the key itself) is read when no file is given.
MODEL_KEY_FILE = Setting(
    "--model-key-file",
    "SEGMENTER_MODEL_KEY_FILE",
    None,
    "file holding the model signing key; artifacts must be signed with it (or set SEGMENTER_MODEL_KEY)",
)
CONNECTION = (
    Setting("--bootstrap-servers", "SEGMENTER_BOOTSTRAP_SERVERS", "127.0.0.1:19092", "Kafka host:port list"),
    Setting(
        "--client",
        "SEGMENTER_CLIENT",
        "kafka-python",
        "Kafka client library (confluent: librdkafka, the `fast` extra)",
        choices=("kafka-python", "confluent"),
    ),
    Setting(
        "--security-protocol",
        "SEGMENTER_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "how to talk to the brokers",
        choices=SECURITY_PROTOCOLS,
    ),
    Setting("--sasl-mechanism", "SEGMENTER_SASL_MECHANISM", None, "SASL mechanism", choices=SASL_MECHANISMS),
    Setting("--sasl-username", "SEGMENTER_SASL_USERNAME", None, "SASL user"),
    Setting(
        "--sasl-password", "SEGMENTER_SASL_PASSWORD", None, "SASL password (prefer the environment)", Secret
    ),
    Setting("--ssl-cafile", "SEGMENTER_SSL_CAFILE", None, "CA bundle (PEM)"),
    Setting("--ssl-certfile", "SEGMENTER_SSL_CERTFILE", None, "client certificate (PEM)"),
    Setting("--ssl-keyfile", "SEGMENTER_SSL_KEYFILE", None, "client key (PEM)"),
)
# ``field``: the consumer.processor.Topics field each topic fills.
TOPICS = (
    Setting("--input-topic", "SEGMENTER_INPUT_TOPIC", "customer-events", "events in, keyed by customer id",
            field="input"),
    Setting("--output-topic", "SEGMENTER_OUTPUT_TOPIC", "customer-segments", "segment updates (compacted)",
            field="output"),
    Setting("--dlq-topic", "SEGMENTER_DLQ_TOPIC", "customer-events-dlq", "dead letters", field="dead_letter"),
    Setting("--changelog-topic", "SEGMENTER_CHANGELOG_TOPIC", "customer-segmenter-state", "state (compacted)",
            field="changelog"),
    Setting("--partitions", "SEGMENTER_PARTITIONS", 3, "partitions of topics created if missing", int),
)  # fmt: skip
SCORER = (
    Setting("--group-id", "SEGMENTER_GROUP_ID", "customer-segmenter", "consumer group"),
    Setting(
        "--instance-id", "SEGMENTER_INSTANCE_ID", default_instance_id(),
        "unique and stable per instance: names its transactions (--exactly-once) and its static membership; "
        "derived from the host name by default. A second instance with the same id stops this one (exit 4)",
        documented_default="scorer-<host name>",
    ),
    Setting("--model-dir", "SEGMENTER_MODEL_DIR", "artifacts/cdnow", "model directory (hot-reloaded)"),
    MODEL_KEY_FILE,
    Setting(
        "--allow-unrelated-model", "SEGMENTER_ALLOW_UNRELATED_MODEL", False,
        "hot-reload a model that does not descend from the live one (not trained with --previous from "
        "it): its segment ids may name other segments than those already published", bool,
    ),
    Setting(
        "--shadow-model-dir", "SEGMENTER_SHADOW_MODEL_DIR", None,
        "a candidate model scored beside the live one and compared with it (segmenter_shadow_* metrics), "
        "never published; same input schema and signing key as the live model, hot-reloaded",
    ),
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

TIME = (
    Setting("--tick", "SEGMENTER_TICK", "1d",
            "ageing tick: re-score every customer when the clock crosses a multiple of this (UTC "
            "midnight for 1d); 0 turns ageing off"),
    Setting("--clock", "SEGMENTER_CLOCK", "stream",
            "stream: each partition's stream time (replay-deterministic); wall: the system clock "
            "(quiet partitions age too; not replay-deterministic)", choices=("stream", "wall")),
    Setting("--state-ttl", "SEGMENTER_STATE_TTL", "0",
            "drop a customer with no event for this long (e.g. 730d), at a tick; 0 keeps everyone"),
)  # fmt: skip
DELIVERY = (
    Setting("--exactly-once", "SEGMENTER_EXACTLY_ONCE", False,
            "Kafka transactions (output+state+offsets)", bool),
    Setting("--emit-only-on-change", "SEGMENTER_EMIT_ONLY_ON_CHANGE", False,
            "publish only changed segments", bool),
    Setting("--exit-when-idle", "SEGMENTER_EXIT_WHEN_IDLE", False, "stop once the input is consumed", bool),
    Setting(
        "--static-membership", "SEGMENTER_STATIC_MEMBERSHIP", False,
        "join as static member --instance-id (unique per instance): a restart takes its partitions "
        "back at once; a stopped instance's partitions wait for it up to the session timeout (10 s)", bool,
    ),
)  # fmt: skip
FILE_MODE = (
    Setting("--source", "SEGMENTER_SOURCE", None, "file:PATH or - : score a JSON-lines file with no broker"),
    Setting("--sink", "SEGMENTER_SINK", "-", "with --source: file:PATH or - (stdout)"),
    Setting("--dead-letters", "SEGMENTER_DEAD_LETTERS", None, "with --source: file:PATH for dead letters"),
)
LEARNING = (
    Setting(
        "--model", "SEGMENTER_MODEL", "kmeans",
        "kmeans: the saved pipeline; river: online KMeans seeded from it, learning as it scores",
        choices=("kmeans", "river"),
    ),
    Setting("--river-learning-rate", "SEGMENTER_RIVER_LEARNING_RATE", 0.005,
            "with --model river: step of a centre per row", float),
)  # fmt: skip
REPLAY = (
    Setting("--dataset", "SEGMENTER_REPLAY_DATASET", "cdnow", "cdnow | synthetic:N | file:PATH"),
    Setting("--rate", "SEGMENTER_REPLAY_RATE", 0.0, "events per second (0 = as fast as possible)", float),
    Setting("--limit", "SEGMENTER_REPLAY_LIMIT", None, "send at most this many records", int),
    Setting("--invalid-every", "SEGMENTER_REPLAY_INVALID_EVERY", 0,
            "a malformed event after every K (0 = never)", int),
    Setting("--seed", "SEGMENTER_REPLAY_SEED", 7, "seed of synthetic datasets", int),
)  # fmt: skip
# Taken by every command (deploy/cli.py).
LOGGING = (
    Setting("--log-level", "SEGMENTER_LOG_LEVEL", "INFO", "logging level", str.upper,
            choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("--log-format", "SEGMENTER_LOG_FORMAT", "text", "one text line or one JSON object per record",
            choices=("text", "json")),
)  # fmt: skip

# The tables of each command, in --help order.
CONSUME = (CONNECTION, TOPICS, SCORER, ADMISSION, TIME, DELIVERY, FILE_MODE, LEARNING)
REPLAY_OPTIONS = (CONNECTION, TOPICS, REPLAY)

TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def add_settings(parser: argparse.ArgumentParser, *groups: tuple[Setting, ...]) -> None:
    """Add each setting's flag; its default comes from its environment variable, else the table.

    An environment value outside the setting's choices, or not a switch value for a switch, is a
    usage error (exit 2) that names the variable.
    """
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
                parser.add_argument(s.flag, action="store_true", default=on, help=help_text(s))
                continue
            if s.choices and default is not None and default not in s.choices:
                parser.error(f"{s.env}={default!r} is not one of {', '.join(s.choices)}")
            parser.add_argument(s.flag, default=default, type=_typed(s), choices=s.choices, help=help_text(s))


class HelpFormatter(argparse.HelpFormatter):
    """Wraps help lines without splitting ``[env NAME]`` or a hyphenated value across two lines.

    So ``segmenter consume --help | grep SEGMENTER_`` finds each option's variable whole.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        text = " ".join(text.split()).replace("[env ", "[env\0")
        return [line.replace("\0", " ") for line in textwrap.wrap(text, width, break_on_hyphens=False)]


def help_text(s: Setting) -> str:
    """The option's help, its default (when it has one) and its environment variable.

    >>> help_text(Setting("--batch-size", "SEGMENTER_BATCH_SIZE", 2000, "max records per poll", int))
    'max records per poll (default: 2000) [env SEGMENTER_BATCH_SIZE]'
    >>> help_text(Setting("--exactly-once", "SEGMENTER_EXACTLY_ONCE", False, "transactions", bool))
    'transactions [env SEGMENTER_EXACTLY_ONCE]'
    """
    shown = "" if s.default is None or s.type is bool else f" (default: {s.default})"
    return f"{s.help}{shown} [env {s.env}]".replace("%", "%%")  # argparse %-formats help


def _typed(s: Setting) -> Callable[[str], Any]:
    """``s.type``, whose error names the environment variable too (the value may have come from it)."""

    def convert(text: str) -> Any:
        try:
            return s.type(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"invalid {getattr(s.type, '__name__', 'value')} value {text!r} (from {s.flag} or {s.env})"
            ) from None

    convert.__name__ = getattr(s.type, "__name__", "value")
    return convert


def build(cls: type, args: argparse.Namespace, *groups: tuple[Setting, ...], **derived: Any) -> Any:
    """An instance of dataclass ``cls`` whose fields are filled from the parsed options by name.

    Each setting of ``groups`` whose :attr:`Setting.target` is a field of ``cls`` fills it; ``derived``
    gives the fields computed from several options (a field given twice is an error). Fields neither
    fill keep their defaults.

    >>> @dataclass
    ... class Batch:
    ...     batch_size: int = 1
    ...     label: str = ""
    >>> table = (Setting("--batch-size", "SEGMENTER_BATCH_SIZE", 2000, "max records", int),
    ...          Setting("--group-id", "SEGMENTER_GROUP_ID", "g", "not a field of Batch"))
    >>> build(Batch, argparse.Namespace(batch_size=5, group_id="g"), table, label="x")
    Batch(batch_size=5, label='x')
    """
    names = {f.name for f in dataclasses.fields(cls)}
    values = {s.target: getattr(args, s.dest) for group in groups for s in group if s.target in names}
    twice = values.keys() & derived.keys()
    if twice:
        raise TypeError(f"{cls.__name__} fields both in the tables and derived: {sorted(twice)}")
    return cls(**values, **derived)


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


def time_settings(args: argparse.Namespace):
    """``--tick``, ``--clock`` and ``--state-ttl`` as the processor's ``TimeSettings``; ``ValueError``
    names a value that does not parse.

    >>> time_settings(argparse.Namespace(tick="1d", clock="stream", state_ttl="730d")).state_ttl_ms
    63072000000
    """
    from consumer.processor import TimeSettings
    from model.clock import parse_duration

    tick_ms = parse_duration(args.tick, what="--tick")
    ttl_ms = parse_duration(args.state_ttl, what="--state-ttl")
    if ttl_ms and not tick_ms:
        raise ValueError("--state-ttl drops customers at ageing ticks: it needs --tick (not 0)")
    return TimeSettings(tick_ms=tick_ms, wall_clock=args.clock == "wall", state_ttl_ms=ttl_ms)


def _switch(env: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in TRUE + FALSE:
        raise ValueError(f"{env}={value!r} is not a switch value: use one of {TRUE + FALSE[1:]}")
    return text in TRUE


def client_config(args: argparse.Namespace, client_id: str) -> ClientConfig:
    return build(ClientConfig, args, CONNECTION, client_id=client_id)
