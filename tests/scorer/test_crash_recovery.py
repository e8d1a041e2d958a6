"""SIGKILL the scorer process mid-stream and restart it (exactly-once loses and repeats nothing);
SIGTERM makes it finish its batch, commit and exit 0."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from scorer_fixtures import final_updates, reference_run
from scorer_process import committed_total, read, repeated_effects, scorer_command
from waiting import wait_for

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.processor import Topics
from consumer.state_store import Entry

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def crash_then_finish(bootstrap, command, group, kill_after: list[int], total: int) -> list[int]:
    """Start the scorer, SIGKILL it once the group committed past each mark, then let it finish.

    Returns what was committed at each kill, to show the kills landed mid-stream.
    """
    at_kill = []
    for mark in kill_after:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(
                lambda m=mark: committed_total(bootstrap, group) >= m, timeout=90, what=f"{mark} committed"
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        at_kill.append(committed_total(bootstrap, group))
    finished = subprocess.run(command, capture_output=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    return at_kill


def test_sigkill_mid_stream_with_default_group_membership(
    kafka, unique_name, group_id, model_dir, model_source, stream
):
    """Exactly-once with the default (dynamic) membership: each restart waits out the session timeout.

    tests/faults/test_sigkill.py kills ten times in both modes with static membership.
    """
    exactly_once = True
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = Topics(f"{unique_name}-in", f"{unique_name}-out", f"{unique_name}-dlq", f"{unique_name}-state")
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    with backend.producer() as producer:
        for key, value in stream:
            producer.produce(topics.input, key, value)
        producer.flush()

    command = scorer_command(kafka.bootstrap_servers, model_dir, topics, group_id, exactly_once)
    marks = [len(stream) // 6, len(stream) // 3, len(stream) // 2]
    at_kill = crash_then_finish(kafka.bootstrap_servers, command, group_id, marks, len(stream))
    assert all(done < len(stream) for done in at_kill), f"a kill came after the end: {at_kill}"

    expected_updates, expected_states = reference_run(model_source, stream)
    outputs = read(backend, topics.output)
    assert final_updates([r.value for r in outputs]) == expected_updates, "nothing lost"
    changelog = {r.key.decode(): Entry.from_bytes(r.value).state for r in read(backend, topics.changelog)}
    assert changelog == expected_states, "state equals an uninterrupted run"
    assert len(read(backend, topics.dead_letter)) == len([k for k, _ in stream if k == b"bad"])
    repeated = repeated_effects(r.value for r in outputs)
    assert not repeated, f"read_committed saw {len(repeated)} events' effects twice"


def test_sigterm_finishes_the_batch_commits_and_exits_zero(kafka, unique_name, group_id, model_dir, stream):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = Topics(f"{unique_name}-in", f"{unique_name}-out", f"{unique_name}-dlq", f"{unique_name}-state")
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    with backend.producer() as producer:
        for key, value in stream:
            producer.produce(topics.input, key, value)
        producer.flush()
    command = scorer_command(kafka.bootstrap_servers, model_dir, topics, group_id, exactly_once=False)
    command.remove("--exit-when-idle")  # it would stop on its own; this one runs until told to
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: committed_total(kafka.bootstrap_servers, group_id) > 0, timeout=90, what="a commit")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    summary = json.loads(stdout.decode().strip().splitlines()[-1])
    assert summary["events"] > 0
    assert summary["events"] == committed_total(kafka.bootstrap_servers, group_id), (
        "all it read, it committed"
    )
