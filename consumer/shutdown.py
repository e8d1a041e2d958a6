"""How a scorer process is asked to stop: SIGTERM or SIGINT sets the run's ``stop`` event.

The loop then finishes the batch in hand, commits it and returns, so the process exits 0 with nothing
half done (quixstreams and snuba stop the same way). ``install_sigterm`` returns the function that
puts the previous handlers back.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def install_sigterm(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop``: the loop finishes the batch in hand, commits, and returns."""

    def handler(signum, _frame):
        log.info("signal %d: finishing the current batch, then stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, prev) for sig, prev in previous.items()]
