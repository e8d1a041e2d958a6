"""`python -m bench` (`make bench`): every benchmark in one run, on one broker, then a table and JSON.

1. raw consume rate of each client (a reference), 2. the scorer at-least-once and exactly-once on each
client, each followed by the passthrough of the same client and mode (``bench.passthrough``: the
scorer's reads, writes and commits without its logic, the job's own I/O ceiling), and the processor
alone with no broker (``bench.processor_rate``), 3. the naive per-event ``predict`` baseline, 4. the
Quix Streams and Bytewax peers (goal: ours at least 2x each with kafka-python, 4x with confluent,
issue 15), 5. end-to-end latency at a fixed offered rate, 6. memory per tracked customer and restore
rate from the changelog, 7. an ageing tick over the same customers (rate and peak memory) and the CDNOW
replay with daily ticks against ticks off (``bench.tick_bench``; no broker). With ``--scale-out``: 8. one
against two scorer processes on a 6-partition topic and the output pause at a rebalance
(``bench.scale_out``; a few minutes more).

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else starts a private broker with deploy/kafka/local-kafka.sh.
Writes bench/results/latest.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import raw_consume
from bench.bytewax_peer import bytewax_rate
from bench.goals import RESULTS
from bench.latency import latency
from bench.naive import naive_rate
from bench.passthrough import passthrough_rate
from bench.processor_rate import processor_rate, records_of
from bench.quix_peer import quix_rate
from bench.readme_table import CLIENTS, markdown, rows
from bench.scale_out import scale_out
from bench.scorer_rate import scorer_rate
from bench.state_bench import (
    memory_per_customer,
    restore_rate,
    sample_entries,
    table_sample_entries,
    write_changelog,
)
from bench.tick_bench import cdnow_replay, tick_rate
from bench.workload import broker, event_pairs, produce, train_model, unique
from consumer.backends import ClientConfig
from consumer.processor import TimeSettings
from model.artifact import load_artifact

MODES = (("at-least-once", False), ("exactly-once", True))
RAW = {"kafka-python": raw_consume.native_kafka_python, "confluent": raw_consume.native_confluent}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the shared topic")
    parser.add_argument("--naive-events", type=int, default=3_000, help="events the naive loop scores")
    parser.add_argument("--quix-events", type=int, default=0, help="events for Quix (0 = all)")
    parser.add_argument("--bytewax-events", type=int, default=0, help="events for Bytewax (0 = all)")
    parser.add_argument("--latency-rate", type=float, default=2_000.0, help="offered events/s")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers for memory/restore")
    parser.add_argument("--scale-out", action="store_true", help="also 1 vs 2 instances and rebalance pauses")
    parser.add_argument("--json", type=Path, default=RESULTS)
    return parser.parse_args()


def step(results: dict, name: str, run) -> None:
    started = time.monotonic()
    print(f"... {name}", flush=True)
    results[name] = run()
    print(f"    {name}: {results[name]} ({time.monotonic() - started:.0f}s)", flush=True)


def measure(args: argparse.Namespace, bootstrap: str, model_dir: Path) -> dict:
    config = ClientConfig(bootstrap, client_id="bench")
    model = load_artifact(model_dir)
    pairs = event_pairs(args.events)
    topic = unique("bench-events")
    produce(config, topic, pairs)
    count, r = len(pairs), {}
    for client in CLIENTS:
        step(r, f"raw/{client}", lambda c=client: {"events_per_s": count / RAW[c](config, topic, count)})
        for mode, eos in MODES:
            step(
                r, f"scorer/{client}/{mode}", lambda c=client, e=eos: _scorer(config, c, topic, model_dir, e)
            )
            step(
                r,
                f"passthrough/{client}/{mode}",
                lambda c=client, e=eos: passthrough_rate(config, c, topic, exactly_once=e),
            )
    records = records_of(pairs)
    step(r, "processor/ticks", lambda: processor_rate(model, records))
    step(r, "processor/no-ticks", lambda: processor_rate(model, records, clock=TimeSettings(tick_ms=0)))
    step(r, "naive", lambda: naive_rate(config, topic, model, args.naive_events))
    step(r, "quix/at-least-once", lambda: quix_rate(config, topic, model, args.quix_events or count))
    step(r, "bytewax/at-least-once", lambda: bytewax_rate(config, topic, model, args.bytewax_events or count))
    rate, seconds = args.latency_rate, args.latency_seconds
    for client in CLIENTS:
        step(
            r,
            f"latency/{client}",
            lambda c=client: {**latency(config, c, model_dir, rate, seconds), "rate": rate},
        )
    samples = sample_entries(pairs)
    step(r, "memory", lambda: memory_per_customer(samples, args.customers))
    step(r, "memory/table", lambda: memory_per_customer(table_sample_entries(), args.customers))
    changelog = write_changelog(config, samples, args.customers)
    for client in CLIENTS:
        step(r, f"restore/{client}", lambda c=client: restore_rate(config, c, changelog))
    step(r, "tick", lambda: tick_rate(model, samples, args.customers))
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as directory:
        step(r, "replay/cdnow", lambda: cdnow_replay(Path(directory)))
    if args.scale_out:  # the default client, like a plain `segmenter consume`
        step(r, "scale-out", lambda: scale_out(config, "kafka-python", model_dir, pairs, rate))
    return r


def _scorer(config: ClientConfig, client: str, topic: str, model_dir: Path, exactly_once: bool) -> dict:
    from consumer.model_source import ModelSource
    from model.features import EVENT_FEATURE_SPEC

    source = ModelSource(
        model_dir, expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash(), check_interval_s=3600
    )
    return scorer_rate(config, client, topic, source, exactly_once=exactly_once)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-model-") as directory, broker() as bootstrap:
        model_dir = train_model(Path(directory))
        results = measure(args, bootstrap, model_dir)
    table = rows(results)
    print(f"\nbenchmarks: {args.events:,} events, {platform.processor() or platform.machine()}, "
          f"{time.monotonic() - started:.0f}s; the README's table (python -m bench.readme_table renders "
          "it again from the JSON):")  # fmt: skip
    print(markdown(table))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "events": args.events,
                "results": results,
                "table": [dict(zip(("what", "measured", "goal"), row, strict=True)) for row in table],
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
