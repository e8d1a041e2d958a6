"""Which stored customers of a partition the next ageing tick must re-score.

A tick that re-scores a customer also works out how long the customer provably keeps its segment
while it stays quiet (``model.horizon``; tried for each of ``HORIZONS_MS``, longest first). The
schedule files the customer under that time, rounded down to a day, and a later tick re-scores only
the customers filed before its boundary, plus those a committed batch changed since (filed under
``TOUCHED``). Everyone else is skipped, and the output is the same as re-scoring them, since their
segment cannot have moved. Nothing here is in the changelog: after a restore, a rebalance or a new
model the schedule knows nothing and the next tick re-scores everyone, as every tick used to.

The schedule is only ever changed by a tick that has finished scoring (:meth:`TickSchedule.settle`),
and what it records is a fact about the *stored* entries, which a batch that is aborted or redone
does not change: customers a tick moved, expired or could not score are filed as due at any boundary
from that tick's on, so a redone batch re-scores them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from model.clock import DAY_MS

HORIZONS_MS = (120 * DAY_MS, 30 * DAY_MS, 7 * DAY_MS)  # how far ahead a tick tries to prove a segment
TOUCHED = -1  # filed here: due at the next tick whatever its boundary


class TickSchedule:
    """One partition's schedule of re-scorings (see the module docstring)."""

    def __init__(self) -> None:
        self.model: bytes | None = None  # the model the horizons were proved for (None: nothing known)
        self._due: dict[int, list[str]] = {}  # safe-until day (ms) -> customers

    def due(
        self, stored: Mapping[str, bytes], at_ms: int, model: bytes
    ) -> tuple[list[str] | None, list[int]]:
        """The stored customers a tick at ``at_ms`` must re-score (``None``: everyone) and the keys
        they were filed under (handed back to :meth:`settle`)."""
        if self.model != model:
            return None, []
        keys = [key for key in self._due if key < at_ms]
        # each once, in the order filed (the output is sorted by customer id later, whatever the order)
        customers = dict.fromkeys(customer for key in keys for customer in self._due[key])
        return [customer for customer in customers if customer in stored], keys

    def settle(
        self, keys: list[int] | None, customers: list[str], safe_until: np.ndarray, model: bytes | None
    ) -> None:
        """After a tick: drop what it re-scored (``keys``; ``None``: it re-scored everyone) and file each
        of ``customers`` under its ``safe_until``. ``model=None``: the model cannot prove horizons."""
        if model is None or keys is None or self.model != model:
            self.model, self._due = model, {}
        for key in keys or ():
            self._due.pop(key, None)
        if model is None or not customers:
            return
        days = (np.asarray(safe_until, dtype=np.int64) // DAY_MS) * DAY_MS  # early, never late
        order = np.argsort(days, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(days[order]) != 0]).tolist()
        for start, end in zip(starts, [*starts[1:], len(order)], strict=True):
            self._due.setdefault(int(days[order[start]]), []).extend(
                customers[i] for i in order[start:end].tolist()
            )

    def touched(self, customers: Iterable[str]) -> None:
        """A committed batch changed these customers' entries: due at the next tick."""
        if self.model is not None:
            self._due.setdefault(TOUCHED, []).extend(customers)

    def filed(self) -> int:
        """Customers filed (a customer may be filed twice until its next re-scoring)."""
        return sum(map(len, self._due.values()))
