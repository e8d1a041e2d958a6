"""Input and changelog must have the same partition count: a start with a mismatch is refused at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
from scorer_process import topics_named

from consumer.backends import ClientConfig, TopicSpec, make_backend
from consumer.partition_restore import NotCopartitionedError
from consumer.runner import RunnerSettings, ScorerRunner


@pytest.mark.parametrize(("input_partitions", "changelog_partitions"), [(1, 3), (3, 1)])
def test_a_changelog_with_another_partition_count_refuses_the_start(
    model_source, unique_name, input_partitions, changelog_partitions
):
    backend = make_backend("memory")
    topics = topics_named(unique_name)
    backend.ensure_topics(
        [TopicSpec(topics.input, input_partitions), TopicSpec(topics.changelog, changelog_partitions)]
    )
    runner = ScorerRunner(
        backend, RunnerSettings(group_id="g", topics=topics, exit_when_idle=True), model_source
    )
    with pytest.raises(NotCopartitionedError) as refused:
        runner.run()
    message = str(refused.value)
    assert f"has {input_partitions} partitions" in message
    assert f"has {changelog_partitions}:" in message
    assert "--changelog-topic" in message
    assert runner.summary.batches == 0


@pytest.mark.kafka
def test_segmenter_consume_says_so_in_one_line_and_exits_2(kafka, model_dir, unique_name):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3), TopicSpec(topics.changelog, 1)])
    command = [
        sys.executable, "-m", "deploy.cli", "consume", "--model-dir", str(model_dir),
        "--bootstrap-servers", kafka.bootstrap_servers, "--input-topic", topics.input,
        "--output-topic", topics.output, "--dlq-topic", topics.dead_letter,
        "--changelog-topic", topics.changelog, "--group-id", f"g-{unique_name}", "--metrics-port", "0",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "has 3 partitions" in last
    assert "has 1:" in last
    assert "Traceback" not in done.stderr
