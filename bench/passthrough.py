"""The job's own I/O ceiling: the scorer's reads, writes and commits with none of its logic.

A passthrough consumes the benchmark topic and writes what the scorer writes for it, record for
record, without decoding, aggregating or scoring anything: per input record one update to the output
topic (keyed by the record's key, partitioned by key, the size of a segment update), and per poll
batch one changelog record per distinct key of each input partition (the size of a state entry) plus
that partition's clock record, on the input's partition of the changelog. Everything else is the
scorer's: the backend's consumer (``read_committed``) and producer (``acks=all``, idempotent, the same
linger; transactional for exactly-once), the poll size and timeout of :class:`RunnerSettings`, and the
commit protocol of :mod:`consumer.committers` (flush then commit offsets, or one transaction). So
scorer ÷ passthrough is the share of the I/O ceiling the scorer keeps, per client and mode.

What the passthrough leaves out is the scorer's work proper: the processor (decode, validate, fold,
score, encode) and the telemetry fed by its results. Ageing ticks are part of that work, so the
scorer writes a few more records than the passthrough does (on the bench workload about 6% more
updates, for customers whose segment an ageing tick moved, and their changelog entries).

>>> from consumer.backends.abstract import Record
>>> batch = [Record("in", 0, 0, b"c1", b"{}"), Record("in", 0, 1, b"c1", b"{}"),
...          Record("in", 1, 0, b"c2", b"{}")]
>>> result = PassthroughProcessor("out", "state").process(batch)
>>> [(o.topic, o.key, len(o.value), o.partition) for o in result.outputs]  # doctest: +NORMALIZE_WHITESPACE
[('out', b'c1', 494, None), ('out', b'c1', 494, None), ('out', b'c2', 494, None),
 ('state', b'c1', 130, 0), ('state', b'\\x00clock', 25, 0), ('state', b'c2', 130, 1),
 ('state', b'\\x00clock', 25, 1)]
>>> sorted(result.offsets.values())
[1, 2]
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.workload import unique
from consumer.backends import ClientConfig, make_backend
from consumer.backends.abstract import Consumer, Record, TopicSpec
from consumer.committers import committer_for
from consumer.metrics import ScorerMetrics
from consumer.outputs import Output
from consumer.processor import BatchResult
from consumer.runner import RunnerSettings
from consumer.state_store import CLOCK_KEY

# Mean value sizes the scorer writes on the bench workload (20,000 events through Processor with a
# bench model: updates 478-505 bytes, entries 129-134, clocks always 25). No compression is
# configured, so constant filler costs the clients and the broker what the real values do.
UPDATE_VALUE = b"u" * 494
ENTRY_VALUE = b"e" * 130
CLOCK_VALUE = b"c" * 25


class PassthroughProcessor:
    """Stands in for :class:`~consumer.processor.Processor`: the scorer's records, no logic."""

    def __init__(self, output: str, changelog: str) -> None:
        self.output, self.changelog = output, changelog

    def process(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        changed: dict[int, dict[bytes | None, None]] = {}  # partition -> distinct keys, first-seen order
        for record in records:
            result.offsets[record.topic_partition] = record.next_offset
            result.outputs.append(Output(self.output, record.key, UPDATE_VALUE))
            changed.setdefault(record.partition, {})[record.key] = None
        for partition, keys in changed.items():
            for key in keys:
                result.outputs.append(Output(self.changelog, key, ENTRY_VALUE, partition=partition))
            result.outputs.append(Output(self.changelog, CLOCK_KEY, CLOCK_VALUE, partition=partition))
        return result

    def commit_entries(self, result: BatchResult) -> None:
        """Nothing to keep: the committer calls this once the batch is durable."""


def passthrough_rate(
    config: ClientConfig, client: str, topic: str, *, exactly_once: bool, batch_size: int = 2000
) -> dict:
    """Pass ``topic`` through until consumed to its end; events/s and what was written.

    The clock runs from the first batch to the last one committed, as in ``scorer_rate``.
    """
    name = unique("bench-passthrough")
    settings = RunnerSettings(
        group_id=name, batch_size=batch_size, exactly_once=exactly_once, instance_id=name
    )
    output, changelog = f"{name}-out", f"{name}-state"
    backend = make_backend(client, config)
    compact = {"cleanup.policy": "compact"}  # as the scorer creates its output and changelog
    n = settings.partitions
    backend.ensure_topics([TopicSpec(output, n, config=compact), TopicSpec(changelog, n, config=compact)])
    processor = PassthroughProcessor(output, changelog)
    counts = {"events": 0, "changelog": 0, "batches": 0}
    first = last = 0.0
    transactional_id = f"{settings.group_id}-{settings.instance_id}" if exactly_once else None
    with backend.producer(transactional_id=transactional_id) as producer:
        committer = committer_for(
            exactly_once, producer, processor, ScorerMetrics(), retry_timeout_s=settings.retry_timeout_s
        )
        with backend.consumer(name, isolation_level="read_committed") as consumer:
            consumer.subscribe([topic])
            while True:
                records = consumer.poll(max_records=batch_size, timeout_s=settings.poll_timeout_s)
                if not records:
                    if _caught_up(consumer):
                        break
                    continue
                first = first or time.perf_counter()
                result = processor.process(records)
                if committer.commit(records, result, consumer):  # False: refused, read again
                    counts["events"] += len(records)
                    counts["changelog"] += len(result.outputs) - len(records)  # one update a record
                    counts["batches"] += 1
                last = time.perf_counter()
    seconds = last - first
    return {
        "events": counts["events"],
        "updates": counts["events"],
        "changelog": counts["changelog"],
        "outputs": counts["events"] + counts["changelog"],
        "batches": counts["batches"],
        "seconds": round(seconds, 3),
        "events_per_s": counts["events"] / seconds if seconds else 0.0,
    }


def _caught_up(consumer: Consumer) -> bool:
    """Every assigned partition committed to its end (the runner's ``exit_when_idle`` test)."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends, committed = consumer.end_offsets(assigned), consumer.committed(assigned)
    return all((committed.get(tp) or 0) >= ends[tp] for tp in assigned)
