"""Scale-out: one against two scorer instances on a 6-partition topic, and the pause at a rebalance.

Throughput: N scorer processes (``segmenter consume``, at-least-once) join a fresh group on a fresh
6-partition topic; once the group is stable with every instance holding partitions, the events are
produced in one burst, and the run ends when the group has committed them all. The rate is the
events over the span from the first to the last output record's produce timestamp, so process
start-up and group join are not counted (nor is the one rebalance a later instance would cause).
The two-instance run gets its own topics and group, so it scores the same events from scratch.

Rebalance pause: :mod:`bench.rebalance_pause`.

Usage: ``python -m bench.scale_out [--events 100000] [--client kafka-python] [--model-dir DIR]``
(``KAFKA_BOOTSTRAP_SERVERS`` or a private broker, like ``python -m bench``); ``python -m bench
--scale-out`` adds it to the full run.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from bench.rebalance_pause import rebalance_pauses
from bench.scorer_group import PARTITIONS, ScorerGroup
from bench.workload import broker, event_pairs, produce, train_model, unique
from consumer.backends import ClientConfig


def throughput(config: ClientConfig, client: str, model_dir: Path, pairs, instances: int) -> dict:
    """Aggregate events/s of ``instances`` scorer processes over ``pairs``, first to last output."""
    with ScorerGroup(config, client, model_dir, unique("bench-scale-out")) as group:
        for n in range(instances):
            group.start(f"{group.group}-{n}")
        group.wait(lambda: group.assigned_members() == instances, f"{instances} instances assigned")
        cpu = group.cpu_seconds()
        produce(config, group.topics.input, pairs, partitions=PARTITIONS)
        group.wait(lambda: sum(group.committed().values()) >= len(pairs), "every event scored", 600)
        cpu = group.cpu_seconds() - cpu
        times = group.output_times()
    first = min(ts[0] for ts in times.values() if ts)
    last = max(ts[-1] for ts in times.values() if ts)
    seconds = (last - first) / 1000
    return {
        "instances": instances,
        "events": len(pairs),
        "updates": sum(len(ts) for ts in times.values()),
        "seconds": round(seconds, 3),
        "events_per_s": len(pairs) / seconds if seconds else 0.0,
        # The scorers' own CPU per event: on a busy machine the rate says how much CPU they got, this
        # says how much they needed (equal per event for one and two instances = no scaling overhead).
        "cpu_us_per_event": cpu / len(pairs) * 1e6,
    }


def scale_out(config: ClientConfig, client: str, model_dir: Path, pairs, rate: float) -> dict:
    """Throughput of one and of two instances over ``pairs``, then the rebalance pauses at ``rate``/s."""
    one = throughput(config, client, model_dir, pairs, 1)
    two = throughput(config, client, model_dir, pairs, 2)
    return {
        "client": client,
        "one": one,
        "two": two,
        "speedup": two["events_per_s"] / one["events_per_s"],
        "pauses": rebalance_pauses(config, client, model_dir, rate),
    }


def rows(r: dict) -> list[tuple[str, str]]:
    """(what, measured) rows of a :func:`scale_out` result."""
    one, two, pauses = r["one"], r["two"], r["pauses"]
    rate = pauses["dynamic"]["rate"]
    table = [
        (
            f"1 instance, 6 partitions, {r['client']}",
            f"{one['events_per_s']:,.0f} events/s ({one['cpu_us_per_event']:.0f} us CPU/event)",
        ),
        (
            f"2 instances, 6 partitions, {r['client']}",
            f"{two['events_per_s']:,.0f} events/s = {r['speedup']:.2f}x one "
            f"({two['cpu_us_per_event']:.0f} us CPU/event)",
        ),
    ]
    for label, scenario, change in (
        ("steady (no change)", "dynamic", "steady"),
        ("instance leaves (dynamic)", "dynamic", "leave"),
        ("instance joins (dynamic)", "dynamic", "join"),
        ("instance restarts (static)", "static", "restart"),
    ):
        gap = pauses[scenario][change]
        measured = f"{gap['all_ms']:,} ms all partitions, {gap['partition_ms']:,} ms one partition"
        if change in ("leave", "restart"):
            measured += f" (SIGTERM to exit {pauses[scenario]['stop_ms']:,} ms)"
        table.append((f"longest output gap at {rate:,.0f} ev/s, {label}", measured))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events of the throughput runs")
    parser.add_argument("--rate", type=float, default=2_000.0, help="offered events/s during the pauses")
    parser.add_argument("--client", choices=("kafka-python", "confluent"), default="kafka-python")
    parser.add_argument("--model-dir", type=Path, help="a trained model (default: train one)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as directory, broker() as bootstrap:
        model_dir = args.model_dir or train_model(Path(directory))
        config = ClientConfig(bootstrap, client_id="bench")
        result = scale_out(config, args.client, model_dir, event_pairs(args.events), args.rate)
    width = max(len(what) for what, _ in rows(result))
    for what, measured in rows(result):
        print(f"  {what:<{width}}  {measured}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
