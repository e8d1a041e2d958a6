"""Waiting on a condition with a deadline: how tests wait for brokers, servers and consumers."""

from __future__ import annotations

import time


def wait_for(condition, *, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail loudly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # a broker still starting raises many kinds; keep the last
            last_error = exc
        time.sleep(interval)  # the poll interval of a deadline-bounded wait, not a fixed delay
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")


def with_ctrl_c_enabled() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT, as Ctrl-C would.

    A shell starts background jobs with SIGINT ignored, children inherit that, and Python then installs
    no KeyboardInterrupt handler: a test suite run in the background (CI, ``nohup``) would send a
    SIGINT nobody hears. Restoring the default lets the child's Python install its own handler.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
