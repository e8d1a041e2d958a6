"""`segmenter serve --log-format json`: every line gunicorn, its workers and the app write is JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import requests
from waiting import wait_for
from web_helpers import LOYAL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lines(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_serve_with_json_log_format_logs_json_from_master_workers_and_access_log(model_dir, tmp_path):
    port = _free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [sys.executable, "-m", "deploy.cli", "serve", "--log-format", "json",
               "--model-dir", str(model_dir), "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--threads", "2", "--metrics-dir", str(tmp_path / "metrics")]  # fmt: skip
    unset = {"PROMETHEUS_MULTIPROC_DIR", "SEGMENTER_LOG_FORMAT"}  # the flag alone must do it
    env = {k: v for k, v in os.environ.items() if k not in unset}
    url = f"http://127.0.0.1:{port}"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        try:
            healthy = lambda: requests.get(url + "/healthz", timeout=2).ok  # noqa: E731
            wait_for(healthy, timeout=60, what="gunicorn /healthz")
            assert requests.post(url + "/api/v1/score", json=LOYAL, timeout=10).status_code == 200
            json_type = {"Content-Type": "application/json"}
            bad = requests.post(url + "/api/v1/score", data="{", headers=json_type, timeout=10)
            assert bad.status_code == 400

            def access_lines() -> list[dict]:
                lines = [json.loads(line) for line in _lines(out) + _lines(err)]
                return [line for line in lines if line["logger"] == "gunicorn.access"]

            wait_for(lambda: len(access_lines()) >= 3, timeout=30, what="three access log lines")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    lines = _lines(out) + _lines(err)
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    loggers = {line["logger"] for line in parsed}
    assert {"gunicorn.error", "gunicorn.access", "deploy.web.app", "deploy.web.serve"} <= loggers, loggers
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in parsed)
    score = next(line for line in parsed if line.get("path") == "/api/v1/score" and line["status"] == 200)
    assert (score["method"], score["remote"]) == ("POST", "127.0.0.1")
    assert score["duration_ms"] >= 0
    assert isinstance(score["pid"], int)
    assert any(line.get("status") == 400 for line in parsed)
    assert any("Shutting down: Master" in line["message"] for line in parsed)
