"""`segmenter replay`: produce a dataset to the events topic, in event-time order, keyed by customer.

Datasets: ``cdnow`` (the real CDNOW purchase log, 69,659 events), ``synthetic:N`` (N synthetic
customers with demographics, seeded) or ``file:PATH`` (JSON lines, sent as they are: handy for
replaying fixed dead letters). Every record is keyed by its ``customer_id`` whatever the source, so a
customer's events share one partition; a file line that has none (not JSON, no id) is sent without a
key and the scorer dead-letters it for what is wrong with it. ``--rate`` caps events per second;
``--invalid-every K`` mixes in a malformed event after every K valid ones, to watch the dead-letter
path work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from consumer.settings import REPLAY, REPLAY_OPTIONS, add_settings, build, client_config
from model.events import encode_event

log = logging.getLogger(__name__)

KeyValue = tuple[bytes | None, bytes]

# Malformed on purpose, one per dead-letter reason the decoder knows (see model/errors.py).
INVALID_SAMPLES = (
    b"not json at all",
    b'{"event_id": "bad-1", "type": "purchase", "ts": 1000000000000, "amount": 1}',
    b'{"event_id": "bad-2", "customer_id": "x", "type": "teleport", "ts": 1000000000000}',
    b'{"event_id": "bad-3", "customer_id": "x", "type": "purchase", "ts": 1000000000000, "amount": -5}',
    b"\xff\xfe invalid utf-8",
)


def dataset_records(dataset: str, seed: int = 7) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) pairs of a dataset in event-time order."""
    if dataset.startswith("file:"):
        with Path(dataset.removeprefix("file:")).open("rb") as lines:
            for line in lines:
                if line.strip():
                    value = line.rstrip(b"\r\n")
                    yield customer_key(value), value
        return
    if dataset == "cdnow":
        from training.datasets import cdnow_events

        events = sorted(cdnow_events(), key=lambda e: (e.ts_ms, e.event_id))
    elif dataset.startswith("synthetic:"):
        from model.synthetic import synthetic_events

        events = sorted(
            synthetic_events(int(dataset.split(":", 1)[1]), seed), key=lambda e: (e.ts_ms, e.event_id)
        )
    else:  # consumer.preflight.dataset_problem says this to CLI users before anything starts
        raise ValueError(f"unknown dataset {dataset!r}: use cdnow, synthetic:N or file:PATH")
    for event in events:
        yield event.customer_id.encode(), encode_event(event)


def customer_key(value: bytes) -> bytes | None:
    """The record key of one JSON event: its ``customer_id`` as the scorer compares it (None if none).

    >>> customer_key(b'{"customer_id": 42}'), customer_key(b'{"customer_id": "c-1"}'), customer_key(b"x")
    (b'42', b'c-1', None)
    """
    try:
        customer_id = json.loads(value).get("customer_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    if isinstance(customer_id, int) and not isinstance(customer_id, bool):
        customer_id = str(customer_id)
    return customer_id.encode("utf-8", "surrogatepass") if isinstance(customer_id, str) else None


def with_invalid(
    records: Iterator[tuple[bytes | None, bytes]], every: int
) -> Iterator[tuple[bytes | None, bytes]]:
    """Insert one of ``INVALID_SAMPLES`` after every ``every`` records (0 = never)."""
    for n, record in enumerate(records, start=1):
        yield record
        if every and n % every == 0:
            yield b"invalid", INVALID_SAMPLES[(n // every) % len(INVALID_SAMPLES)]


def replay(
    producer,
    topic: str,
    records,
    *,
    rate: float = 0.0,
    limit: int | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> int:
    """Send records (at most ``rate`` per second when > 0); flush; return how many were sent.
    ``stopped``: checked between records and while pacing; once true, stop sending (no flush: closing
    the producer delivers what it can, within its bound)."""
    started = time.monotonic()
    sent = 0
    for key, value in records:
        if (limit is not None and sent >= limit) or stopped():
            break
        producer.produce(topic, key, value)
        sent += 1
        if rate > 0 and sent % 100 == 0:
            ahead = sent / rate - (time.monotonic() - started)
            while ahead > 0 and not stopped():  # pacing the offered load is the point of --rate
                time.sleep(min(ahead, 0.1))
                ahead = sent / rate - (time.monotonic() - started)
    if not stopped():
        producer.flush()
    return sent


@contextlib.contextmanager
def ctrl_c_as_a_flag() -> Iterator[list[bool]]:
    """While inside, a first Ctrl-C (SIGINT) only appends to the yielded list; the caller stops between
    records and raises ``KeyboardInterrupt`` itself. Raised where the signal lands, the interrupt could
    cut through the Kafka client's own network code and leave its producer unable to close (seen as a
    replay that never exited). A second Ctrl-C interrupts at once, as usual."""
    interrupted: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers belong to the main thread; elsewhere nothing changes
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_ctrl_c(signum, frame) -> None:
        interrupted.append(True)
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class ReplayOptions:
    """What to send and how fast: the ``REPLAY`` table's options (consumer/settings.py)."""

    dataset: str = "cdnow"
    rate: float = 0.0
    limit: int | None = None
    invalid_every: int = 0
    seed: int = 7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, *REPLAY_OPTIONS)


def run(args: argparse.Namespace) -> int:
    from consumer.backends import TopicSpec, make_backend
    from consumer.preflight import replay_problem

    problem = replay_problem(args)  # before the topic is created
    if problem:
        log.error("%s", problem)
        return 2
    options = build(ReplayOptions, args, REPLAY)
    backend = make_backend(args.client, client_config(args, "segmenter-replay"))
    backend.ensure_topics([TopicSpec(args.input_topic, args.partitions)])
    records = with_invalid(dataset_records(options.dataset, options.seed), options.invalid_every)
    started = time.monotonic()
    with ctrl_c_as_a_flag() as interrupted, backend.producer() as producer:
        sent = replay(
            producer, args.input_topic, records, rate=options.rate, limit=options.limit,
            stopped=lambda: bool(interrupted),
        )  # fmt: skip
    seconds = time.monotonic() - started
    if interrupted:
        log.info("sent %d records to %s before the interrupt", sent, args.input_topic)
        raise KeyboardInterrupt
    log.info("replayed %d records of %s to %s in %.1fs", sent, options.dataset, args.input_topic, seconds)
    print(f"sent={sent} topic={args.input_topic} seconds={seconds:.1f}")
    return 0
