"""`segmenter demo` / `make demo`: the main job end to end on the real CDNOW history.

1. train a model on CDNOW if the model directory has none;
2. start the local Kafka broker unless ``KAFKA_BOOTSTRAP_SERVERS`` points at one;
3. replay CDNOW (69,659 purchases, with a few malformed events mixed in) to a fresh events topic;
4. run the streaming scorer until the replay is consumed, serving Prometheus metrics meanwhile;
5. print a summary: events, customers, segments, dead letters, throughput, the ageing updates the
   daily ticks published, a transition table (from segment -> to segment) and where the customers who
   bought once in early 1997 ended up.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO / "deploy" / "kafka" / "local-kafka.sh"
EARLY_1997_MS = 859_852_800_000  # 1997-04-01T00:00:00Z


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default="artifacts/cdnow", help="model directory (trained if empty)")
    parser.add_argument("--client", default="kafka-python", help="kafka-python | confluent")
    parser.add_argument("--exactly-once", action="store_true", help="score with Kafka transactions")
    parser.add_argument("--invalid-every", type=int, default=5000, help="a malformed event after every K")
    parser.add_argument("--metrics-port", type=int, default=9108, help="Prometheus metrics port (0 = any)")
    parser.add_argument("--rate", type=float, default=0.0, help="replay rate in events/s (0 = flat out)")


def _ensure_model(model_dir: Path, key) -> None:
    if (model_dir / "manifest.json").exists():
        log.info("using the model in %s", model_dir)
        return
    from training.sources import load_cdnow
    from training.train import train

    log.info("no model in %s: training on CDNOW first", model_dir)
    train(load_cdnow(), model_dir, signing_key=key)


def _ensure_broker() -> tuple[str, bool]:
    """(bootstrap servers, whether this demo started the broker and must stop it)."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        return existing, False
    started = subprocess.run([str(LOCAL_KAFKA), "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise SystemExit(f"could not start the local Kafka broker:\n{started.stderr}")
    return started.stdout.strip().splitlines()[-1].split("=", 1)[1], "already running" not in started.stderr


def _print_summary(summary, model, seconds_replay: float, sent: int, url: str) -> None:
    print()
    print(f"model        {model.model_id} ({model.algorithm}, k={model.k})")
    print(f"replayed     {sent} records in {seconds_replay:.1f} s")
    print(
        f"consumed     {summary.events} events in {summary.seconds:.1f} s "
        f"({summary.events_per_second:,.0f} events/s)"
    )
    print(f"valid        {summary.valid}")
    print(f"dead letters {summary.dead_letters}")
    print(
        f"updates      {summary.updates} segment updates published, {summary.ageing_updates} by ageing ticks"
    )
    customers = sum(summary.final_segments.values())
    print(f"customers    {customers}")
    print("segments     (current segment of every customer)")
    for segment, count in sorted(summary.final_segments.items()):
        print(f"  {segment:>2}  {_name(model, segment):<28} {count:>7}  {count / customers:6.1%}")
    _print_transitions(summary.transitions, model)
    print(f"metrics      served at {url}/metrics during the run (/healthz, /readyz too)")


def _name(model, segment: int) -> str:
    """A segment id's name; an id the model lacks (stored by an unrelated model) says so."""
    try:
        return model.segment_name(segment)
    except KeyError:
        return "(not in this model)"


def _print_transitions(transitions, model) -> None:
    """Changes of segment during the replay, both reasons: rows are from, columns to (segment ids)."""
    ids = model.segment_ids
    print("transitions  (segment changes during the replay: rows from, columns to)")
    print("  " + " " * 30 + "".join(f"{to:>9}" for to in ids))
    for before in ids:
        row = "".join(f"{transitions.get(f'{before}->{after}', 0):>9}" for after in ids)
        print(f"  {before:>2}  {_name(model, before):<26}{row}")


def early_one_timers(store, until_ms: int) -> dict[int, int]:
    """Current segment of the customers whose one and only purchase came before ``until_ms``."""
    from model.features import features, last_event_ms

    counts: dict[int, int] = {}
    for _, entry in store.customers():
        row = features(entry.state, last_event_ms(entry.state))
        if row["frequency"] == 1 and last_event_ms(entry.state) < until_ms:
            counts[entry.last_segment] = counts.get(entry.last_segment, 0) + 1
    return counts


def _print_one_timers(counts: dict[int, int], model) -> None:
    total = sum(counts.values())
    print(f"early 1997   {total} customers bought once, before April 1997; where they are now:")
    for segment, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {segment:>2}  {_name(model, segment):<28} {count:>7}  {count / max(total, 1):6.1%}")


def run(args: argparse.Namespace) -> int:
    from consumer.backends import ClientConfig, TopicSpec, make_backend
    from consumer.http import MetricsServer, Readiness
    from consumer.metrics import ScorerMetrics
    from consumer.model_source import ModelSource
    from consumer.processor import Topics
    from consumer.replay import dataset_records, replay, with_invalid
    from consumer.runner import RunnerSettings, ScorerRunner
    from model.features import EVENT_FEATURE_SPEC
    from model.signing import UNVERIFIED_WARNING, resolve_model_key

    key = resolve_model_key(None, os.environ)  # SEGMENTER_MODEL_KEY(_FILE): sign, then verify
    if key is None:
        log.warning("%s", UNVERIFIED_WARNING)
    model_dir = Path(args.model_dir)
    _ensure_model(model_dir, key)
    bootstrap, started_broker = _ensure_broker()
    run_id = time.strftime("%Y%m%d%H%M%S")
    topics = Topics(*(f"{name}-demo{run_id}" for name in vars(Topics()).values()))
    try:
        backend = make_backend(args.client, ClientConfig(bootstrap, client_id="segmenter-demo"))
        backend.ensure_topics([TopicSpec(topics.input, 3)])
        started = time.monotonic()
        with backend.producer() as producer:
            records = with_invalid(dataset_records("cdnow"), args.invalid_every)
            sent = replay(producer, topics.input, records, rate=args.rate)
        seconds_replay = time.monotonic() - started
        model = ModelSource(model_dir, expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash(), model_key=key)
        metrics, readiness = ScorerMetrics(), Readiness()
        settings = RunnerSettings(
            group_id=f"segmenter-demo{run_id}",
            topics=topics,
            exactly_once=args.exactly_once,
            exit_when_idle=True,
        )
        runner = ScorerRunner(backend, settings, model, metrics=metrics, readiness=readiness)
        with MetricsServer(metrics.registry, readiness, port=args.metrics_port) as server:
            one_timers: dict[int, int] = {}
            summary = runner.run(
                threading.Event(),
                at_stop=lambda store: one_timers.update(early_one_timers(store, EARLY_1997_MS)),
            )
            url = server.url
        _print_summary(summary, model(), seconds_replay, sent, url)
        _print_one_timers(one_timers, model())
    finally:
        if started_broker:
            subprocess.run([str(LOCAL_KAFKA), "stop"], capture_output=True, check=False)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    from deploy.cli import configure_logging

    configure_logging("INFO")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
