"""A candidate ("shadow") model scored beside the live one, compared on the same rows, published nowhere.

The scorer hands every batch's scored feature rows and the live segment ids to :class:`ShadowModel`,
which scores the rows with the candidate and keeps the last ``window`` (live id, shadow id) pairs, the
same length as the drift window. :meth:`ShadowModel.snapshot` compares them:

- **agreement**: the share of pairs whose ids are equal. A candidate trained with ``--previous`` from
  the live model numbers its segments by the live model's lineage, so an equal id means the same
  segment; a candidate trained without it numbers its clusters independently and agrees little even
  when it draws the same boundaries.
- **adjusted Rand index** (scikit-learn): how alike the two partitions are whatever the numbering
  (1 identical up to renaming, about 0 for unrelated ones). High ARI with low agreement is a renumbered
  twin: retrain it with ``--previous``.
- **transitions**: the live x shadow contingency counts (at most k_live x k_shadow cells), i.e. where
  the customers of each live segment would go.

The candidate's own drift is watched by a second :class:`~model.monitor.DriftMonitor` built from the
candidate's manifest (its references, its ids). Nothing here knows of Kafka: the pairs are plain ints.

>>> window = ShadowWindow(max_count=4)
>>> window.observe([0, 0, 1, 1], [1, 1, 0, 0])
>>> report = window.snapshot()
>>> report.agreement, report.adjusted_rand_index, report.transitions
(0.0, 1.0, {(0, 1): 2, (1, 0): 2})
>>> window.observe([2], [2])  # the window keeps the last 4 pairs
>>> window.snapshot().samples
4
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from model.monitor import DriftMonitor, DriftReport, WindowSpec


@dataclass(frozen=True)
class ShadowReport:
    """One comparison of the window. ``agreement`` and ARI are NaN while the window is empty."""

    samples: int
    agreement: float
    adjusted_rand_index: float
    transitions: dict[tuple[int, int], int] = field(default_factory=dict)  # (live, shadow) -> pairs
    model_id: str = ""
    drift: DriftReport | None = None  # the shadow's own drift against its training references


class ShadowWindow:
    """The last ``max_count`` (live id, shadow id) pairs and their agreement, ARI and contingency."""

    def __init__(self, max_count: int) -> None:
        if max_count < 1:
            raise ValueError(f"the shadow window needs max_count >= 1, got {max_count}")
        self._pairs: deque[tuple[int, int]] = deque(maxlen=max_count)

    def observe(self, live_ids: Iterable[int], shadow_ids: Iterable[int]) -> None:
        live_ids, shadow_ids = [int(s) for s in live_ids], [int(s) for s in shadow_ids]
        if len(live_ids) != len(shadow_ids):
            raise ValueError(f"{len(live_ids)} live segment ids but {len(shadow_ids)} shadow ones")
        self._pairs.extend(zip(live_ids, shadow_ids, strict=True))

    def snapshot(self) -> ShadowReport:
        if not self._pairs:
            return ShadowReport(0, math.nan, math.nan)
        pairs = np.array(self._pairs, dtype=np.int64)
        live, shadow = pairs[:, 0], pairs[:, 1]
        return ShadowReport(
            samples=len(pairs),
            agreement=float(np.mean(live == shadow)),
            adjusted_rand_index=float(adjusted_rand_score(live, shadow)),
            transitions=dict(Counter(self._pairs)),
        )


class ShadowModel:
    """A candidate model, its comparison window and its own drift monitor.

    Parameters
    ----------
    model : object with ``model_id``, ``manifest`` and ``score_arrays(rows)``
        The candidate (a ``SegmentModel``); called with the same feature rows the live model scored.
    window : int
        Pairs kept (the drift window's size, so both describe the same stretch of the stream).
    """

    def __init__(self, model: Any, window: int) -> None:
        self.model = model
        self.comparison = ShadowWindow(window)
        self.drift = DriftMonitor.from_manifest(model.manifest, window=WindowSpec(max_count=window))

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def observe(
        self,
        live_ids: Sequence[int],
        feature_rows: Sequence[Mapping[str, Any]],
        ts_s: Iterable[float] | None = None,
    ) -> None:
        """Score ``feature_rows`` (aligned with ``live_ids``) with the candidate and remember both."""
        if len(live_ids) != len(feature_rows):
            raise ValueError(f"{len(live_ids)} live segment ids but {len(feature_rows)} feature rows")
        if not feature_rows:
            return
        shadow_ids = self.model.score_arrays(list(feature_rows))[0].tolist()
        self.comparison.observe(live_ids, shadow_ids)
        self.drift.observe(shadow_ids, feature_rows, ts_s)

    def snapshot(self) -> ShadowReport:
        report = self.comparison.snapshot()
        return ShadowReport(
            report.samples,
            report.agreement,
            report.adjusted_rand_index,
            report.transitions,
            model_id=self.model_id,
            drift=self.drift.snapshot(),
        )
