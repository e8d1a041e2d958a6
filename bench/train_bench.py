"""Benchmark (not a test): train on 1,000,000 SYNTHETIC customers and print the time per step.

Steps: event generation + feature aggregation (the streaming aggregator over the whole history),
the training run (preprocess, k selection, fit, profiles, comparison, stability, save, report), and
scoring (all customers in one vectorised call, then poll-sized batches of dicts as the stream does).

    .venv/bin/python bench/train_bench.py [--customers 1000000] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

from model.artifact import load_artifact
from model.synthetic import synthetic_events
from training.sources import from_events, random_holdout
from training.train import TrainOptions, train


def timed(label: str, results: dict, func, *args, **kwargs):
    started = time.perf_counter()
    value = func(*args, **kwargs)
    results[label] = time.perf_counter() - started
    print(f"{label:<28} {results[label]:8.2f} s", flush=True)
    return value


def score_batches(model, rows: list[dict], batch: int) -> int:
    for start in range(0, len(rows), batch):
        model.score(rows[start : start + batch])
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="model directory (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = args.out or Path(tempfile.mkdtemp(prefix="train-bench-"))
    results: dict[str, float] = {}
    print(f"training on {args.customers:,} synthetic customers -> {out}")
    data = timed("events + feature aggregation", results, from_events,
                 synthetic_events(args.customers, seed=args.seed), "synthetic")  # fmt: skip
    data.holdout_ids = random_holdout(data.frame.index, 0.1, args.seed)
    rate = data.description["events"] / results["events + feature aggregation"]
    print(f"  {data.description['events']:,} events, {len(data.frame):,} customers, {rate:,.0f} events/s")
    summary = timed("training (all steps)", results, train, data, out, TrainOptions(seed=args.seed))
    for step, seconds in summary["timings"].items():
        print(f"  {step:<26} {seconds:8.2f} s")
    print(f"  chose k={summary['k']} metrics={summary['metrics']}")
    print(f"  segments: {[(p['name'], p['share']) for p in summary['segments']]}")
    model = load_artifact(out)
    timed("score all (one call)", results, model.score_arrays, data.frame)
    rows = data.frame.head(200_000).reset_index().to_dict(orient="records")
    for batch in (1, 500):
        subset = rows[: 2_000 if batch == 1 else len(rows)]
        label = f"score {len(subset):,} rows in batches of {batch}"
        timed(label, results, score_batches, model, subset, batch)
        print(f"  {len(subset) / results[label]:,.0f} customers/s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
