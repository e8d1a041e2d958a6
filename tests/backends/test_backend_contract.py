"""The consumer/producer contract every backend honours: records, commits, groups and rebalances.

The rule for ``on_revoke`` (eager rebalancing, as the Java client defines it): when ``on_revoke``
runs, the member still owns the partitions, so a synchronous ``commit`` inside it succeeds (a member
that already lost them, say after its session timed out, gets ``CommitFailedError``). Once it has
returned the partitions are no longer this member's: ``assignment()`` leaves them out until the next
``on_assign``, and they are never revoked twice (not even by a ``close`` during the rebalance). So two
members never both list a partition, however short their polls. kafka-python 3.0.12 needed two
workarounds for this (``consumer/backends/kafka_python/group.py`` and the revocation bookkeeping in
``kafka_python/consumer.py``); ``test_short_polls_never_share_a_partition`` failed 4 runs in 6 without them.
The scorer itself does not commit in ``on_revoke`` (every batch is committed before the next poll),
but other callers of the backends may, and the contract promises it.
"""

from __future__ import annotations

import time
from collections import defaultdict

from consumer.backends import Record, TopicPartition


def _produce_keyed(producer, topic: str, count: int, keys: int = 6) -> None:
    for i in range(count):
        headers = (("seq", str(i).encode()), ("source", b"contract"))
        producer.produce(topic, f"k{i % keys}".encode(), f"v{i}".encode(), headers)
    producer.flush()


def _next_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for r in records:
        offsets[r.topic_partition] = max(offsets.get(r.topic_partition, 0), r.next_offset)
    return offsets


def test_keyed_records_keep_key_value_headers_and_order(clients, new_topic, group_id):
    topic = new_topic(partitions=3)
    _produce_keyed(clients.producer(), topic, 60)
    consumer = clients.consumer(group_id)
    consumer.subscribe([topic])
    got = clients.poll_until(consumer, 60)

    by_seq = {int(dict(r.headers)["seq"]): r for r in got}
    assert sorted(by_seq) == list(range(60))
    for seq, r in by_seq.items():
        assert (r.key, r.value, r.topic) == (f"k{seq % 6}".encode(), f"v{seq}".encode(), topic)
        assert dict(r.headers)["source"] == b"contract"
        assert r.timestamp_ms > 0
    partitions_of_key = defaultdict(set)
    for r in got:
        partitions_of_key[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    per_partition = defaultdict(list)
    for r in got:
        per_partition[r.partition].append((r.offset, int(dict(r.headers)["seq"])))
    for pairs in per_partition.values():
        assert pairs == sorted(pairs), "offsets and production order agree within a partition"
        assert [seq for _, seq in pairs] == sorted(seq for _, seq in pairs)


def test_explicit_partition_is_honoured(clients, new_topic, group_id):
    topic = new_topic(partitions=3)
    producer = clients.producer()
    for i in range(9):
        producer.produce(topic, f"any-{i}".encode(), b"x", partition=2)
    producer.flush()
    consumer = clients.consumer(group_id)
    consumer.subscribe([topic])
    assert {r.partition for r in clients.poll_until(consumer, 9)} == {2}
    assert consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])[TopicPartition(topic, 2)] == 9


def test_new_member_resumes_after_the_commit(clients, new_topic, group_id):
    topic = new_topic(partitions=3)
    _produce_keyed(clients.producer(), topic, 60)
    first = clients.consumer(group_id)
    first.subscribe([topic])
    seen_first = clients.poll_until(first, 25, max_records=25)
    offsets = _next_offsets(seen_first)
    first.commit(offsets)
    assert first.committed(list(offsets)) == offsets
    clients.close(first)

    second = clients.consumer(group_id)
    second.subscribe([topic])
    seen_second = clients.poll_until(second, 60 - len(seen_first))
    first_ids = {(r.partition, r.offset) for r in seen_first}
    second_ids = {(r.partition, r.offset) for r in seen_second}
    assert not first_ids & second_ids
    assert len(first_ids | second_ids) == 60
    assert second.poll(max_records=10, timeout_s=0.5) == []


def test_end_offsets_count_records_per_partition(clients, new_topic, group_id):
    topic = new_topic(partitions=3)
    _produce_keyed(clients.producer(), topic, 30)
    consumer = clients.consumer(group_id)
    consumer.subscribe([topic])
    got = clients.poll_until(consumer, 30)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    per_partition = {tp: sum(1 for r in got if r.topic_partition == tp) for tp in partitions}
    assert consumer.end_offsets(partitions) == per_partition
    assert consumer.committed(partitions) == dict.fromkeys(partitions)


def test_two_members_split_partitions_and_hand_them_back(clients, new_topic, group_id):
    topic = new_topic(partitions=3)
    _produce_keyed(clients.producer(), topic, 30)
    events: dict[str, list] = defaultdict(list)
    processed: dict[str, list[Record]] = defaultdict(list)
    first, second = clients.consumer(group_id), clients.consumer(group_id)

    def callbacks(name, consumer):
        def on_revoke(partitions):
            events[name].append(("revoke", sorted(partitions)))
            done = {tp: o for tp, o in _next_offsets(processed[name]).items() if tp in partitions}
            consumer.commit(done)  # the processor's flush-and-commit before losing partitions

        return {"on_assign": lambda ps: events[name].append(("assign", sorted(ps))), "on_revoke": on_revoke}

    first.subscribe([topic], **callbacks("first", first))
    processed["first"] += clients.poll_while([first], lambda: len(first.assignment()) == 3)
    processed["first"] += clients.poll_until(first, 30 - len(processed["first"]))

    second.subscribe([topic], **callbacks("second", second))
    during = clients.poll_while([first, second], lambda: first.assignment() and second.assignment())
    assert during == [], "everything was committed by the first member's on_revoke"
    assert sorted(first.assignment() + second.assignment()) == [TopicPartition(topic, p) for p in range(3)]
    assert ("revoke", [TopicPartition(topic, p) for p in range(3)]) in events["first"]
    assert events["first"][-1] == ("assign", sorted(first.assignment()))
    assert events["second"][-1] == ("assign", sorted(second.assignment()))
    assert all(partitions for _, partitions in events["first"] + events["second"]), "no empty callbacks"

    held_by_second = second.assignment()
    clients.close(second)
    assert events["second"][-1] == ("revoke", held_by_second)
    clients.poll_while([first], lambda: len(first.assignment()) == 3)
    assert events["first"][-1] == ("assign", [TopicPartition(topic, p) for p in range(3)])


def test_short_polls_never_share_a_partition(clients, new_topic, group_id):
    """A member polled with 2 ms timeouts often sees its join finish between polls (the flake's cause)."""
    topic = new_topic(partitions=3)
    _produce_keyed(clients.producer(), topic, 30)
    commits: list[tuple[str, list[TopicPartition]]] = []
    first, second = clients.consumer(group_id), clients.consumer(group_id)

    def committing(name, consumer):
        def on_revoke(partitions):
            consumer.commit(dict.fromkeys(partitions, 0))  # raises if the member no longer owns them
            commits.append((name, partitions))

        return on_revoke

    first.subscribe([topic], on_revoke=committing("first", first))
    clients.poll_while([first], lambda: len(first.assignment()) == 3)
    second.subscribe([topic], on_revoke=committing("second", second))
    shared: list[set] = []

    def settled() -> bool:
        mine, theirs = set(first.assignment()), set(second.assignment())
        if mine & theirs:
            shared.append(mine & theirs)
        return bool(mine and theirs) and len(mine | theirs) == 3

    deadline = time.monotonic() + 60
    while not settled():
        assert time.monotonic() < deadline, "the two members never settled on a split"
        first.poll(timeout_s=0.002)
        second.poll(timeout_s=0.2)
    assert shared == [], "a partition was listed by both members"
    held_by_first = first.assignment()
    clients.close(first)
    clients.poll_while([second], lambda: len(second.assignment()) == 3)
    assert ("first", [TopicPartition(topic, p) for p in range(3)]) in commits
    assert commits.count(("first", held_by_first)) == 1, "revoked once on close, after the rebalance"


def test_seek_fetches_a_partition_again_from_an_earlier_offset(clients, new_topic, group_id):
    topic = new_topic(partitions=1)
    _produce_keyed(clients.producer(), topic, 10)
    consumer = clients.consumer(group_id)
    consumer.subscribe([topic])
    first = clients.poll_until(consumer, 10)
    assert [r.offset for r in first] == list(range(10))
    consumer.seek({TopicPartition(topic, 0): 3})
    again = clients.poll_until(consumer, 7)
    assert [(r.offset, r.value) for r in again] == [(r.offset, r.value) for r in first[3:]]


def test_partition_counts_of_existing_and_missing_topics(backend, new_topic):
    three, one = new_topic(partitions=3), new_topic(partitions=1, suffix="-one")
    assert backend.partition_counts([three, one, f"{three}-missing"]) == {
        three: 3,
        one: 1,
        f"{three}-missing": 0,
    }
