"""Checks of `segmenter consume` and `segmenter replay` settings that run before anything else does.

A mistake in a setting must cost the user one sentence, not a traceback after half the work: these
checks run before a topic is created, a model is loaded or a port is bound, and each returns the one
sentence to print (the CLI exits 2 with it) or ``None``. They look only at the settings and the local
machine (a file, a port); whether the broker is reachable is the backend's to say.

>>> topic_name_problem("customer-events") is None
True
>>> topic_name_problem("bad topic!")
"topic name 'bad topic!' may hold only letters, digits, '.', '_' and '-' (at most 249 of them)"
>>> dataset_problem("synthetic:0")
"--dataset 'synthetic:0' needs a whole number of customers above 0, e.g. synthetic:500"
"""

from __future__ import annotations

import argparse
import errno
import re
import socket
from pathlib import Path

__all__ = ["consume_problem", "dataset_problem", "replay_problem", "topic_name_problem"]

# Kafka's own rule (org.apache.kafka.common.internals.Topic): legal characters and at most 249 of them.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_TOPIC_OPTIONS = ("input_topic", "output_topic", "dlq_topic", "changelog_topic")


def topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or None."""
    if not _TOPIC.fullmatch(name) or name in (".", ".."):
        return f"topic name {name!r} may hold only letters, digits, '.', '_' and '-' (at most 249 of them)"
    return None


def dataset_problem(dataset: str) -> str | None:
    """Why ``--dataset`` names nothing replay can send, or None."""
    if dataset == "cdnow":
        return None
    if dataset.startswith("synthetic:"):
        count = dataset.removeprefix("synthetic:")
        if count.isdigit() and int(count) > 0:
            return None
        return f"--dataset {dataset!r} needs a whole number of customers above 0, e.g. synthetic:500"
    if dataset.startswith("file:"):
        path = Path(dataset.removeprefix("file:"))
        return None if path.is_file() else f"--dataset {dataset!r}: there is no file {str(path)!r}"
    return f"--dataset {dataset!r} is not a dataset: use cdnow, synthetic:N or file:PATH"


def consume_problem(args: argparse.Namespace) -> str | None:
    """The first mistake in ``segmenter consume``'s settings, as one sentence, or None."""
    model_dir = Path(args.model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        return f"--model-dir {str(model_dir)!r} is a file; give the directory that holds manifest.json"
    if args.batch_size < 1:
        return f"--batch-size must be at least 1 (got {args.batch_size})"
    shadow = getattr(args, "shadow_model_dir", None)
    if shadow and args.source:
        return "--shadow-model-dir needs the Kafka scorer: file mode (--source) publishes no metrics"
    if shadow and Path(shadow).exists() and not Path(shadow).is_dir():
        return f"--shadow-model-dir {shadow!r} is a file; give the directory that holds manifest.json"
    if args.source:  # file mode: no topics and no metrics server
        return None
    return _topics_problem(args) or _port_problem(args.metrics_host, args.metrics_port)


def replay_problem(args: argparse.Namespace) -> str | None:
    """The first mistake in ``segmenter replay``'s settings, as one sentence, or None."""
    return topic_name_problem(args.input_topic) or dataset_problem(args.dataset)


def _topics_problem(args: argparse.Namespace) -> str | None:
    for option in _TOPIC_OPTIONS:
        problem = topic_name_problem(getattr(args, option))
        if problem:
            return f"--{option.replace('_', '-')}: {problem}"
    if args.partitions < 1:
        return f"--partitions must be at least 1 (got {args.partitions})"
    return None


def _port_problem(host: str, port: int) -> str | None:
    if not 0 <= port <= 65535:
        return f"--metrics-port must be between 0 and 65535 (got {port}; 0 picks a free one)"
    if port == 0:
        return None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the metrics server binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"--metrics-port {port} is already in use on {host} (another scorer?): give each "
                    "scorer on a host its own port, or 0 for any free one"
                )
            return f"--metrics-host {host!r} / --metrics-port {port} cannot be used: {error.strerror}"
    return None
