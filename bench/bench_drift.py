"""Cost of live drift monitoring per scored customer, and of one snapshot.

Run: ``.venv/bin/python bench/bench_drift.py [n_rows]`` (default 200,000). Prints numbers only.
"""

import sys
import time

import numpy as np

from model.drift import categorical_baseline, numeric_baseline
from model.monitor import DriftMonitor, WindowSpec


def main(n_rows: int, batch: int = 500) -> None:
    rng = np.random.default_rng(0)
    spend, visits = rng.lognormal(3, 1, n_rows), rng.poisson(4, n_rows).astype(float)
    channel = rng.choice(["web", "store", "app"], n_rows)
    baselines = {
        "spend": numeric_baseline(spend),
        "visits": numeric_baseline(visits),
        "channel": categorical_baseline(channel),
    }
    rows = [{"spend": s, "visits": v, "channel": c} for s, v, c in zip(spend, visits, channel, strict=True)]
    segments = rng.integers(0, 6, n_rows).tolist()
    for label, window in (
        ("count 10k", WindowSpec(max_count=10_000)),
        ("1 h event time", WindowSpec(None, 3600)),
    ):
        monitor = DriftMonitor([1 / 6] * 6, baselines, window=window)
        t0 = time.perf_counter()
        for start in range(0, n_rows, batch):
            stamps = [start / 10.0] * len(segments[start : start + batch])
            monitor.observe(segments[start : start + batch], rows[start : start + batch], stamps)
        observe_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = monitor.snapshot()
        snapshot_ms = (time.perf_counter() - t0) * 1000
        print(
            f"{label}: observe {n_rows / observe_s:,.0f} rows/s (3 features, batches of {batch}); "
            f"snapshot {snapshot_ms:.2f} ms; state {report.state}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
