"""deploy/kafka/local-kafka.sh: free ports on request, a clear refusal of a port already taken."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest
from own_broker import LOCAL_KAFKA

pytestmark = pytest.mark.kafka


def run(env: dict, *verb: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LOCAL_KAFKA), *verb], env={**os.environ, **env}, capture_output=True, text=True, timeout=180
    )


def test_a_port_in_use_is_refused_with_a_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run({"KAFKA_PORT": str(port), "KAFKA_LOCAL_DIR": str(tmp_path / "kafka")}, "start")
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    assert not (tmp_path / "kafka" / "kafka.pid").exists(), "no broker was launched"


def test_auto_ports_are_kept_by_status_and_stop(tmp_path):
    env = {"KAFKA_PORT": "auto", "KAFKA_LOCAL_DIR": str(tmp_path / "kafka")}
    started = run(env, "start")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        printed = re.fullmatch(r"KAFKA_BOOTSTRAP_SERVERS=127\.0\.0\.1:(\d+)", started.stdout.strip())
        port = int(printed.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the broker listens where it said
        status = run(env, "status")
        assert status.returncode == 0
        assert status.stdout.strip().endswith(f"on 127.0.0.1:{port}")
    finally:
        stopped = run(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run(env, "status").returncode == 1
