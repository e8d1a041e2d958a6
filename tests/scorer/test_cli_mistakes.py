"""Operator mistakes cost one sentence and a documented exit code, before any topic is created.

Each case runs the real `segmenter` command as a process and checks the exit code, that the last line
on stderr says what is wrong (and no traceback precedes it), and, where Kafka is involved, that none
of the topics the command was given exists afterwards.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
from waiting import wait_for, with_ctrl_c_enabled


def segmenter(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def topic_options(name: str) -> list[str]:
    return [
        "--input-topic", f"{name}-in", "--output-topic", f"{name}-out",
        "--dlq-topic", f"{name}-dlq", "--changelog-topic", f"{name}-state",
    ]  # fmt: skip


def existing(kafka, name: str) -> set[str]:
    admin = kafka.admin()
    try:
        return {t for t in admin.list_topics() if t.startswith(name)}
    finally:
        admin.close()


@pytest.fixture
def consume(kafka, model_dir, unique_name):
    """``segmenter consume`` with fresh topic names, a real broker and a real model."""

    def run(*extra: str) -> subprocess.CompletedProcess:
        base = ["consume", "--model-dir", str(model_dir), "--bootstrap-servers", kafka.bootstrap_servers]
        return segmenter(*base, *topic_options(unique_name), "--metrics-port", "0", *extra)

    return run


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
        (["--batch-size", "-5"], "--batch-size must be at least 1 (got -5)"),
        (["--input-topic", "bad topic!"], "--input-topic: topic name 'bad topic!' may hold only"),
        (["--changelog-topic", "x" * 250], "--changelog-topic: topic name"),
        (["--metrics-port", "70000"], "--metrics-port must be between 0 and 65535 (got 70000"),
        (["--min-event-time", "yesterday"], "--min-event-time 'yesterday' is not an ISO-8601 date"),
        (
            ["--tick", "daily"],
            "--tick must be a duration such as 1d, 12h, 30m, 90s, 2w or 0 (off), got 'daily'",
        ),
        (["--state-ttl", "3 days"], "--state-ttl must be a duration such as 1d"),
        (
            ["--tick", "0", "--state-ttl", "90d"],
            "--state-ttl drops customers at ageing ticks: it needs --tick",
        ),
    ],
)
def test_consume_refuses_a_bad_setting_before_creating_topics(consume, kafka, unique_name, extra, says):
    done = consume(*extra)
    assert done.returncode == 2
    assert says in last_line(done)
    assert existing(kafka, unique_name) == set()


@pytest.mark.kafka
def test_a_metrics_port_in_use_is_named(consume, kafka, unique_name):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = consume("--metrics-port", str(port))
    assert done.returncode == 2
    assert f"--metrics-port {port} is already in use on 127.0.0.1" in last_line(done)
    assert existing(kafka, unique_name) == set()


def test_a_model_dir_that_is_a_file_is_named(tmp_path):
    a_file = tmp_path / "model.joblib"
    a_file.write_bytes(b"x")
    done = segmenter("consume", "--model-dir", str(a_file), "--source", "-")
    assert done.returncode == 2
    assert "is a file; give the directory that holds manifest.json" in last_line(done)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--dataset", "nosuch"], "--dataset 'nosuch' is not a dataset: use cdnow, synthetic:N or file:PATH"),
        (["--dataset", "file:missing.jsonl"], "there is no file 'missing.jsonl'"),
        (["--dataset", "synthetic:x"], "needs a whole number of customers"),
        (["--input-topic", "bad topic!"], "topic name 'bad topic!' may hold only"),
    ],
)
def test_replay_refuses_a_bad_setting_before_creating_its_topic(kafka, unique_name, extra, says):
    done = segmenter(
        "replay", "--bootstrap-servers", kafka.bootstrap_servers, "--input-topic", f"{unique_name}-in", *extra
    )
    assert done.returncode == 2
    assert says in last_line(done)
    assert existing(kafka, unique_name) == set()


def test_replay_without_a_broker_is_one_line():
    done = segmenter("replay", "--bootstrap-servers", "127.0.0.1:1", "--dataset", "synthetic:5")
    assert done.returncode == 2
    assert "127.0.0.1:1" in last_line(done)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["consume", "--log-level", "verbose"], "invalid choice: 'VERBOSE'"),
        (["--log-level", "verbose", "replay"], "invalid choice: 'VERBOSE'"),
        (["consume", "--client", "foo"], "invalid choice: 'foo'"),
    ],
)
def test_usage_mistakes_are_argparse_errors(args, says):
    done = segmenter(*args)
    assert done.returncode == 2
    assert says in last_line(done)


def test_version_and_global_options_before_the_command():
    version = segmenter("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("segmenter ")
    done = segmenter("--log-format", "json", "replay", "--dataset", "nosuch")
    assert done.returncode == 2
    line = json.loads(done.stderr.strip().splitlines()[-1])  # the option took effect: a JSON line
    assert line["level"] == "ERROR"
    assert "is not a dataset" in line["message"]


@pytest.mark.kafka
def test_ctrl_c_during_replay_is_one_line_and_exit_130(kafka, unique_name):
    command = [
        sys.executable, "-m", "deploy.cli", "replay", "--bootstrap-servers", kafka.bootstrap_servers,
        "--input-topic", f"{unique_name}-in", "--dataset", "synthetic:3000", "--rate", "200",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=with_ctrl_c_enabled
    )
    try:
        wait_for(lambda: existing(kafka, unique_name), timeout=60, what="replay started sending")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].endswith("segmenter replay interrupted")
