"""Memory per customer state and throughput of the event aggregator and the synthetic generator.

Run: ``.venv/bin/python bench/bench_aggregator.py [n_customers]`` (default 200,000). Prints numbers only.
"""

import sys
import time
import tracemalloc

from model.features import features, initialize, update
from model.synthetic import synthetic_events


def main(n_customers: int) -> None:
    t0 = time.perf_counter()
    events = list(synthetic_events(n_customers, seed=1))
    generate_s = time.perf_counter() - t0
    print(
        f"synthetic: {len(events):,} events for {n_customers:,} customers in {generate_s:.1f} s "
        f"({len(events) / generate_s:,.0f} events/s)"
    )

    states: dict[str, bytes] = {}
    empty = initialize()
    t0 = time.perf_counter()
    for event in events:
        states[event.customer_id] = update(states.get(event.customer_id, empty), event)
    update_s = time.perf_counter() - t0
    print(f"update: {len(events) / update_s:,.0f} events/s")

    now = max(e.ts_ms for e in events)
    t0 = time.perf_counter()
    for state in states.values():
        features(state, now)
    print(f"features: {len(states) / (time.perf_counter() - t0):,.0f} customers/s")

    keys = list(states)  # keep the key strings alive outside the measurement, then measure them apart
    del states
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rebuilt = {}
    for event in events:
        rebuilt[event.customer_id] = update(rebuilt.get(event.customer_id, empty), event)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    key_bytes = sum(sys.getsizeof(k) for k in keys) / len(keys)
    per_customer = (after - before) / len(rebuilt)
    print(
        f"memory: {per_customer:.0f} B/customer for dict + state, {key_bytes:.0f} B more for the id string "
        f"= {per_customer + key_bytes:.0f} B"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
