"""Transactions, offsets inside transactions, and reading a changelog to its end, on every backend."""

from __future__ import annotations

import pytest

from consumer.backends import ProducerFencedError, TopicPartition


def _transactional(clients, unique_name, suffix=""):
    producer = clients.producer(transactional_id=f"tx-{unique_name}{suffix}")
    producer.init_transactions()
    return producer


def _values(records):
    return sorted(r.value for r in records)


def test_read_committed_sees_committed_never_aborted(clients, new_topic, group_id, unique_name):
    topic = new_topic(partitions=2)
    producer = _transactional(clients, unique_name)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, f"k{i}".encode(), b"aborted-%d" % i)
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, f"k{i}".encode(), b"committed-%d" % i)
    producer.commit_transaction()

    committed_reader = clients.consumer(f"{group_id}-rc")
    committed_reader.subscribe([topic])
    assert _values(clients.poll_until(committed_reader, 5)) == [b"committed-%d" % i for i in range(5)]
    assert committed_reader.poll(max_records=10, timeout_s=1.0) == []

    everything_reader = clients.consumer(f"{group_id}-ru", isolation_level="read_uncommitted")
    everything_reader.subscribe([topic])
    assert len(clients.poll_until(everything_reader, 10)) == 10


@pytest.mark.parametrize("outcome", ["abort", "commit"])
def test_offsets_commit_only_with_the_transaction(clients, new_topic, group_id, unique_name, outcome):
    source, sink = new_topic(partitions=2, suffix="-in"), new_topic(partitions=2, suffix="-out")
    plain = clients.producer()
    for i in range(8):
        plain.produce(source, f"k{i}".encode(), b"in-%d" % i)
    plain.flush()
    consumer = clients.consumer(group_id)
    consumer.subscribe([source])
    batch = clients.poll_until(consumer, 8)
    offsets = {r.topic_partition: r.next_offset for r in sorted(batch, key=lambda r: r.offset)}

    producer = _transactional(clients, unique_name)
    producer.begin_transaction()
    for r in batch:
        producer.produce(sink, r.key, b"out-" + r.value)
    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
    getattr(producer, f"{outcome}_transaction")()

    expected = offsets if outcome == "commit" else dict.fromkeys(offsets)
    assert consumer.committed(list(offsets)) == expected
    reader = clients.consumer(f"{group_id}-reader")
    reader.subscribe([sink])
    if outcome == "commit":
        assert _values(clients.poll_until(reader, 8)) == sorted(b"out-" + r.value for r in batch)
    clients.poll_while([reader], lambda: len(reader.assignment()) == 2)
    assert reader.poll(max_records=10, timeout_s=1.0) == []


def test_end_offsets_stop_at_an_open_transaction_for_read_committed(
    clients, new_topic, group_id, unique_name
):
    topic = new_topic(partitions=1)
    tp = TopicPartition(topic, 0)
    plain = clients.producer()
    for i in range(3):
        plain.produce(topic, b"k", b"plain-%d" % i)
    plain.flush()
    producer = _transactional(clients, unique_name)
    producer.begin_transaction()
    producer.produce(topic, b"k", b"pending")
    producer.flush()

    committed_view = clients.consumer(group_id)
    uncommitted_view = clients.consumer(group_id, isolation_level="read_uncommitted")
    assert committed_view.end_offsets([tp]) == {tp: 3}
    assert uncommitted_view.end_offsets([tp]) == {tp: 4}
    producer.commit_transaction()
    committed_view.subscribe([topic])
    assert clients.poll_until(committed_view, 4)[-1].value == b"pending"
    assert committed_view.end_offsets([tp]) == {tp: 5}, "the record and its commit marker are stable"


def test_read_partitions_reads_a_compacted_changelog_to_its_end(backend, clients, new_topic, unique_name):
    topic = new_topic(partitions=3, **{"cleanup.policy": "compact"})
    producer = _transactional(clients, unique_name)
    for round_ in range(3):
        producer.begin_transaction()
        for customer in range(4):
            producer.produce(
                topic, b"c%d" % customer, b"state-%d-%d" % (customer, round_), partition=customer % 2
            )
        if round_ == 1:
            producer.abort_transaction()
        else:
            producer.commit_transaction()

    partitions = [TopicPartition(topic, p) for p in range(3)]
    restored = list(backend.read_partitions(partitions, timeout_s=30))
    assert sorted(r.value for r in restored) == sorted(
        b"state-%d-%d" % (c, r) for c in range(4) for r in (0, 2)
    )
    assert {r.partition for r in restored} == {0, 1}, "partition 2 is empty and still finishes"
    latest = {r.key: r.value for r in sorted(restored, key=lambda r: r.offset)}
    assert latest == {b"c%d" % c: b"state-%d-2" % c for c in range(4)}
    assert list(backend.read_partitions([TopicPartition(topic, 2)], timeout_s=30)) == []


def test_a_newer_producer_fences_the_older_one(clients, new_topic, unique_name):
    topic = new_topic(partitions=1)
    old = _transactional(clients, unique_name)
    old.begin_transaction()
    old.produce(topic, b"k", b"from-old")
    _transactional(clients, unique_name)
    with pytest.raises(ProducerFencedError):
        old.commit_transaction()
