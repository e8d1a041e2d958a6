"""Raw consume rate of each Kafka client on the same pre-produced events: the ceiling for the scorer.

Produces N customer-event-sized JSON records once into a fresh 3-partition topic, then reads all of
them with each client, natively and through our backend adapters (``consumer.backends``), each in its
own consumer group. The clock starts at the first record received, so group joins are not counted.

Usage: ``python bench/raw_consume.py [--events 200000] [--bootstrap 127.0.0.1:19092] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable

from consumer.backends import ClientConfig, TopicSpec, make_backend

Reader = Callable[[str, int], float]


def produce_events(config: ClientConfig, topic: str, count: int) -> None:
    """Write ``count`` keyed JSON events of about 150 bytes, the shape of a CDNOW purchase."""
    backend = make_backend("confluent", config)
    backend.ensure_topics([TopicSpec(topic, partitions=3)])
    with backend.producer() as producer:
        for i in range(count):
            customer = f"c{i % 23_570:05d}"
            event = {
                "customer_id": customer,
                "event_time": "1997-01-01T00:00:00Z",
                "amount": 12.5 + i % 90,
                "quantity": 1 + i % 4,
                "event_type": "purchase",
                "event_id": i,
            }
            producer.produce(topic, customer.encode(), json.dumps(event).encode())
        producer.flush(120)


def _drain(poll: Callable[[], int], count: int) -> float:
    """Call ``poll`` (returns how many records it got) until ``count``; seconds from the first record."""
    seen, started = 0, None
    deadline = time.monotonic() + 600
    while seen < count:
        got = poll()
        if got and started is None:
            started = time.perf_counter()
        seen += got
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {count} records in 600s")
    return time.perf_counter() - started


def native_kafka_python(config: ClientConfig, topic: str, count: int) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=config.bootstrap_servers,
        group_id=f"bench-{uuid.uuid4()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        return _drain(lambda: sum(len(b) for b in consumer.poll(timeout_ms=500).values()), count)
    finally:
        consumer.close()


def native_confluent(config: ClientConfig, topic: str, count: int) -> float:
    import confluent_kafka

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": config.bootstrap_servers,
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        return _drain(lambda: sum(1 for m in consumer.consume(5000, 0.5) if m.error() is None), count)
    finally:
        consumer.close()


def through_backend(name: str) -> Callable[[ClientConfig, str, int], float]:
    def read(config: ClientConfig, topic: str, count: int) -> float:
        consumer = make_backend(name, config).consumer(f"bench-{uuid.uuid4()}")
        consumer.subscribe([topic])
        try:
            return _drain(lambda: len(consumer.poll(max_records=5000, timeout_s=0.5)), count)
        finally:
            consumer.close()

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    config = ClientConfig(args.bootstrap, client_id="bench-raw-consume")
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    produce_events(config, topic, args.events)
    runs = {
        "kafka-python (native)": native_kafka_python,
        "confluent (native)": native_confluent,
        "kafka-python (backend)": through_backend("kafka-python"),
        "confluent (backend)": through_backend("confluent"),
    }
    rates = {label: args.events / read(config, topic, args.events) for label, read in runs.items()}
    print(f"raw consume of {args.events} events from {topic} ({args.bootstrap})")
    for label, rate in rates.items():
        print(f"  {label:<24} {rate:>12,.0f} events/s")
    for kind in ("native", "backend"):
        ratio = rates[f"confluent ({kind})"] / rates[f"kafka-python ({kind})"]
        print(f"  confluent / kafka-python ({kind}): {ratio:.1f}x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"events": args.events, "events_per_s": rates}, out, indent=2)


if __name__ == "__main__":
    main()
