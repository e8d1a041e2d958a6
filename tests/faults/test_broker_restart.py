"""Stop and restart the broker while the scorer works through a backlog: it recovers on its own.

The scorer runs in a thread against this suite's private broker. The broker is stopped (data kept)
once the scorer has committed part of the backlog, started again, and the rest of the stream is
produced afterwards; the scorer is never restarted. At the end the state and the compacted output
equal an uninterrupted run and every dead letter is there.
"""

from __future__ import annotations

import threading

import pytest
from scorer_fixtures import final_updates, reference_run
from scorer_process import changelog_states, committed_total, read, repeated_effects, topics_named
from waiting import wait_for

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.runner import RunnerSettings, ScorerRunner

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]


def produce(backend, topic: str, pairs) -> None:
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topic, key, value)
        producer.flush()


@pytest.mark.parametrize(
    ("client", "exactly_once"),
    [("kafka-python", False), ("confluent", False), ("kafka-python", True)],
    ids=["kafka-python", "confluent", "kafka-python-exactly-once"],
)
def test_scorer_rides_out_a_broker_restart(
    own_broker, unique_name, group_id, model_source, stream, client, exactly_once
):
    bootstrap = own_broker.bootstrap_servers
    backend = make_backend(client, ClientConfig(bootstrap))
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    split = 2 * len(stream) // 3
    produce(backend, topics.input, stream[:split])

    settings = RunnerSettings(
        group_id=group_id, topics=topics, batch_size=5, poll_timeout_s=0.2, exactly_once=exactly_once
    )
    runner = ScorerRunner(backend, settings, model_source)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(stop)
        except BaseException as exc:  # reported by the assertions below, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="scorer")
    thread.start()
    try:
        wait_for(lambda: committed_total(bootstrap, group_id) >= len(stream) // 6, what="a first part scored")
        own_broker.stop_keeping_data()
        own_broker.resume()
        at_restart = runner.summary.events
        produce(backend, topics.input, stream[split:])
        wait_for(
            lambda: failure or committed_total(bootstrap, group_id) >= len(stream),
            timeout=120,
            what="the whole stream committed after the restart",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failure, f"the scorer died: {failure[0]!r}"
    assert at_restart < split, "the broker went down while the backlog was still being scored"

    expected_updates, expected_states = reference_run(model_source, read(backend, topics.input))
    assert changelog_states(read(backend, topics.changelog)) == expected_states
    outputs = [r.value for r in read(backend, topics.output)]
    assert final_updates(outputs) == expected_updates
    if exactly_once:
        assert not repeated_effects(outputs), "read_committed shows an event's effect twice"
    dead = {r.value for r in read(backend, topics.dead_letter)}
    assert dead == {value for key, value in stream if key == b"bad"}
