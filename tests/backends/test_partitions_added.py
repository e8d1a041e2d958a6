"""A member that polls with short timeouts takes over partitions added to its topic.

kafka-python 3.0.12 drops the join that such a metadata change starts when ``poll``'s timer runs out
mid-join: without the backend's workaround the member keeps only its old partitions for good. This
test failed that way every time with 1 ms polls (and the fault suite's scorer once sat without any
partition for a whole test, the first join having happened before the topic's metadata arrived).
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions

from consumer.backends import ClientConfig, TopicPartition, TopicSpec, make_backend

pytestmark = pytest.mark.kafka

# Each client's name for "refresh topic metadata this often": the added partitions are seen within 1 s.
FAST_METADATA_REFRESH = {
    "kafka-python": {"metadata_max_age_ms": 1000},
    "confluent": {"topic.metadata.refresh.interval.ms": 1000},
}


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
@pytest.mark.parametrize("poll_timeout_s", [0.001, 0.005])
def test_partitions_added_while_polling_briefly_are_taken_over(
    kafka, unique_name, group_id, client, poll_timeout_s
):
    backend = make_backend(client, ClientConfig(kafka.bootstrap_servers))
    topic = f"t-{unique_name}"
    backend.ensure_topics([TopicSpec(topic, 1)])
    consumer = backend.consumer(group_id, **FAST_METADATA_REFRESH[client])
    try:
        consumer.subscribe([topic])
        _poll_until(consumer, lambda: consumer.assignment() == [TopicPartition(topic, 0)], poll_timeout_s)

        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        try:
            admin.create_partitions({topic: NewPartitions(3)})
        finally:
            admin.close()
        with backend.producer() as producer:
            for partition in range(3):
                producer.produce(topic, b"k", f"to-{partition}".encode(), partition=partition)
            producer.flush()

        values: set[bytes] = set()
        _poll_until(consumer, lambda: len(values) == 3, poll_timeout_s, values)
        assert values == {b"to-0", b"to-1", b"to-2"}
        assert consumer.assignment() == [TopicPartition(topic, p) for p in range(3)]
    finally:
        consumer.close()


def _poll_until(consumer, condition, poll_timeout_s: float, values: set | None = None, timeout_s: float = 30):
    """Poll with the test's (short) timeout until ``condition()``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {timeout_s}s; assignment {consumer.assignment()}"
        for record in consumer.poll(max_records=100, timeout_s=poll_timeout_s):
            if values is not None:
                values.add(record.value)
