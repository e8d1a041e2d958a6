"""The dead-letter limit: mostly invalid input (a wrong topic) stops the scorer, exit code 3."""

from __future__ import annotations

import argparse
import subprocess

import pytest
from scorer_process import committed_total, read, replayed, scorer_command

from consumer import cli
from consumer.backends import ClientConfig, TopicPartition, make_backend
from consumer.backends.memory import MemoryBroker
from consumer.dead_letter_limit import InvalidShareExceededError
from consumer.runner import RunnerSettings, ScorerRunner

# What a wrong input topic looks like to the scorer: records that are not JSON events at all.
WRONG_TOPIC = [(f"k{n}".encode(), b"<order id='%d'/>" % n) for n in range(1500)]


def _runner(model, pairs, name: str, **options) -> tuple[ScorerRunner, MemoryBroker]:
    broker = MemoryBroker()
    backend = make_backend("memory", broker=broker)
    topics = replayed(backend, name, pairs)
    chosen = RunnerSettings(
        group_id=f"g-{name}", topics=topics, batch_size=50, exit_when_idle=True, **options
    )
    return ScorerRunner(backend, chosen, model), broker


def _committed(runner: ScorerRunner, broker: MemoryBroker) -> int:
    """Records the group has committed: the sum of its next offsets over the input's partitions."""
    s = runner.settings
    return sum(broker.committed(s.group_id, TopicPartition(s.topics.input, p)) or 0 for p in range(3))


def test_a_flood_of_invalid_records_stops_the_scorer_once_its_batch_is_committed(model_source, stream):
    pairs = stream[:300] + WRONG_TOPIC
    runner, broker = _runner(model_source, pairs, "flood", max_invalid_ratio=0.5, invalid_window=200)
    with pytest.raises(InvalidShareExceededError) as stopped:
        runner.run()

    message = str(stopped.value)
    assert "were invalid (not_json" in message, message
    assert "more than --max-invalid-ratio 0.5 allows" in message, message
    summary = runner.summary
    assert summary.events < len(pairs), "it stopped instead of dead-lettering the whole flood"
    assert _committed(runner, broker) == summary.events, "the batch in hand was committed"
    letters = read(runner.backend, runner.settings.topics.dead_letter)
    assert len(letters) == summary.dead_letters > 100, "every committed batch's dead letters, no more"


def test_a_stream_with_a_few_bad_records_passes_the_limit(model_source, stream):
    """The test stream has one bad record in 41: far below a limit of 10%."""
    runner, broker = _runner(model_source, stream, "healthy", max_invalid_ratio=0.1, invalid_window=100)
    summary = runner.run()
    assert summary.events == len(stream) == _committed(runner, broker)
    assert summary.dead_letters == len([key for key, _ in stream if key == b"bad"])


def test_without_a_limit_the_flood_is_dead_lettered_to_its_end(model_source, stream):
    pairs = stream[:300] + WRONG_TOPIC
    runner, _ = _runner(model_source, pairs, "no-limit")
    assert runner.settings.max_invalid_ratio is None, "off by default"
    summary = runner.run()
    assert summary.events == len(pairs)
    assert summary.dead_letters >= len(WRONG_TOPIC)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=False)
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_limit_settings_parse_from_flags_and_environment(monkeypatch):
    assert (_parse().max_invalid_ratio, _parse().invalid_window) == (None, 10_000)
    assert _parse("--max-invalid-ratio", "0.8", "--invalid-window", "500").max_invalid_ratio == 0.8
    monkeypatch.setenv("SEGMENTER_MAX_INVALID_RATIO", "0.25")
    monkeypatch.setenv("SEGMENTER_INVALID_WINDOW", "2000")
    args = _parse()
    assert (args.max_invalid_ratio, args.invalid_window) == (0.25, 2000)
    with pytest.raises(argparse.ArgumentError, match="max-invalid-ratio"):
        _parse("--max-invalid-ratio", "1.5")


@pytest.mark.kafka
def test_segmenter_consume_exits_3_naming_the_limit(kafka, unique_name, group_id, model_dir):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    topics = replayed(backend, unique_name, WRONG_TOPIC[:300])
    command = scorer_command(kafka.bootstrap_servers, model_dir, topics, group_id, False)
    command += ["--max-invalid-ratio", "0.5", "--invalid-window", "40"]
    finished = subprocess.run(command, capture_output=True, timeout=120, check=False)
    stderr = finished.stderr.decode()
    assert finished.returncode == 3, stderr[-3000:]
    assert "the scorer stopped" in stderr, stderr[-3000:]
    assert "more than --max-invalid-ratio 0.5 allows" in stderr, stderr[-3000:]
    assert 40 <= committed_total(kafka.bootstrap_servers, group_id) < 300, "stopped early, batch committed"
