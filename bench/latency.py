"""End-to-end latency at a fixed offered rate: event produced → its segment update readable.

The scorer runs as its own process (``segmenter consume``, at-least-once). This process produces
events at ``rate`` per second (noting when each was handed to the producer and, from the delivery
report, where it landed) and reads the output topic ``read_committed``. A segment update names the
input record it reflects (``source``); its latency is the time it was read minus the time that
record was produced. A warm-up batch is scored first so group join and start-up are not counted.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from bench.workload import event_pairs, unique
from consumer.backends import ClientConfig, TopicSpec, make_backend

WARM_UP = 200


def _scorer(config: ClientConfig, client: str, model_dir, name: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "deploy.cli", "consume", "--client", client,
        "--bootstrap-servers", config.bootstrap_servers, "--model-dir", str(model_dir),
        "--group-id", name, "--instance-id", name, "--metrics-port", "0",
        "--input-topic", f"{name}-in", "--output-topic", f"{name}-out",
        "--dlq-topic", f"{name}-dlq", "--changelog-topic", f"{name}-state",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Paced:
    """Produce pairs at ``rate``/s in a thread; remember each record's produce time by (partition, offset)."""

    def __init__(self, config: ClientConfig, topic: str, pairs, rate: float) -> None:
        import confluent_kafka

        self._producer = confluent_kafka.Producer(
            {"bootstrap.servers": config.bootstrap_servers, "linger.ms": 1, "partitioner": "murmur2_random"}
        )
        self.topic, self.pairs, self.rate = topic, pairs, rate
        self.sent_at: dict[tuple[int, int], float] = {}
        self.thread = threading.Thread(target=self._run, name="paced-producer")

    def _run(self) -> None:
        started = time.monotonic()
        for n, (key, value) in enumerate(self.pairs):
            ahead = started + n / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # holding the offered rate is the point
            at = time.time()
            self._producer.produce(self.topic, value, key, on_delivery=self._delivered(at))
            self._producer.poll(0)
        self._producer.flush(60)

    def _delivered(self, at: float):
        def note(error, message) -> None:
            if error is None:
                self.sent_at[(message.partition(), message.offset())] = at

        return note


def _reader(config: ClientConfig, topic: str):
    import confluent_kafka

    reader = confluent_kafka.Consumer(
        {
            "bootstrap.servers": config.bootstrap_servers,
            "group.id": unique("bench-latency-reader"),
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    reader.subscribe([topic])
    return reader


def _read_until(reader, done, timeout_s: float) -> list[tuple[tuple[int, int], float]]:
    """(source partition and offset, read time) of each update until ``done()`` or the timeout."""
    seen: list[tuple[tuple[int, int], float]] = []
    deadline = time.monotonic() + timeout_s
    while not done(seen) and time.monotonic() < deadline:
        for message in reader.consume(1000, 0.05):
            if message.error() is None:
                source = json.loads(message.value())["source"]
                seen.append(((source["partition"], source["offset"]), time.time()))
    return seen


def latency(config: ClientConfig, client: str, model_dir, rate: float, seconds: float) -> dict:
    """p50/p95/p99 latency in ms over ``seconds`` of events offered at ``rate``/s."""
    name = unique("bench-latency")
    make_backend("confluent", config).ensure_topics([TopicSpec(f"{name}-in", 3)])
    pairs = event_pairs(WARM_UP + int(rate * seconds), seed=17)
    scorer = _scorer(config, client, model_dir, name)
    reader = _reader(config, f"{name}-out")
    try:
        warm = Paced(config, f"{name}-in", pairs[:WARM_UP], rate)
        warm.thread.start()
        warm.thread.join()
        _read_until(reader, lambda seen: len(seen) >= 1, timeout_s=120)
        paced = Paced(config, f"{name}-in", pairs[WARM_UP:], rate)
        paced.thread.start()
        seen = _read_until(reader, lambda s: not paced.thread.is_alive() and _quiet(s), seconds + 60)
        paced.thread.join()
    finally:
        scorer.send_signal(signal.SIGTERM)
        scorer.wait(timeout=60)
        reader.close()
    values = [(read - paced.sent_at[source]) * 1000 for source, read in seen if source in paced.sent_at]
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "updates": len(values),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(max(values)),
    }


def _quiet(seen) -> bool:
    """True once no update arrived for two seconds: the last updates trail the last event."""
    return not seen or time.time() - seen[-1][1] > 2.0
