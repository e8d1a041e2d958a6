"""The `segmenter` command: one entry point, one module per subcommand.

Each subcommand lives with the package that owns it and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Only the chosen subcommand's module is imported, so ``segmenter consume`` does
not pay for matplotlib and ``segmenter train`` does not pay for Kafka clients.

Exit codes: 0 done; 1 an unexpected error (one line; the traceback with ``--log-level DEBUG``) or,
for ``train``, a failed held-out check; 2 a usage or configuration mistake, or a broker that cannot
be reached or refuses the credentials (one line naming what is wrong); 3 the scorer stopped because
most input was invalid (``--max-invalid-ratio``); 4 the scorer was fenced (another instance uses
its ``--instance-id``); 130 interrupted (Ctrl-C). ``--log-level`` and
``--log-format`` may come before the command too: ``segmenter --log-format json consume``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import os
import sys
from types import ModuleType

from consumer.backends.secret import RedactingFilter
from consumer.settings import LOGGING, HelpFormatter, add_settings

log = logging.getLogger("segmenter")

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.cli", "fit a model on events or a customer table; write artifact and report"),
    "compare": ("training.compare_cli", "score the same customers with two models: agreement, ARI, moves"),
    "sign": ("training.sign", "sign an existing model artifact with the model key (writes model.sig)"),
    "consume": ("consumer.cli", "run the streaming scorer (Kafka, or files with --source/--sink)"),
    "replay": ("consumer.replay", "produce a dataset (CDNOW, synthetic, a JSONL file) as events to Kafka"),
    "serve": ("deploy.web.serve", "serve the web form and JSON API under gunicorn"),
    "demo": ("deploy.demo", "train if needed, start local Kafka, replay CDNOW, score it, print a summary"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="segmenter",
        description="Streaming customer segmentation.",
        epilog=f"commands:\n{lines}\n\nRun `segmenter COMMAND --help` for its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    parser.add_argument("--version", action="version", version=f"segmenter {_version()}")
    parser.add_argument("--log-level", help="logging level, before or after the command (default INFO)")
    parser.add_argument("--log-format", help="text or json, before or after the command (default text)")
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("customer-segmenter")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


_GLOBAL_OPTIONS = ("--log-level", "--log-format")


def _split_global_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """Leading ``--log-level X`` / ``--log-format=X`` options, and the rest (command first).

    >>> _split_global_options(["--log-format", "json", "consume", "--batch-size", "5"])
    (['--log-format', 'json'], ['consume', '--batch-size', '5'])
    """
    leading: list[str] = []
    while argv and argv[0].split("=", 1)[0] in _GLOBAL_OPTIONS:
        takes = 1 if "=" in argv[0] else 2
        leading, argv = leading + argv[:takes], argv[takes:]
    return leading, argv


def command_parser(name: str) -> tuple[ModuleType, argparse.ArgumentParser]:
    """The module of ``segmenter NAME`` and its parser (the logging options, then the command's own).

    Built under the current environment: each option's default is its environment variable's value.
    """
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(
        prog=f"segmenter {name}", description=help_, formatter_class=HelpFormatter
    )
    add_settings(parser, LOGGING)
    module.add_arguments(parser)
    return module, parser


def main(argv: list[str] | None = None) -> int:
    leading, argv = _split_global_options(list(sys.argv[1:] if argv is None else argv))
    top = _top_parser()
    if not argv or argv[0] in {"-h", "--help", "--version"}:
        if argv and argv[0] == "--version":
            top.parse_args(["--version"])  # prints the version and exits 0
        top.print_help()
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        top.error(f"unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}")
    name, rest = argv[0], argv[1:]
    module, parser = command_parser(name)
    args = parser.parse_args([*leading, *rest])
    configure_logging(args.log_level, args.log_format)
    return _run(name, module, args)


def _run(name: str, module: ModuleType, args: argparse.Namespace) -> int:
    """Run a command; a known error is one line and exit 2, anything else one line and exit 1."""
    from consumer.backends.errors import BackendError
    from model.errors import SegmenterError

    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        log.error("segmenter %s interrupted", name)
        return 130
    except (SegmenterError, BackendError) as error:
        log.error("segmenter %s: %s", name, error)
        log.debug("where it was raised", exc_info=True)
        return 2
    except Exception as error:
        log.error(
            "segmenter %s failed: %s: %s (run with --log-level DEBUG for the traceback)",
            name, type(error).__name__, error,
        )  # fmt: skip
        log.debug("where it was raised", exc_info=True)
        return 1


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the record's ``extra`` fields (topic, partition, offset...)."""

    _standard = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info:
            body["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(body, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def resolve_log_format(log_format: str | None = None) -> str:
    """``text`` or ``json``: ``--log-format`` if given, else ``SEGMENTER_LOG_FORMAT``, else text.

    ``segmenter serve`` passes the choice on to gunicorn and its workers in ``SEGMENTER_LOG_FORMAT``.
    """
    return log_format or os.environ.get("SEGMENTER_LOG_FORMAT", "text")


def configure_logging(level: str, log_format: str | None = None, text_format: str = TEXT_FORMAT) -> None:
    """Log lines on stderr: text, or JSON with ``SEGMENTER_LOG_FORMAT=json``.

    The Kafka clients' chatty INFO lines show only at DEBUG, and so does kafka-python's warning that
    one of its IO-loop tasks ran over 100 ms: parsing a large fetch does that on two busy cores, many
    times a second during a catch-up, and there is nothing an operator can do about it. So do both
    clients' connection attempts and failures: a broker that cannot be reached is one line from the
    scorer (what it was doing, the address, the cause), a broker away mid-run is the retry warnings.
    Every line passes a :class:`~consumer.backends.secret.RedactingFilter`: at DEBUG kafka-python logs
    its whole configuration, SASL password included. In JSON, Python's warnings are logged too, so
    that every line on stderr is one JSON object.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if resolve_log_format(log_format) == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)
    else:
        handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if level.upper() != "DEBUG":
        handler.addFilter(_client_traceback_on_one_line)
        logging.getLogger("kafka").setLevel(logging.WARNING)
        logging.getLogger("kafka.net.selector").addFilter(_not_a_slow_task_warning)
        for name in CONNECTION_LOGGERS:  # their outcome is our own one line (BrokerUnavailableError...)
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        logging.getLogger("librdkafka").setLevel(logging.WARNING)
        logging.getLogger("librdkafka").addFilter(_not_a_connection_failure)


# kafka-python's connection attempts: ~25 lines before a missing broker's one clear line.
CONNECTION_LOGGERS = ("kafka.net.manager", "kafka.net.connection")


def _not_a_slow_task_warning(record: logging.LogRecord) -> bool:
    return "blocking the event loop" not in record.getMessage()


def _client_traceback_on_one_line(record: logging.LogRecord) -> bool:
    """A Kafka client's own traceback (kafka-python's I/O thread meeting a fenced transaction) as one line."""
    if record.name.startswith("kafka.") and record.exc_info and record.exc_info[1] is not None:
        record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]!r}", None
        record.exc_info, record.exc_text = None, None
    return True


def _not_a_connection_failure(record: logging.LogRecord) -> bool:
    """librdkafka's ``FAIL`` lines: a refused or lost connection, about 200 before a missing broker's line."""
    return not record.getMessage().startswith("FAIL ")


if __name__ == "__main__":
    sys.exit(main())
