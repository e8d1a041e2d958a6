"""The processor alone: the bench workload's records through ``Processor.process`` and
``commit_entries`` in poll-sized batches, with no broker and no client (one core, one thread).

This is the scorer's own Python cost per event (decode, validate, fold, score, encode the update and
the changelog entry); the end-to-end rows add the clients' cost on top. Records are spread over
``partitions`` partitions by key, as the producer's partitioner would, and handed over in offset
order per partition, interleaved like a poll returns them.

``python -m bench.processor_rate --model-dir DIR [--events N] [--profile]`` runs it alone.
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

from consumer.backends.abstract import Record
from consumer.processor import DEFAULT_TIME, Processor, TimeSettings, Topics
from consumer.state_store import StateStore


def records_of(pairs, topic: str = "bench-events", partitions: int = 3) -> list[Record]:
    """The (key, value) pairs as the records a consumer would see: per-partition offsets."""
    offsets = [0] * partitions
    records = []
    for key, value in pairs:
        partition = zlib.crc32(key) % partitions
        records.append(Record(topic, partition, offsets[partition], key, value))
        offsets[partition] += 1
    return records


def processor_rate(
    model, records: list[Record], batch_size: int = 2000, repeats: int = 3, clock: TimeSettings = DEFAULT_TIME
) -> dict:
    """Best of ``repeats`` fresh runs over ``records``: events/s and what was written. ``clock`` is the
    scorer's default (daily ageing ticks) unless given; ``TimeSettings(tick_ms=0)`` is the event path
    alone."""
    best, outputs = float("inf"), 0
    for _ in range(repeats):
        store = StateStore()
        for partition in {record.partition for record in records}:
            store.assign(partition)
        processor = Processor(store, lambda: model, Topics("bench-events"), clock=clock)
        outputs = 0
        started = time.perf_counter()
        for start in range(0, len(records), batch_size):
            result = processor.process(records[start : start + batch_size])
            processor.commit_entries(result)
            outputs += len(result.outputs)
        best = min(best, time.perf_counter() - started)
    return {
        "events": len(records),
        "outputs": outputs,
        "seconds": round(best, 3),
        "events_per_s": len(records) / best,
    }


def main() -> None:
    from bench.workload import event_pairs
    from consumer.model_source import ModelSource

    parser = argparse.ArgumentParser(
        prog="python -m bench.processor_rate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="a trained event model")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ticks", action="store_true", help="the event path alone (--tick 0)")
    parser.add_argument("--profile", action="store_true", help="one run under cProfile, top 30 by own time")
    args = parser.parse_args()
    model = ModelSource(args.model_dir, check_interval_s=3600)()
    records = records_of(event_pairs(args.events))
    clock = TimeSettings(tick_ms=0) if args.no_ticks else DEFAULT_TIME
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(processor_rate, model, records, repeats=1, clock=clock)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    print(processor_rate(model, records, repeats=args.repeats, clock=clock))


if __name__ == "__main__":
    main()
