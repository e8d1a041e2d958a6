"""The scorer's small HTTP server: ``/metrics``, ``/healthz`` (live) and ``/readyz`` (ready).

- ``/metrics``: the injected ``CollectorRegistry`` in the Prometheus (or OpenMetrics, if asked) format.
- ``/healthz``: 200 while the processing loop is alive, i.e. it called ``Readiness.heartbeat()`` within
  ``liveness_timeout_s``; 503 otherwise (a hung loop gets restarted by the orchestrator).
- ``/readyz``: 200 only once the state is restored and a model is loaded; else 503 with a JSON reason.

It runs ``http.server.ThreadingHTTPServer`` in a daemon thread. Default address ``127.0.0.1:9108``
(``DEFAULT_PORT``; bind ``0.0.0.0`` in a container); port 0 takes an ephemeral port, read back from
``MetricsServer.port``.

>>> from prometheus_client import CollectorRegistry
>>> with MetricsServer(CollectorRegistry(), Readiness(), port=0) as server:
...     server.port > 0
True
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108


class Readiness:
    """Thread-safe liveness and readiness flags, set by the processor and read by the HTTP thread."""

    def __init__(self, liveness_timeout_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.liveness_timeout_s = liveness_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._beat = clock()
        self._state_restored = False
        self._model_loaded = False

    def heartbeat(self) -> None:
        """Call once per loop iteration (also when a poll returns nothing)."""
        with self._lock:
            self._beat = self._clock()

    def set_state_restored(self, restored: bool = True) -> None:
        """False while partitions are being (re)assigned and restored, True when done."""
        with self._lock:
            self._state_restored = restored

    def set_model_loaded(self, loaded: bool = True) -> None:
        with self._lock:
            self._model_loaded = loaded

    def live(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            age = self._clock() - self._beat
        return age <= self.liveness_timeout_s, {"last_heartbeat_age_s": round(age, 3)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            restored, loaded = self._state_restored, self._model_loaded
        reasons = [
            text for ok, text in ((restored, "state not restored"), (loaded, "model not loaded")) if not ok
        ]
        return not reasons, {"state_restored": restored, "model_loaded": loaded, "reasons": reasons}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(self.server.registry), content_type)
        elif path in ("/healthz", "/readyz"):
            check = self.server.readiness.live if path == "/healthz" else self.server.readiness.ready
            ok, detail = check()
            body = json.dumps({"status": "ok" if ok else "unavailable", **detail}).encode()
            self._send(200 if ok else 503, body, "application/json")
        else:
            self._send(404, b'{"error": "not found"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, readiness: Readiness) -> None:
        self.registry = registry
        self.readiness = readiness
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before the answer was written (Prometheus gives up on a scrape after
        its timeout, on a busy machine) is a DEBUG line; anything else is logged with its traceback.
        The default printed every such disconnect to stderr as a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # BrokenPipeError, ConnectionResetError, ...
            log.debug("client %s disconnected: %s", client_address[0], error)
        else:
            log.exception("request from %s failed", client_address[0])


class MetricsServer:
    """Serve ``registry`` and ``readiness`` on ``host:port`` from a daemon thread.

    ``start()`` binds immediately (so a busy port fails loudly in the caller); ``stop()`` shuts down.
    Usable as a context manager.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Readiness,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        self.registry = registry
        self.readiness = readiness
        self.host = host
        self.requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the metrics server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MetricsServer:
        self._server = _Server((self.host, self.requested_port), self.registry, self.readiness)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics, /healthz and /readyz served on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
