"""SIGKILL the scorer process at ten seeded random points of one replay, restarting it each time.

Exactly-once: the ``read_committed`` output (compacted view), the dead letters and the final changelog
state equal an uninterrupted run, and no event's effect is visible twice. At-least-once: nothing is
lost, and an event's update repeats only as an identical re-emit.

The scorer joins as a static group member (``--static-membership``), so each restart takes the killed
instance's partitions back at once instead of waiting out its session timeout.
"""

from __future__ import annotations

import random
import subprocess

import pytest
from scorer_fixtures import final_updates, reference_run, same_records
from scorer_process import (
    changelog_states,
    committed_total,
    differing_reemits,
    kill_repeatedly,
    read,
    repeated_effects,
    replayed,
    scorer_command,
)

from consumer.backends import ClientConfig, make_backend

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]

KILLS = 10
SEED = 20240501


def random_marks(total: int, seed: int):
    """Each run must commit between 1 and ``total / (2 * KILLS)`` records beyond the last run's before
    it is killed, so the kills are spread over the first part of the stream and never wait for the end.
    """
    rng = random.Random(seed)
    return lambda last: last + rng.randint(1, max(total // (2 * KILLS), 1))


@pytest.mark.parametrize("exactly_once", [True, False], ids=["exactly-once", "at-least-once"])
def test_ten_sigkills_lose_nothing(
    kafka, unique_name, group_id, model_dir, model_source, stream, exactly_once
):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = replayed(backend, unique_name, stream)
    command = scorer_command(
        kafka.bootstrap_servers, model_dir, topics, group_id, exactly_once,
        # Small batches keep the scorer from finishing between two looks at the committed offsets.
        "--batch-size", "10" if exactly_once else "2",
        "--static-membership", "--instance-id", f"{unique_name}-0",
    )  # fmt: skip

    marks = random_marks(len(stream), SEED)
    at_kill = kill_repeatedly(command, kafka.bootstrap_servers, group_id, marks, times=KILLS)
    print("committed at the kills:", at_kill)  # noqa: T201 - shown with -s when tuning the schedule
    assert at_kill[-1] < len(stream), f"every kill must land mid-stream, committed at kills: {at_kill}"
    finished = subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    assert committed_total(kafka.bootstrap_servers, group_id) == len(stream)

    expected_updates, expected_states = reference_run(model_source, read(backend, topics.input))
    outputs = [r.value for r in read(backend, topics.output)]
    assert final_updates(outputs) == expected_updates, "the compacted output equals an uninterrupted run"
    assert changelog_states(read(backend, topics.changelog)) == expected_states, "so does the final state"
    bad = sorted(value for key, value in stream if key == b"bad")
    dead = sorted(r.value for r in read(backend, topics.dead_letter))
    repeated = repeated_effects(outputs)
    if exactly_once:
        assert same_records(model_source, backend, topics), "read_committed output = an uninterrupted run's"
        assert dead == bad, "each dead letter exactly once"
        assert not repeated, f"read_committed shows {len(repeated)} events' effects twice"
    else:
        assert sorted(set(dead)) == sorted(set(bad)), "every dead letter at least once"
        assert not differing_reemits(repeated), "a repeated update differs in more than scored_at"
