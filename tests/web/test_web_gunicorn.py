"""`segmenter serve` runs the app under gunicorn, and /metrics adds up the counts of every worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from waiting import wait_for
from web_helpers import LOYAL, SHOPPERS

from deploy.cli import main

WORKERS = 2
HEADER_TIMEOUT = 2.0  # seconds a connection may take to send its headers (the default is 5)


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


@contextlib.contextmanager
def _serving(model_dir, tmp_path, workers: int = WORKERS):
    """`segmenter serve` on a free port until its /healthz answers; SIGTERM when done."""
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("w+")
    command = [sys.executable, "-m", "deploy.cli", "serve", "--model-dir", str(model_dir),
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--header-timeout", str(HEADER_TIMEOUT),
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


@pytest.fixture
def server(model_dir, tmp_path):
    with _serving(model_dir, tmp_path) as running:
        yield running


def _held_request(url: str) -> tuple[socket.socket, bytes]:
    """A scoring request whose body is not sent yet: the thread that took it waits for the body."""
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
    # A request whose body is slow holds one thread; the others answer the rest meanwhile.
    sock, body = _held_request(url)
    answered = [score() for _ in range(4)]
    assert _finish(sock, body).startswith(b"HTTP/1.1 200")

    def workers_that_scored() -> set[str]:
        return set(re.findall(r'"POST /api/v1/score HTTP/1.1" 200 .* pid=<?(\d+)', log.read_text()))

    def both_workers_scored() -> bool:
        # Threaded workers both accept connections; which one takes the next is up to the kernel.
        if len(workers_that_scored()) == WORKERS:
            return True
        answered.append(score())
        return False

    wait_for(both_workers_scored, timeout=30, interval=0.05, what="access log of both workers")
    assert answered == [200] * len(answered)
    sent = len(answered) + 1
    metrics = requests.get(url + "/metrics", timeout=5).text
    route = {"route": "/api/v1/score", "method": "POST", "status": "200"}
    assert _sample(metrics, "segmenter_web_requests_total", **route) == sent
    assert _sample(metrics, "segmenter_web_customers_scored_total") == sent
    assert metrics.count("segmenter_web_model_info{") == 1, "one model, not one line per worker"
    assert len(list(metrics_dir.glob("*.db"))) >= WORKERS

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "Shutting down: Master" in log.read_text()


def _post_reading_while_sending(url: str, head: str, chunks: list[bytes]) -> bytes:
    """Send a request from a thread while reading the answer, as curl does: a server may answer a body
    it refuses before the client has sent it all, and then stops reading it."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)

    def send() -> None:
        with contextlib.suppress(OSError):  # the server stops reading once it has answered
            sock.sendall(head.encode())
            for chunk in chunks:
                sock.sendall(chunk)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
    sock.close()
    sender.join(timeout=30)
    return answer


def test_a_chunked_body_over_the_limit_is_413_through_gunicorn(server):
    """Issue 10.10d: a chunked 10 MB body got 400 "Unterminated string"; a sized one gets 413."""
    url = server[0]
    body = json.dumps({"customers": [LOYAL] * 65_000}).encode()
    assert len(body) > 10_000_000
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    head = "POST /api/v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\n"
    sized = _post_reading_while_sending(url, head + f"Content-Length: {len(body)}\r\n\r\n", pieces)
    chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    chunked = _post_reading_while_sending(url, head + "Transfer-Encoding: chunked\r\n\r\n", chunks)
    for answer in (sized, chunked):
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert b'"error":"request_entity_too_large"' in answer.replace(b" ", b""), answer[:300]


def test_serve_refuses_a_directory_without_a_model(tmp_path):
    assert main(["serve", "--model-dir", str(tmp_path), "--bind", "127.0.0.1:1"]) == 2
    assert main(["serve", "--model-dir", str(tmp_path), "--bind", "nonsense"]) == 2


def _slow_client(url: str) -> socket.socket:
    """A slowloris connection: a request line, then (see below) one header line at a time, never the end."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode())
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (an error page or a bare FIN, then EOF)."""
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT) == b"" or True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_clients_neither_starve_healthz_nor_keep_their_threads(server):
    """Issue 10.9a: two clients sending a header line every 2 s took both sync workers away."""
    url = server[0]
    slow = [_slow_client(url) for _ in range(3 * WORKERS)]
    opened, closed_after, probes = time.monotonic(), {}, []
    while time.monotonic() - opened < HEADER_TIMEOUT + 2.5:
        for sock in slow:
            if sock not in closed_after:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed_after[sock] = time.monotonic() - opened
        try:
            probes.append(requests.get(url + "/healthz", timeout=1.5).status_code)
        except requests.RequestException as exc:
            probes.append(type(exc).__name__)
        # The slow clients' pace: wait for the server to close one of them, at most half a second.
        readable, _, _ = select.select([s for s in slow if s not in closed_after], [], [], 0.5)
        for sock in readable:
            if _closed_by_server(sock):
                closed_after[sock] = time.monotonic() - opened
    for sock in slow:
        sock.close()
    assert probes == [200] * len(probes), f"/healthz while {len(slow)} clients crawl: {probes}"
    assert len(closed_after) == len(slow), f"{len(slow) - len(closed_after)} slow connections still open"
    assert max(closed_after.values()) < HEADER_TIMEOUT + 1.5, closed_after


def test_serve_runs_a_model_trained_on_a_customer_table(shoppers_dir, tmp_path):
    with _serving(shoppers_dir, tmp_path, workers=1) as (url, process, log, _):
        member = {"member_id": "m-1", **SHOPPERS["lapsed store shoppers"]}
        response = requests.post(url + "/api/v1/score", json=member, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["result"]["member_id"] == "m-1"
        refused = requests.post(url + "/api/v1/score", json=dict(member, channel="phone"), timeout=10)
        assert refused.status_code == 400
        assert [e["field"] for e in refused.json()["errors"]] == ["channel"]
        page = requests.get(url + "/", timeout=10).text
        assert 'for="channel">Shopping channel<' in page
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "taking a customer table's columns" in log.read_text()
