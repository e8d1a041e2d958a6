"""gunicorn's threaded worker with a deadline on reading a request's headers.

A ``sync`` worker serves one connection at a time and reads its headers itself, so a client that sends
one header line every couple of seconds (slowloris) holds the whole worker: two such clients took both
workers of the old configuration and ``/healthz`` timed out. The ``gthread`` worker keeps idle and
kept-alive connections in a poller and gives each request a thread from a pool, so a slow client holds
one thread, not the process. But gunicorn reads the headers in that thread with no deadline (its
``timeout`` is the worker heartbeat), so enough slow clients still take every thread.

:class:`HeaderDeadlineWorker` closes a connection whose headers are not complete ``header_timeout``
seconds after its thread took it (``SEGMENTER_WEB_HEADER_TIMEOUT``, default 5 s; a browser or an API
client sends its headers in one packet). The worker's main loop checks the deadlines once a second and
shuts the socket down, which ends the thread's blocking read.

This bounds how long one slow connection holds a thread; it does not make the server safe to face the
internet: an attacker who reconnects keeps as many threads busy as it has connections. Put a reverse
proxy that buffers requests (nginx) in front of it for public exposure (README, "Exposing the web app").
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

from gunicorn.workers.gthread import ThreadWorker

__all__ = ["DEFAULT_HEADER_TIMEOUT", "HeaderDeadlineWorker", "header_timeout"]

DEFAULT_HEADER_TIMEOUT = 5.0


def header_timeout() -> float:
    """Seconds a connection's thread waits for complete headers (``SEGMENTER_WEB_HEADER_TIMEOUT``)."""
    return float(os.environ.get("SEGMENTER_WEB_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT))


class HeaderDeadlineWorker(ThreadWorker):
    """``gthread`` plus a deadline on each request's headers (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout()
        self._reading: dict[object, float] = {}  # connection -> deadline for its headers
        self._reading_lock = threading.Lock()

    def handle(self, conn):
        """Runs in a pool thread: read and answer one request, under a deadline until the headers end."""
        with self._reading_lock:
            self._reading[conn] = time.monotonic() + self.header_timeout
        try:
            return super().handle(conn)
        finally:
            self._headers_read(conn)

    def handle_request(self, req, conn):
        """Called once the headers are parsed: from here on the request is the app's."""
        self._headers_read(conn)
        return super().handle_request(req, conn)

    def murder_keepalived(self, force: bool = False) -> None:
        """The main loop's once-a-second housekeeping, plus closing connections past their deadline."""
        super().murder_keepalived(force)
        self._cut_slow_headers()

    def _headers_read(self, conn) -> None:
        with self._reading_lock:
            self._reading.pop(conn, None)

    def _cut_slow_headers(self) -> None:
        now = time.monotonic()
        with self._reading_lock:
            late = [conn for conn, deadline in self._reading.items() if deadline <= now]
            for conn in late:
                del self._reading[conn]
                self.log.info("closing %s: no complete request headers after %.1f s",
                              conn.client, self.header_timeout)  # fmt: skip
                with contextlib.suppress(OSError):  # the client closed it already
                    conn.sock.shutdown(socket.SHUT_RDWR)  # the thread's read returns; it closes the socket
