"""Events dropped as duplicates are counted and, at most every 30 s per partition, logged.

Dropping an event whose offset the customer's state has already applied is right after a crash (the
batch is read again). It is wrong when offsets went backwards, e.g. the input topic was deleted and
recreated while the state changelog was kept: then every event of a known customer is dropped. So
the drops are never silent: ``segmenter_events_duplicate_total{kind}`` counts them all, and a warning
names the partition and how many were dropped since its last warning.

>>> clock = iter([0.0, 10.0, 31.0]).__next__
>>> warnings = DuplicateWarnings(interval_s=30.0, clock=clock)
>>> [warnings.note("offset", 0, n) for n in (5, 2, 1)]  # the 2 wait for the next warning
[5, None, 3]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

WHY = {
    "offset": "their offsets are at or below the last offset the customer's stored state applied",
}


class DuplicateWarnings:
    """A rate-limited warning per (kind, partition), carrying the count since the last one."""

    def __init__(self, interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._next: dict[tuple[str, int], float] = {}
        self._pending: dict[tuple[str, int], int] = {}

    def note(self, kind: str, partition: int, count: int) -> int | None:
        """Add ``count`` drops; log them if the last warning is old enough. Returns the count logged."""
        slot = (kind, partition)
        pending = self._pending.get(slot, 0) + count
        now = self.clock()
        if now < self._next.get(slot, -float("inf")):
            self._pending[slot] = pending
            return None
        self._pending[slot] = 0
        self._next[slot] = now + self.interval_s
        log.warning(
            "dropped %d events of input partition %d as duplicates (%s): %s. Expected right after a "
            "crash or rebalance; if it goes on, the input's offsets went backwards (topic recreated) "
            "while the state changelog was kept: see --reset-state in the README",
            pending,
            partition,
            kind,
            WHY.get(kind, kind),
            extra={"partition": partition, "duplicates": pending, "kind": kind},
        )
        return pending
