"""Embedded mode: the same processor over JSON-lines files (or stdin/stdout), no broker at all.

``segmenter consume --source file:events.jsonl --sink file:out.jsonl`` reads events, writes one
segment update per line to the sink and dead letters (the original line plus the reason) to
``--dead-letters`` (default: beside the sink, or stderr when the sink is stdout). Lines become
records of one partition whose offsets are line numbers, so the processor cannot tell the difference:
the whole file has one stream time, and a file holding one Kafka partition's records in order gives
that partition's updates (every field but ``scored_at`` and the source topic).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from consumer.backends.abstract import Record
from consumer.outputs import DLQ_ERROR, DLQ_OFFSET, DLQ_REASON
from consumer.processor import DEFAULT_TIME, Processor, TimeSettings, Topics
from consumer.state_store import StateStore
from model.events import DEFAULT_MIN_EVENT_MS


@dataclass
class FileRunSummary:
    events: int = 0
    valid: int = 0
    dead_letters: int = 0
    updates: int = 0


def _path(spec: str) -> str:
    if spec == "-":
        return "-"
    if not spec.startswith("file:"):
        raise ValueError(f"expected file:PATH or -, got {spec!r}")
    return spec.removeprefix("file:")


@contextlib.contextmanager
def _open(path: str, mode: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer if "r" in mode else sys.stdout.buffer
    else:
        with open(path, mode) as handle:
            yield handle


def _records(stream: IO[bytes], topic: str) -> Iterator[Record]:
    for number, line in enumerate(stream):
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield Record(topic, 0, number, None, line)


def run_files(
    source: str,
    sink: str,
    model,
    *,
    dead_letters: str | None = None,
    batch_size: int = 2000,
    emit_only_on_change: bool = False,
    min_event_ms: int | None = DEFAULT_MIN_EVENT_MS,
    clock: TimeSettings = DEFAULT_TIME,
) -> FileRunSummary:
    """Score the events of ``source`` into ``sink``; see the module docstring for the formats."""
    source_path, sink_path = _path(source), _path(sink)
    dlq_path = (
        _path(dead_letters) if dead_letters else (f"{sink_path}.dlq.jsonl" if sink_path != "-" else None)
    )
    topics = Topics(input=source, output="sink", dead_letter="dlq", changelog="changelog")
    store = StateStore()
    store.assign(0)
    # One file is one partition, so unkeyed lines cannot split a customer.
    processor = Processor(
        store,
        model,
        topics,
        emit_only_on_change=emit_only_on_change,
        allow_keyless=True,
        min_event_ms=min_event_ms,
        clock=clock,
    )
    summary = FileRunSummary()
    with (
        _open(source_path, "rb") as src,
        _open(sink_path, "wb") as out,
        contextlib.ExitStack() as stack,
    ):
        dlq = stack.enter_context(open(dlq_path, "wb")) if dlq_path else sys.stderr.buffer
        batch: list[Record] = []
        for record in _records(src, source):
            batch.append(record)
            if len(batch) >= batch_size:
                _flush(processor, batch, out, dlq, summary)
                batch = []
        if batch:
            _flush(processor, batch, out, dlq, summary)
    return summary


def _flush(processor: Processor, batch: list[Record], out: IO[bytes], dlq: IO[bytes], summary) -> None:
    result = processor.process(batch)
    processor.commit_entries(result)
    for output in result.outputs:
        if output.topic == "sink":
            value = output.value
            if value is None:  # an erased customer's tombstone, as a line a JSON reader can take
                value = json.dumps({"customer_id": output.key.decode("utf-8"), "erased": True}).encode()
            out.write(value + b"\n")
            summary.updates += 1
        elif output.topic == "dlq":
            headers = dict(output.headers)
            line = {
                "line_number": int(headers[DLQ_OFFSET]) + 1,
                "reason": headers[DLQ_REASON].decode(),
                "error": headers[DLQ_ERROR].decode("utf-8", "replace"),
                "original": output.value.decode("utf-8", "replace") if output.value else None,
            }
            dlq.write(json.dumps(line).encode() + b"\n")
    summary.events += len(batch)
    summary.valid += result.valid
    summary.dead_letters += sum(result.invalid.values())
