"""`segmenter replay --dataset file:PATH` keys every record by customer, so Kafka and file mode agree."""

from __future__ import annotations

import pytest
from scorer_fixtures import final_updates
from scorer_process import read, topics_named

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.file_mode import run_files
from consumer.replay import dataset_records, replay
from consumer.runner import RunnerSettings, ScorerRunner
from model.events import encode_event
from model.synthetic import synthetic_events


@pytest.mark.kafka
def test_a_file_replayed_through_three_partitions_scores_like_file_mode(
    kafka, model_source, tmp_path, unique_name
):
    events = sorted(synthetic_events(120, seed=9), key=lambda e: (e.ts_ms, e.event_id))
    history = tmp_path / "events.jsonl"
    history.write_bytes(b"".join(encode_event(e) + b"\n" for e in events) + b"not json\n")
    pairs = list(dataset_records(f"file:{history}"))
    assert all(key == e.customer_id.encode() for (key, _), e in zip(pairs, events, strict=False))
    assert pairs[-1][0] is None, "a line with no customer_id goes without a key"

    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    with backend.producer() as producer:
        assert replay(producer, topics.input, iter(pairs)) == len(pairs)
    runner = ScorerRunner(
        backend, RunnerSettings(group_id=f"g-{unique_name}", topics=topics, exit_when_idle=True), model_source
    )
    runner.run()
    through_kafka = final_updates([r.value for r in read(backend, topics.output)])

    sink = tmp_path / "out.jsonl"
    run_files(f"file:{history}", f"file:{sink}", model_source)
    in_file_mode = final_updates(sink.read_bytes().splitlines())
    assert len(in_file_mode) == len({e.customer_id for e in events})
    assert {c: u["segment_id"] for c, u in through_kafka.items()} == {
        c: u["segment_id"] for c, u in in_file_mode.items()
    }
    assert runner.summary.dead_letters == 1
