"""What every benchmark shares: a broker, a model, and one topic of valid customer events.

The events are the seeded synthetic customers of ``model.synthetic`` (purchases, refunds, visits and
profiles, about 150 bytes each, in event-time order, keyed by customer id); ``--events 200000`` is
about 18,000 customers. They are produced once; every consumer in the run reads that same topic.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from consumer.backends import ClientConfig, TopicSpec, make_backend
from model.events import encode_event
from model.synthetic import synthetic_events

REPO = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO / "deploy" / "kafka" / "local-kafka.sh"
EVENTS_PER_CUSTOMER = 11.1  # what model.synthetic generates on average


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a private broker started (and stopped) for this run."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as state:
        env = {**os.environ, "KAFKA_PORT": "auto", "KAFKA_LOCAL_DIR": state}
        started = subprocess.run(
            [str(LOCAL_KAFKA), "start"], env=env, capture_output=True, text=True, timeout=600, check=True
        )
        try:
            yield started.stdout.strip().splitlines()[-1].split("=", 1)[1]
        finally:
            subprocess.run([str(LOCAL_KAFKA), "stop"], env=env, capture_output=True, timeout=120, check=False)


def event_pairs(count: int, seed: int = 3) -> list[tuple[bytes, bytes]]:
    """About ``count`` (key, value) valid events in event-time order."""
    events = sorted(
        synthetic_events(max(int(count / EVENTS_PER_CUSTOMER), 1), seed=seed),
        key=lambda e: (e.ts_ms, e.event_id),
    )
    return [(e.customer_id.encode(), encode_event(e)) for e in events[:count]]


def produce(config: ClientConfig, topic: str, pairs, partitions: int = 3) -> None:
    """Write ``pairs`` to a new ``topic`` with the fast client (production is not what is measured)."""
    backend = make_backend("confluent", config)
    backend.ensure_topics([TopicSpec(topic, partitions)])
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topic, key, value)
        producer.flush(300)


def train_model(directory: Path) -> Path:
    """A model trained on synthetic customers with every feature, like the one the scorer tests use."""
    from training.sources import from_events
    from training.train import TrainOptions, train

    data = from_events(synthetic_events(3000, seed=11), "synthetic:3000")
    train(data, directory, TrainOptions(k_max=6, stability_rounds=2, report=False, compare_sample=3000))
    return directory


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
