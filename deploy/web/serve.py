"""``segmenter serve``: the web form and JSON API under gunicorn.

Checks that the model directory holds a valid artifact (exit 2 with the reason if not), prepares the
environment the gunicorn config and the workers read, then replaces this process with gunicorn, so
signals reach gunicorn's master directly: SIGTERM finishes requests in flight and exits.

Examples::

    segmenter serve --model-dir artifacts/cdnow
    SEGMENTER_WEB_BIND=0.0.0.0:8000 SEGMENTER_WEB_WORKERS=4 segmenter serve   # behind a reverse proxy
    segmenter serve --log-format json   # every line JSON: gunicorn's, the access log's, the app's

With a model key (``SEGMENTER_MODEL_KEY``, or ``--model-key-file``), the artifact's signature is
checked before anything is unpickled, here and in every worker; an unsigned or wrongly signed artifact
is exit 2. Without one, a warning says that artifacts are trusted unverified.

The session secret (CSRF tokens) is read from ``SEGMENTER_WEB_SECRET_KEY`` or made once per run and
shared by all workers; it is never a flag, so it does not show in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path

from consumer.settings import MODEL_KEY_FILE, Setting, add_settings

log = logging.getLogger(__name__)

__all__ = ["WEB", "add_arguments", "gunicorn_command", "run", "server_environment"]

WEB = (
    Setting("--model-dir", "SEGMENTER_MODEL_DIR", "artifacts/cdnow", "model directory to serve"),
    MODEL_KEY_FILE,
    Setting("--bind", "SEGMENTER_WEB_BIND", "127.0.0.1:8000", "host:port to listen on"),
    Setting("--workers", "SEGMENTER_WEB_WORKERS", 2, "gunicorn worker processes", int),
    Setting("--threads", "SEGMENTER_WEB_THREADS", 8, "request threads per worker", int),
    Setting(
        "--header-timeout",
        "SEGMENTER_WEB_HEADER_TIMEOUT",
        5.0,
        "seconds a connection may take to send its request headers",
        float,
    ),
    Setting("--timeout", "SEGMENTER_WEB_TIMEOUT", 30, "seconds before a silent worker is restarted", int),
    Setting("--access-log", "SEGMENTER_WEB_ACCESS_LOG", "-", "access log file ('-' = stderr, '' = off)"),
    Setting(
        "--metrics-dir",
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        "directory for multiprocess metrics (default: a fresh temporary one)",
    ),
)
GUNICORN_CONFIG = "python:deploy.web.gunicorn_conf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, WEB)


def server_environment(args: argparse.Namespace, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment gunicorn and its workers run with."""
    env = dict(os.environ if base is None else base)
    # Every SEGMENTER_WEB_* option, as gunicorn_conf.py reads it; the paths below are made absolute.
    env |= {s.env: str(getattr(args, s.dest)) for s in WEB if s.env.startswith("SEGMENTER_WEB_")}
    env |= {
        "SEGMENTER_MODEL_DIR": str(Path(args.model_dir).resolve()),
        "SEGMENTER_LOG_LEVEL": getattr(args, "log_level", "INFO"),
    }
    if getattr(args, "log_format", None):  # gunicorn and its workers log as `segmenter serve` does
        env["SEGMENTER_LOG_FORMAT"] = args.log_format
    if getattr(args, "model_key_file", None):  # the workers read the key from the same file
        env["SEGMENTER_MODEL_KEY_FILE"] = str(Path(args.model_key_file).resolve())
    if not env.get("SEGMENTER_WEB_SECRET_KEY"):
        env["SEGMENTER_WEB_SECRET_KEY"] = secrets.token_hex(32)
    if args.metrics_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(args.metrics_dir).resolve())
        env.pop("SEGMENTER_WEB_OWNS_METRICS_DIR", None)
    else:
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="segmenter-web-metrics-")
        env["SEGMENTER_WEB_OWNS_METRICS_DIR"] = "1"
    return env


def gunicorn_command() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG]


def _check(args: argparse.Namespace) -> str | None:
    """Why the server cannot start, or None."""
    from deploy.web.schema import load_served
    from model.errors import SegmenterError
    from model.signing import UNVERIFIED_WARNING, resolve_model_key

    counts = {"--workers": args.workers, "--threads": args.threads, "--timeout": args.timeout}
    if any(value < 1 for value in counts.values()):
        return ", ".join(f"{flag} ({value})" for flag, value in counts.items()) + " must be >= 1"
    if args.header_timeout <= 0:
        return f"--header-timeout ({args.header_timeout}) must be positive"
    host, _, port = args.bind.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"--bind must be HOST:PORT, got {args.bind!r}"
    try:
        key = resolve_model_key(getattr(args, "model_key_file", None), os.environ)
    except SegmenterError as exc:
        return f"cannot serve {args.model_dir}: {exc}"
    if key is None:
        log.warning("%s", UNVERIFIED_WARNING)
    try:  # the checks every worker's app factory makes, so a bad model stops here with exit 2
        schema = load_served(args.model_dir, key)
    except (SegmenterError, OSError) as exc:
        return f"cannot serve {args.model_dir}: {exc}"
    model = schema.model
    kind = "event features" if schema.events else "a customer table's columns"
    log.info("serving model %s (k=%d, taking %s) on http://%s with %d workers of %d threads",
             model.model_id, model.k, kind, args.bind, args.workers, args.threads)  # fmt: skip
    return None


def run(args: argparse.Namespace) -> int:
    """Exec gunicorn; returns only when the arguments or the model are bad (exit code 2)."""
    problem = _check(args)
    if problem:
        log.error("%s", problem)
        return 2
    env = server_environment(args)
    command = gunicorn_command()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, env)
    return 0  # not reached: exec replaced this process
