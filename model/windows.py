"""Sliding windows of small integer observations (segment ids, histogram slots), O(1) per update.

A ``SlotWindow`` keeps the last observations in a deque next to a running count per slot, so the live
histogram is always ready without rescanning. It bounds the window by count (the last ``max_count``
observations), by age (the last ``max_age_s`` seconds), or both.

Age is measured on one of two clocks:

- **event time** (``clock=None``): every observation carries its event timestamp; "now" is the
  largest timestamp seen (a watermark), so replaying old history behaves like the live stream.
  Observations already older than the window when they arrive are dropped and counted in ``late``.
- **wall time** (``clock=time.monotonic`` or any callable returning seconds): observations are stamped
  with ``clock()``, and reading the window first evicts what has aged out, so a quiet stream drains.

>>> w = SlotWindow(3, max_count=2)
>>> for segment in (0, 1, 1):
...     w.observe(segment)
>>> w.counts().tolist()
[0, 2, 0]
>>> t = SlotWindow(2, max_age_s=10)
>>> t.observe(0, ts_s=100.0); t.observe(1, ts_s=105.0); t.observe(1, ts_s=111.0)
>>> t.counts().tolist()
[0, 2]
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np


class SlotWindow:
    """Counts of slots ``0 .. n_slots - 1`` over a sliding window.

    Parameters
    ----------
    n_slots : int
        Number of distinct slots (segments, or histogram bins).
    max_count : int, optional
        Keep at most this many latest observations.
    max_age_s : float, optional
        Keep observations at most this many seconds older than "now" (see the module docstring).
    clock : callable, optional
        Wall clock in seconds; ``None`` means event time (timestamps passed to ``observe``).
    """

    def __init__(
        self,
        n_slots: int,
        *,
        max_count: int | None = None,
        max_age_s: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if n_slots < 1:
            raise ValueError(f"n_slots must be >= 1, got {n_slots}")
        if max_count is None and max_age_s is None:
            raise ValueError("a window needs max_count, max_age_s or both")
        if max_count is not None and max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.n_slots = n_slots
        self.max_count = max_count
        self.max_age_s = max_age_s
        self.clock = clock
        self.late = 0
        self._counts = np.zeros(n_slots, dtype=np.int64)
        self._items: deque[tuple[float, int]] = deque()
        self._now = -math.inf

    def __len__(self) -> int:
        return len(self._items)

    def observe(self, slot: int, ts_s: float | None = None) -> None:
        """Add one observation; amortised O(1) (each one is evicted at most once)."""
        if not 0 <= slot < self.n_slots:
            raise ValueError(f"slot {slot} is outside 0..{self.n_slots - 1}")
        ts = self._stamp(ts_s)
        self._now = max(self._now, ts)
        if self.max_age_s is not None and ts < self._now - self.max_age_s:
            self.late += 1
            return
        self._items.append((ts, slot))
        self._counts[slot] += 1
        self._evict()

    def observe_many(self, slots: Iterable[int], ts_s: float | Iterable[float] | None = None) -> None:
        """Add a batch; ``ts_s`` is one timestamp for all, one per slot, or ``None``."""
        slots = list(slots)
        if self.max_age_s is None and self.clock is None:
            self._observe_counted(slots)
            return
        if ts_s is None or isinstance(ts_s, int | float):
            stamps = [ts_s] * len(slots)
        else:
            stamps = list(ts_s)
            if len(stamps) != len(slots):
                raise ValueError(f"{len(slots)} observations but {len(stamps)} timestamps")
        for slot, ts in zip(slots, stamps, strict=True):
            self.observe(slot, ts)

    def _observe_counted(self, slots: list[int]) -> None:
        """A count-only window ignores time: add and evict whole batches with numpy (the hot path)."""
        if not slots:
            return
        values = np.asarray(slots, dtype=np.int64)
        if values.min() < 0 or values.max() >= self.n_slots:
            bad = next(v for v in slots if not 0 <= v < self.n_slots)
            raise ValueError(f"slot {bad} is outside 0..{self.n_slots - 1}")
        self._counts += np.bincount(values, minlength=self.n_slots)
        self._items.extend(zip(itertools.repeat(0.0), slots, strict=False))
        excess = len(self._items) - self.max_count
        if excess > 0:
            popleft = self._items.popleft
            evicted = [popleft()[1] for _ in range(excess)]
            self._counts -= np.bincount(evicted, minlength=self.n_slots)

    def counts(self) -> np.ndarray:
        """Current count per slot (a copy)."""
        if self.clock is not None:
            self._now = max(self._now, self.clock())
            self._evict()
        return self._counts.copy()

    def _stamp(self, ts_s: float | None) -> float:
        if self.clock is not None:
            return float(self.clock()) if ts_s is None else float(ts_s)
        if ts_s is None:
            if self.max_age_s is not None:
                raise ValueError("an event-time window (clock=None) needs ts_s on every observation")
            return 0.0
        return float(ts_s)

    def _evict(self) -> None:
        items, counts = self._items, self._counts
        if self.max_count is not None:
            while len(items) > self.max_count:
                counts[items.popleft()[1]] -= 1
        if self.max_age_s is not None:
            horizon = self._now - self.max_age_s
            while items and items[0][0] < horizon:
                counts[items.popleft()[1]] -= 1


#: The live segment distribution: slots are segment ids.
SegmentWindow = SlotWindow
