"""A bad state changelog or an input topic recreated under it, with the real `segmenter consume`.

A bad last value is quarantined and the scorer runs on (``--strict-restore``: exit 2 within seconds,
never a hung process); a later tombstone repairs it. State whose applied offsets are beyond the
recreated input's end refuses the start naming the partition and ``--reset-state``, which recovers.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from scorer_process import scorer_command, topics_named
from waiting import wait_for

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.runner import RunnerSettings, ScorerRunner
from model.events import Event, encode_event

pytestmark = [pytest.mark.faults, pytest.mark.kafka]

CLIENTS = ["kafka-python", "confluent"]
STARTS_WITHIN_S = 60  # a start that restores and consumes a few events
FAILS_WITHIN_S = 30  # a refused start: Python and the model load take most of it on a busy machine
BAD_KEY = b"\xff\xfebad"


def _events(customer: str, count: int) -> list[tuple[bytes, bytes]]:
    day, start = 86_400_000, 1_704_067_200_000
    return [
        (
            customer.encode(),
            encode_event(Event(f"{customer}-{n}", customer, "purchase", start + n * day, 9.0)),
        )
        for n in range(count)
    ]


def _produce(backend, topic: str, partition: int, pairs) -> None:
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topic, key, value, partition=partition)
        producer.flush()


@pytest.fixture
def bad_changelog(kafka, unique_name):
    """Topics whose changelog partition 0 holds garbage under a text key and a non-UTF-8 key."""
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = topics_named(unique_name)
    backend.ensure_topics(
        [TopicSpec(topics.input, 3), TopicSpec(topics.changelog, 3, config={"cleanup.policy": "compact"})]
    )
    _produce(backend, topics.changelog, 0, [(b"cGarbage", b"garbage"), (BAD_KEY, b"garbage")])
    return backend, topics


def _consume(kafka, model_dir, topics, group, timeout_s, *extra) -> subprocess.CompletedProcess:
    command = scorer_command(kafka.bootstrap_servers, model_dir, topics, group, False, *extra)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_changelog_record_is_quarantined_and_the_scorer_runs_on(
    kafka, model_dir, bad_changelog, group_id, client
):
    backend, topics = bad_changelog
    _produce(backend, topics.input, 0, _events("cGarbage", 2))
    done = _consume(kafka, model_dir, topics, group_id, STARTS_WITHIN_S, "--client", client)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "changelog partition 0, offset 0, key 'cGarbage'" in done.stderr, done.stderr[-3000:]
    assert "changelog partition 0, offset 1, key b'\\xff\\xfebad': the key is not UTF-8" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["valid"], summary["duplicates"]) == (2, 0), "the customer started fresh"


@pytest.mark.parametrize("client", CLIENTS)
def test_strict_restore_exits_2_within_seconds_naming_partition_offset_and_key(
    kafka, model_dir, bad_changelog, group_id, client
):
    _, topics = bad_changelog
    done = _consume(
        kafka, model_dir, topics, group_id, FAILS_WITHIN_S, "--client", client, "--strict-restore"
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "changelog partition 0, offset 0, key 'cGarbage'" in done.stderr, done.stderr[-3000:]
    assert "--strict-restore refuses to start" in done.stderr
    assert "Traceback" not in done.stderr, "one clear message, not a stack trace"


def test_a_later_tombstone_repairs_a_bad_record(kafka, model_dir, bad_changelog, group_id):
    backend, topics = bad_changelog
    _produce(backend, topics.changelog, 0, [(b"cGarbage", None), (BAD_KEY, None)])
    done = _consume(kafka, model_dir, topics, group_id, STARTS_WITHIN_S, "--strict-restore")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "quarantined" not in done.stderr


def test_state_ahead_of_a_recreated_input_refuses_and_reset_state_recovers(
    kafka, model_dir, model_source, unique_name, group_id
):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    _produce(backend, topics.input, 1, _events("c1", 20))
    settings = RunnerSettings(group_id=group_id, topics=topics, exit_when_idle=True)
    assert ScorerRunner(backend, settings, model_source).run().valid == 20

    # The input topic is deleted and recreated (offsets restart at 0); the changelog is kept.
    admin = kafka.admin()
    try:
        admin.delete_topics([topics.input])
    finally:
        admin.close()
    wait_for(lambda: kafka.create_topic(topics.input, 3), what=f"{topics.input} deleted and recreated")
    _produce(backend, topics.input, 1, _events("c1", 25)[20:])

    refused = _consume(kafka, model_dir, topics, group_id, FAILS_WITHIN_S)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"input {topics.input}[1] ends at offset 5" in refused.stderr, refused.stderr[-3000:]
    assert "--reset-state" in refused.stderr
    assert "Traceback" not in refused.stderr

    reset = _consume(kafka, model_dir, topics, group_id, STARTS_WITHIN_S, "--reset-state")
    assert reset.returncode == 0, reset.stderr[-3000:]
    summary = json.loads(reset.stdout.strip().splitlines()[-1])
    assert (summary["valid"], summary["duplicates"]) == (5, 0), "no event dropped as a duplicate"
