"""`segmenter serve` runs the app under gunicorn, and /metrics adds up the counts of every worker."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
import requests
from waiting import wait_for
from web_helpers import LOYAL

from deploy.cli import main

WORKERS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The summed value of the samples of ``name`` carrying ``labels``."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def server(model_dir, tmp_path):
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("w+")
    command = [sys.executable, "-m", "deploy.cli", "serve", "--model-dir", str(model_dir),
               "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
               "--metrics-dir", str(tmp_path / "metrics")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(url + "/healthz", timeout=2).ok, timeout=60, what="gunicorn /healthz")
        yield url, process, tmp_path / "gunicorn.log", tmp_path / "metrics"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        log.close()


def _held_request(url: str) -> tuple[socket.socket, bytes]:
    """A scoring request whose body is not sent yet: the sync worker that took it waits for the body."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(LOYAL).encode()
    head = (f"POST /api/v1/score HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode())
    return sock, body


def _finish(sock: socket.socket, body: bytes) -> bytes:
    sock.sendall(body)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_serve_runs_gunicorn_and_metrics_sum_over_workers(server):
    url, process, log, metrics_dir = server
    score = lambda: requests.post(url + "/api/v1/score", json=LOYAL, timeout=10).status_code  # noqa: E731
    # One worker is busy with a held request, so the others must answer the rest: both work.
    sock, body = _held_request(url)
    answered = [score() for _ in range(4)]
    assert _finish(sock, body).startswith(b"HTTP/1.1 200")
    assert answered == [200] * 4
    sent = 5

    def workers_that_scored() -> set[str]:
        return set(re.findall(r'"POST /api/v1/score HTTP/1.1" 200 .* pid=<?(\d+)', log.read_text()))

    wait_for(lambda: len(workers_that_scored()) == WORKERS, timeout=10, what="access log of both workers")
    metrics = requests.get(url + "/metrics", timeout=5).text
    route = {"route": "/api/v1/score", "method": "POST", "status": "200"}
    assert _sample(metrics, "segmenter_web_requests_total", **route) == sent
    assert _sample(metrics, "segmenter_web_customers_scored_total") == sent
    assert metrics.count("segmenter_web_model_info{") == 1, "one model, not one line per worker"
    assert len(list(metrics_dir.glob("*.db"))) >= WORKERS

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "Shutting down: Master" in log.read_text()


def test_serve_refuses_a_directory_without_a_model(tmp_path):
    assert main(["serve", "--model-dir", str(tmp_path), "--bind", "127.0.0.1:1"]) == 2
    assert main(["serve", "--model-dir", str(tmp_path), "--bind", "nonsense"]) == 2
