"""The foundation works end to end through the real broker: topics, keyed JSON, groups, commits."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, records: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    for record in records:
        producer.send(topic, key=record["customer_id"].encode(), value=json.dumps(record).encode())
    producer.flush()
    producer.close()


def _consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def _poll_until(consumer: KafkaConsumer, count: int, timeout_s: float = 30.0) -> list:
    """Poll until ``count`` records arrived or fail; poll's own timeout is the wait, not a sleep."""
    got: list = []
    polls = int(timeout_s / 0.5)
    for _ in range(polls):
        for batch in consumer.poll(timeout_ms=500, max_records=count - len(got)).values():
            got.extend(batch)
        if len(got) >= count:
            return got
    raise AssertionError(f"only {len(got)} of {count} records arrived in {timeout_s}s")


def test_group_resumes_after_committed_offset(kafka, topic, group_id):
    records = [{"customer_id": f"c{i % 7}", "seq": i} for i in range(60)]
    _produce(kafka.bootstrap_servers, topic, records)

    first = _consumer(kafka.bootstrap_servers, topic, group_id)
    seen_first = _poll_until(first, 25)[:25]
    # Commit exactly what was processed, per partition: the next offset after the last one seen.
    offsets: dict[TopicPartition, int] = {}
    for msg in seen_first:
        tp = TopicPartition(msg.topic, msg.partition)
        offsets[tp] = max(offsets.get(tp, 0), msg.offset + 1)
    first.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
    first.close()

    second = _consumer(kafka.bootstrap_servers, topic, group_id)
    seen_second = _poll_until(second, len(records) - len(seen_first))
    second.close()

    # Keys keep each customer on one partition.
    partitions_by_key: dict[str, set[int]] = {}
    for msg in seen_first + seen_second:
        partitions_by_key.setdefault(msg.key, set()).add(msg.partition)
    assert all(len(p) == 1 for p in partitions_by_key.values())

    # Resumed after the committed offsets: nothing re-read, nothing missed.
    first_ids = {(m.partition, m.offset) for m in seen_first}
    second_ids = {(m.partition, m.offset) for m in seen_second}
    assert not first_ids & second_ids
    for msg in seen_second:
        assert msg.offset >= offsets.get(TopicPartition(msg.topic, msg.partition), 0)
    assert sorted(json.loads(m.value)["seq"] for m in seen_first + seen_second) == list(range(60))


def test_transactional_producer_read_committed(kafka, topic, group_id, unique_name):
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, transactional_id=f"tx-{unique_name}")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(topic, key=b"a", value=b"aborted")
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send(topic, key=b"a", value=b"committed")
    producer.commit_transaction()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=group_id,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got = _poll_until(consumer, 1)
    consumer.close()
    assert [m.value for m in got] == [b"committed"]
