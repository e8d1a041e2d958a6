"""SIGKILL the scorer process mid-stream and restart it (exactly-once loses and repeats nothing);
SIGTERM makes it finish its batch, commit and exit 0."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from scorer_fixtures import final_updates, reference_run, same_records
from scorer_process import (
    changelog_states,
    committed_total,
    kill_repeatedly,
    read,
    repeated_effects,
    replayed,
    scorer_command,
)
from waiting import wait_for

from consumer.backends import ClientConfig, make_backend

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_sigkill_mid_stream_with_default_group_membership(
    kafka, unique_name, group_id, model_dir, model_source, stream
):
    """Exactly-once with the default (dynamic) membership: each restart waits out the session timeout.

    tests/faults/test_sigkill.py kills ten times in both modes with static membership.
    """
    exactly_once = True
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = replayed(backend, unique_name, stream)
    command = scorer_command(kafka.bootstrap_servers, model_dir, topics, group_id, exactly_once)
    marks = iter([len(stream) // 6, len(stream) // 3, len(stream) // 2])
    at_kill = kill_repeatedly(command, kafka.bootstrap_servers, group_id, lambda _: next(marks), times=3)
    assert all(done < len(stream) for done in at_kill), f"a kill came after the end: {at_kill}"
    finished = subprocess.run(command, capture_output=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]

    expected_updates, expected_states = reference_run(model_source, read(backend, topics.input))
    outputs = read(backend, topics.output)
    assert final_updates([r.value for r in outputs]) == expected_updates, "nothing lost"
    assert same_records(model_source, backend, topics), "read_committed output = an uninterrupted run's"
    changelog = changelog_states(read(backend, topics.changelog))
    assert changelog == expected_states, "state equals an uninterrupted run"
    assert len(read(backend, topics.dead_letter)) == len([k for k, _ in stream if k == b"bad"])
    repeated = repeated_effects(r.value for r in outputs)
    assert not repeated, f"read_committed saw {len(repeated)} events' effects twice"


def test_sigterm_finishes_the_batch_commits_and_exits_zero(kafka, unique_name, group_id, model_dir, stream):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = replayed(backend, unique_name, stream)
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
