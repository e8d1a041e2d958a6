"""The model-change sweep through the broker: SIGKILL mid-sweep under exactly-once changes nothing.

A scorer with model A consumes the first part of the stream and exits; the same group is started
with model B (a retrain) while more events arrive. Its first batch re-scores every stored customer
with B (``reason: model_change``) before B's events. The run is SIGKILLed the moment it has logged
a partition's sweep (the batch's records are produced and its transaction committed only after the
sweeps of all partitions, so the kill usually lands inside the sweep), then restarted: whenever the
kill landed, the read_committed output must equal an uninterrupted run (A over the first part, then
B's sweep and the rest) record for record, with every customer swept exactly once.
"""

from __future__ import annotations

import signal
import subprocess

import pytest
from scorer_fixtures import updates_by_customer
from scorer_process import read, repeated_effects, replayed, scorer_command

from consumer.backends import ClientConfig, make_backend
from consumer.model_source import ModelSource
from consumer.processor import Processor, Topics
from consumer.state_store import StateStore

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def reference(first_model, second_model, first_records, second_records) -> list[tuple[bytes, bytes | None]]:
    """The uninterrupted run: ``first_model`` over the first records, then the swap, then the rest."""
    store = StateStore()
    for partition in range(3):
        store.assign(partition)
    live = [first_model]
    processor = Processor(store, lambda: live[0](), Topics())
    outputs = []
    for batch, model in ((first_records, first_model), (second_records, second_model)):
        live[0] = model
        result = processor.process(batch)
        processor.commit_entries(result)
        outputs += [(o.key, o.value) for o in result.outputs if o.topic == Topics().output]
    return outputs


def test_sigkill_mid_sweep_under_exactly_once_gives_an_uninterrupted_runs_output(
    kafka, unique_name, model_dir, retrained_model_dir, stream
):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    half = len(stream) // 2
    topics = replayed(backend, unique_name, stream[:half])
    first = scorer_command(kafka.bootstrap_servers, model_dir, topics, unique_name, True)
    assert subprocess.run(first, capture_output=True, timeout=300).returncode == 0
    first_records = read(backend, topics.input)

    with backend.producer() as producer:
        for key, value in stream[half:]:
            producer.produce(topics.input, key, value)
        producer.flush()
    second = scorer_command(kafka.bootstrap_servers, retrained_model_dir, topics, unique_name, True)
    process = subprocess.Popen(second, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:  # the sweep is logged before its batch is produced and committed
            if "re-scored" in line:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run was killed mid-sweep, not finished"
    finished = subprocess.run(second, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]

    seen = {(r.partition, r.offset) for r in first_records}
    second_records = [r for r in read(backend, topics.input) if (r.partition, r.offset) not in seen]
    expected = reference(
        ModelSource(model_dir), ModelSource(retrained_model_dir), first_records, second_records
    )
    outputs = [(r.key, r.value) for r in read(backend, topics.output)]
    assert len(outputs) == len(expected)
    assert updates_by_customer(outputs) == updates_by_customer(expected)
    swept = [body for bodies in updates_by_customer(outputs).values() for body in bodies if body]
    swept = [body for body in swept if body["reason"] == "model_change"]
    assert len(swept) == len({b["customer_id"] for b in swept}) > 0, "every stored customer swept once"
    assert not repeated_effects(v for _, v in outputs)
