"""The streaming scorer through the real broker: counts, restarts, hand-over, file-mode equality."""

from __future__ import annotations

import json
import threading

import pytest
from scorer_fixtures import customer_entries, final_updates, reference_run, valid_count
from waiting import wait_for

from consumer.backends import ClientConfig, TopicPartition, TopicSpec, make_backend
from consumer.outputs import DLQ_REASON
from consumer.processor import Topics
from consumer.runner import RunnerSettings, ScorerRunner
from consumer.state_store import Entry

pytestmark = pytest.mark.kafka

CLIENTS = ["kafka-python", "confluent"]


def topics_for(name: str) -> Topics:
    return Topics(f"{name}-events", f"{name}-segments", f"{name}-dlq", f"{name}-state")


def produce(backend, topic: str, pairs) -> None:
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topic, key, value)
        producer.flush()


def read_all(backend, topic: str, partitions: int = 3):
    return list(backend.read_partitions([TopicPartition(topic, p) for p in range(partitions)]))


def run_until_idle(backend, topics: Topics, model, group: str, **settings) -> ScorerRunner:
    runner = ScorerRunner(
        backend,
        RunnerSettings(group_id=group, topics=topics, exit_when_idle=True, batch_size=300, **settings),
        model,
    )
    runner.run()
    return runner


def final_states(backend, topics: Topics) -> dict[str, bytes]:
    latest = customer_entries(read_all(backend, topics.changelog))
    return {cid: Entry.from_bytes(value).state for cid, value in latest.items()}


@pytest.fixture
def setup(kafka, unique_name):
    def build(client: str = "kafka-python"):
        backend = make_backend(client, ClientConfig(kafka.bootstrap_servers))
        topics = topics_for(unique_name)
        backend.ensure_topics([TopicSpec(topics.input, 3)])
        return backend, topics

    return build


@pytest.mark.parametrize("client", CLIENTS)
def test_every_event_is_scored_or_dead_lettered(setup, model_source, stream, group_id, client):
    backend, topics = setup(client)
    produce(backend, topics.input, stream)
    runner = run_until_idle(backend, topics, model_source, group_id)

    assert runner.summary.events == len(stream)
    assert runner.summary.valid == valid_count(stream)
    dead = read_all(backend, topics.dead_letter)
    assert len(dead) == runner.summary.dead_letters == len(stream) - valid_count(stream)
    assert all(dict(r.headers)[DLQ_REASON] for r in dead)
    assert sorted(r.value for r in dead) == sorted(v for k, v in stream if k == b"bad")

    expected_updates, expected_states = reference_run(model_source, read_all(backend, topics.input))
    assert final_updates([r.value for r in read_all(backend, topics.output)]) == expected_updates
    assert final_states(backend, topics) == expected_states


def test_restart_after_clean_stop_continues_from_the_changelog(setup, model_source, stream, group_id):
    backend, topics = setup()
    half = len(stream) // 2
    produce(backend, topics.input, stream[:half])
    first = run_until_idle(backend, topics, model_source, group_id)
    assert first.summary.events == half

    produce(backend, topics.input, stream[half:])
    second = run_until_idle(backend, topics, model_source, group_id)
    assert second.summary.events == len(stream) - half, "resumed after the committed offsets"
    assert second.summary.restored > 0, "state came back from the changelog"
    # Frequencies kept counting: the final state is that of one uninterrupted run.
    assert final_states(backend, topics) == reference_run(model_source, stream)[1]


def test_two_instances_split_partitions_and_hand_over_state(setup, model_source, stream, group_id):
    backend, topics = setup()
    third = len(stream) // 3
    produce(backend, topics.input, stream[:third])
    settings = RunnerSettings(group_id=group_id, topics=topics, batch_size=100, poll_timeout_s=0.2)
    a = ScorerRunner(backend, settings, model_source)
    b = ScorerRunner(backend, RunnerSettings(**{**vars(settings), "instance_id": "scorer-1"}), model_source)
    stop_a, stop_b = threading.Event(), threading.Event()
    thread_a = threading.Thread(target=a.run, args=(stop_a,))
    thread_a.start()
    try:
        wait_for(lambda: a.summary.events >= third, what="instance A consuming alone")
        thread_b = threading.Thread(target=b.run, args=(stop_b,))
        thread_b.start()
        wait_for(
            lambda: a.store.partitions() and b.store.partitions(), what="both instances owning partitions"
        )
        assert not set(a.store.partitions()) & set(b.store.partitions())
        produce(backend, topics.input, stream[third : 2 * third])
        wait_for(lambda: a.summary.events + b.summary.events >= 2 * third, what="both consuming")
        stop_b.set()
        thread_b.join(timeout=60)
        wait_for(lambda: len(a.store.partitions()) == 3, what="A taking B's partitions back")
        produce(backend, topics.input, stream[2 * third :])
        wait_for(lambda: a.summary.events + b.summary.events >= len(stream), timeout=90, what="the rest")
        # A counts a batch's events only after applying its state, so A's store is quiet by now.
        held_by_a = {cid: e.state for cid, e in a.store.customers()}
    finally:
        stop_a.set()
        stop_b.set()
        thread_a.join(timeout=60)
    assert b.summary.events > 0
    assert a.summary.restored > 0
    assert final_states(backend, topics) == reference_run(model_source, stream)[1]
    # A owned every customer at the end, with the state B had built for some of them.
    assert held_by_a == reference_run(model_source, stream)[1]


def test_file_mode_over_one_partitions_records_gives_that_partitions_kafka_output(
    setup, model_source, stream, group_id, tmp_path
):
    """Each partition has its own stream time, so a file of one partition's records (in offset order)
    must reproduce exactly what the Kafka run published for that partition: every update, in order,
    every field but the wall-clock ``scored_at`` and the ``source`` (a file has no topic)."""
    from consumer.file_mode import run_files

    backend, topics = setup()
    produce(backend, topics.input, stream)
    run_until_idle(backend, topics, model_source, group_id)
    inputs, outputs = read_all(backend, topics.input), read_all(backend, topics.output)
    ageing = 0
    for partition in range(3):
        records = [r for r in inputs if r.partition == partition]
        assert [r.offset for r in records] == list(range(len(records))), "line numbers are the offsets"
        source, sink = tmp_path / f"events-{partition}.jsonl", tmp_path / f"out-{partition}.jsonl"
        source.write_bytes(b"".join(r.value.replace(b"\n", b" ") + b"\n" for r in records))
        run_files(f"file:{source}", f"file:{sink}", model_source, batch_size=64)
        keys = {r.key for r in records}
        through_kafka = _without_source((r.key, r.value) for r in outputs if r.key in keys)
        in_file_mode = _without_source(
            (json.loads(line)["customer_id"].encode(), line) for line in sink.read_bytes().splitlines()
        )
        assert in_file_mode == through_kafka, f"partition {partition}"
        ageing += sum(body["reason"] == "ageing" for bodies in through_kafka.values() for body in bodies)
    assert ageing > 0, "the stream spans a year: ticks must have aged someone"


def _without_source(pairs) -> dict[bytes, list[dict]]:
    by_customer: dict[bytes, list[dict]] = {}
    for key, value in pairs:
        body = {"erased": True} if value is None else json.loads(value)
        body.pop("customer_id", None)
        body.pop("scored_at", None)
        body.pop("source", None)
        by_customer.setdefault(key, []).append(body)
    return by_customer
