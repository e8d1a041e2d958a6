"""An ageing tick at scale: customers re-scored per second, and the extra memory one tick takes.

``customers`` distinct customer ids, each with its own copy of a real entry (the benchmark's synthetic
customers, as ``bench.state_bench`` builds them), in one :class:`StateStore` partition. Each sample
entry's ``last_segment`` is what the model gave it at the previous daily tick, so the tick measured
is the steady state: everyone re-scored, only the customers who crossed a boundary that day returned.

Rate: the median wall time of ``repeats`` calls to ``consumer.ageing.age_partition`` over the whole
partition. Memory: ``tracemalloc``'s peak minus what was allocated before the call (the store, the
model), i.e. what one tick adds on top of the state it reads.

Replay: the CDNOW log (69,659 purchases, 23,570 customers, 18 months) through file mode
(``consumer.file_mode.run_files``, what ``segmenter consume --source file:`` runs) in-process with a
model trained on it, with daily ticks and with ticks off, alternately ``repeats`` times; the ratio of
the median times is the issue's "at most 2x".

``python -m bench.tick_bench --customers 1000000`` runs both alone (it trains the models first);
``python -m bench`` runs them as steps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.state_bench import sample_entries
from bench.workload import event_pairs, train_model
from consumer.ageing import age_partition
from consumer.file_mode import run_files
from consumer.processor import TimeSettings
from consumer.state_store import Entry, StateStore
from consumer.tick_schedule import TickSchedule
from model.artifact import load_artifact
from model.clock import boundary
from model.feature_columns import entry_feature_columns
from model.features import DAY_MS, last_event_ms

PARTITION = 0


def scored_samples(samples: list[bytes], model, at_ms: int) -> list[bytes]:
    """``samples`` with ``last_segment`` set to the model's segment for them as of ``at_ms``."""
    labels, _, _ = model.score_columns(entry_feature_columns(samples, at_ms), len(samples), None)
    pairs = zip(samples, labels.tolist(), strict=True)
    return [Entry._trusted(raw).scored(label).to_bytes() for raw, label in pairs]


def build_store(samples: list[bytes], count: int) -> StateStore:
    """One partition of ``count`` customers, each a fresh copy of a sample entry (as read from Kafka)."""
    store = StateStore()
    for start in range(0, count, 100_000):
        customers = range(start, min(start + 100_000, count))
        store.put_many(PARTITION, {f"cust-{i:08d}": _copy(samples[i % len(samples)]) for i in customers})
    return store


def _copy(raw: bytes) -> bytes:
    return raw[:1] + raw[1:]  # slicing copies: one bytes object per customer


def tick_rate(model, samples: list[bytes], count: int, repeats: int = 5) -> dict:
    """Customers/s of an ageing tick over ``count`` customers (median of ``repeats``), and its peak memory."""
    at_ms = boundary(max(last_event_ms(Entry._trusted(raw).state) for raw in samples), DAY_MS) + DAY_MS
    samples = scored_samples(samples, model, at_ms - DAY_MS)
    stored = build_store(samples, count).raw_entries(PARTITION)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        aged = age_partition(stored, {}, at_ms, model, None)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {
        "customers": aged.customers,
        "changed": len(aged.changed),
        "seconds": [round(s, 3) for s in seconds],
        "median_seconds": round(median, 3),
        "customers_per_s": aged.customers / median,
        "peak_mb": peak_memory(stored, at_ms, model) / 1e6,
        **scheduled_ticks(stored, at_ms, model),
    }


def scheduled_ticks(stored, at_ms: int, model) -> dict:
    """What the processor's ticks do with a schedule (``consumer.tick_schedule``): the first tick
    re-scores everyone and files them (proving horizons costs extra), the next day's re-scores only
    those due; and the bytes per customer the schedule holds between ticks."""
    key = b"bench-model"
    tracemalloc.start()  # the schedule's own memory, held between ticks
    try:
        schedule = TickSchedule()
        before = tracemalloc.get_traced_memory()[0]
        age_partition(stored, {}, at_ms, model, None, schedule=schedule, model_key=key)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    schedule = TickSchedule()
    started = time.perf_counter()
    age_partition(stored, {}, at_ms, model, None, schedule=schedule, model_key=key)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    nxt = age_partition(stored, {}, at_ms + DAY_MS, model, None, schedule=schedule, model_key=key)
    next_s = time.perf_counter() - started
    return {
        "scheduled_first_s": round(first_s, 3),
        "scheduled_first_customers_per_s": len(stored) / first_s,
        "scheduled_next_s": round(next_s, 3),
        "scheduled_next_rescored": nxt.customers,
        "scheduled_next_skipped": nxt.skipped,
        "schedule_bytes_per_customer": held / len(stored),
    }


def peak_memory(stored, at_ms: int, model) -> int:
    """Bytes one tick allocates at its peak beyond what was allocated before it (``tracemalloc``)."""
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        age_partition(stored, {}, at_ms, model, None)
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def cdnow_replay(directory: Path, repeats: int = 3) -> dict:
    """Median seconds of the CDNOW file-mode replay with daily ticks and with ticks off, and their ratio."""
    from consumer.replay import dataset_records
    from training.sources import load_cdnow
    from training.train import TrainOptions, train

    events = directory / "cdnow.jsonl"
    events.write_bytes(b"".join(value + b"\n" for _, value in dataset_records("cdnow")))
    train(load_cdnow(), directory / "cdnow-model", TrainOptions(report=False))
    model = load_artifact(directory / "cdnow-model")
    seconds: dict[int, list[float]] = {DAY_MS: [], 0: []}
    for _ in range(repeats):
        for tick_ms, times in seconds.items():
            started = time.perf_counter()
            run_files(
                f"file:{events}",
                f"file:{directory / 'out.jsonl'}",
                lambda: model,
                clock=TimeSettings(tick_ms),
            )
            times.append(time.perf_counter() - started)
    on, off = statistics.median(seconds[DAY_MS]), statistics.median(seconds[0])
    return {"ticks_1d_s": round(on, 2), "ticks_off_s": round(off, 2), "ratio": on / off, "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tick_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000, help="synthetic events for the sample entries")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replay-repeats", type=int, default=3, help="CDNOW replays each way (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as directory:
        model = load_artifact(train_model(Path(directory) / "synthetic"))
        tick = tick_rate(model, sample_entries(event_pairs(args.events)), args.customers, args.repeats)
        print(tick)
        print(f"tick: {tick['customers_per_s']:,.0f} customers/s (target >= 500,000), "
              f"peak +{tick['peak_mb']:.1f} MB (target <= 50 MB)")  # fmt: skip
        if args.replay_repeats:
            replay = cdnow_replay(Path(directory), args.replay_repeats)
            print(replay)
            print(f"CDNOW replay: ticks 1d {replay['ticks_1d_s']} s / off {replay['ticks_off_s']} s = "
                  f"{replay['ratio']:.2f}x (target <= 2x)")  # fmt: skip


if __name__ == "__main__":
    main()
