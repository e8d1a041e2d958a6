"""Live drift of the segment distribution and of the features against the training artifact.

``DriftMonitor`` holds a sliding window (``model.windows``) of the segments the scorer assigned and of
each feature's baseline-bin slot, and ``snapshot()`` compares them with the training distribution:
segment PSI, Jensen–Shannon distance and L∞, plus per-feature PSI (and a normalised Wasserstein
distance for numeric features). The result is a ``DriftReport`` whose ``state`` is ``ok``, ``warn``
or ``alert`` against ``DriftThresholds``.

Default thresholds: PSI 0.1 warn / 0.25 alert (the usual credit-scoring rule of thumb). For small
shifts the JS divergence is about PSI / 8 nats, so JS distance (base 2) ≈ sqrt(PSI / 5.5): JS 0.1 is
roughly PSI 0.06 (warn) and JS 0.2 roughly PSI 0.22 (alert). L∞ 0.1 warns (one segment gained or lost
10 points of share) and 0.2 alerts. Below ``min_samples`` live observations the state stays ``ok``:
PSI over a handful of samples is mostly noise (its bias is about (bins - 1) / n).

The training distribution is per cluster index (the manifest's order); the scorer observes published
segment ids (``model.scoring``), which the monitor maps back to that order with the model's
``segment_ids`` (0..k-1 when the manifest has none). Reports carry the ids, so gauges are labelled
with the ids the stream publishes.

>>> monitor = DriftMonitor([0.5, 0.5], {}, DriftThresholds(min_samples=4), WindowSpec(max_count=100))
>>> monitor.observe([0, 1, 0, 1])
>>> monitor.snapshot().state
'ok'
>>> monitor.observe([0] * 96)
>>> report = monitor.snapshot()
>>> report.state, round(report.linf, 2)
('alert', 0.48)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from model.drift import baseline_histogram, js_distance, linf, psi, wasserstein_normalised
from model.spec import is_missing, number_or_nan
from model.windows import SlotWindow

STATES = ("ok", "warn", "alert")


@dataclass(frozen=True)
class DriftThresholds:
    """Warn and alert levels (``value >= level``); all configurable."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    js_warn: float = 0.1
    js_alert: float = 0.2
    linf_warn: float = 0.1
    linf_alert: float = 0.2
    feature_psi_warn: float = 0.1
    feature_psi_alert: float = 0.25
    min_samples: int = 500

    def __post_init__(self) -> None:
        for name in ("psi", "js", "linf", "feature_psi"):
            warn, alert = getattr(self, f"{name}_warn"), getattr(self, f"{name}_alert")
            if not 0 <= warn <= alert:
                raise ValueError(f"{name} thresholds need 0 <= warn <= alert, got warn={warn} alert={alert}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")


@dataclass(frozen=True)
class WindowSpec:
    """How much live data the monitor compares: the last ``max_count`` and/or ``max_age_s`` seconds."""

    max_count: int | None = 10_000
    max_age_s: float | None = None
    clock: Callable[[], float] | None = None

    def build(self, n_slots: int) -> SlotWindow:
        return SlotWindow(n_slots, max_count=self.max_count, max_age_s=self.max_age_s, clock=self.clock)


@dataclass(frozen=True)
class DriftReport:
    """One snapshot. Statistics are NaN while the window is empty."""

    samples: int
    expected_shares: tuple[float, ...]
    window_shares: tuple[float, ...]
    psi: float
    js: float
    linf: float
    feature_psi: dict[str, float] = field(default_factory=dict)
    feature_wasserstein: dict[str, float] = field(default_factory=dict)
    state: str = "ok"
    reasons: tuple[str, ...] = ()
    segment_ids: tuple[int, ...] = ()  # the id of each share's segment (the shares' order)

    @property
    def level(self) -> int:
        """0 ok, 1 warn, 2 alert (the value of the ``segmenter_drift_state`` gauge)."""
        return STATES.index(self.state)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return {**clean(asdict(self)), "level": self.level}


class _FeatureTracker:
    """One feature's live slots on its baseline bins; bins a whole batch column at once."""

    def __init__(self, baseline: Mapping[str, Any], window: WindowSpec) -> None:
        self.baseline = baseline
        self.expected = baseline_histogram(baseline)
        self.window = window.build(self.expected.size)
        self.numeric = baseline["kind"] == "numeric"
        n_bins = len(baseline["counts"])
        self._missing = self.expected.size - 1
        if self.numeric:
            self._interior = np.asarray(baseline["edges"][1:-1], dtype=float)
            self._no_bins = n_bins == 0
        else:
            self._index = {name: i for i, name in enumerate(baseline["categories"])}
            self._other = n_bins

    def slots(self, column: Sequence[Any]) -> list[int]:
        if not self.numeric:
            return [self._missing if is_missing(v) else self._index.get(str(v), self._other) for v in column]
        values = np.array([number_or_nan(v) for v in column], dtype=float)
        slots = np.searchsorted(self._interior, values, side="right")
        slots[~np.isfinite(values) | self._no_bins] = self._missing
        return slots.tolist()

    def stats(self) -> tuple[float, float | None]:
        counts = self.window.counts()
        if counts.sum() == 0 or self.expected.sum() == 0:
            return math.nan, (math.nan if self.numeric else None)
        value_psi = psi(self.expected, counts)
        if not self.numeric:
            return value_psi, None
        bins_expected, bins_live = self.expected[:-1], counts[:-1]
        if bins_expected.sum() == 0 or bins_live.sum() == 0:
            return value_psi, math.nan
        return value_psi, wasserstein_normalised(self.baseline["edges"], bins_expected, bins_live)


class DriftMonitor:
    """Sliding-window drift of live segments and features against the training artifact.

    Parameters
    ----------
    training_distribution : sequence of float
        Expected share of each segment (see :meth:`from_manifest` for which manifest field).
    feature_baselines : mapping
        Feature name -> ``numeric_baseline`` / ``categorical_baseline`` dict (may be empty).
    thresholds : DriftThresholds, optional
    window : WindowSpec, optional
        Defaults to the last 10 000 assignments.
    segment_ids : sequence of int, optional
        The published id of each share of ``training_distribution`` (default 0..k-1); :meth:`observe`
        takes these ids.
    """

    def __init__(
        self,
        training_distribution: Sequence[float],
        feature_baselines: Mapping[str, Mapping[str, Any]] | None = None,
        thresholds: DriftThresholds | None = None,
        window: WindowSpec | None = None,
        segment_ids: Sequence[int] | None = None,
    ) -> None:
        expected = np.asarray(training_distribution, dtype=float)
        if expected.ndim != 1 or expected.size == 0 or expected.sum() <= 0 or np.any(expected < 0):
            raise ValueError(
                f"training_distribution must be non-negative shares, got {training_distribution!r}"
            )
        ids = list(range(expected.size)) if segment_ids is None else [int(s) for s in segment_ids]
        if len(ids) != expected.size or len(set(ids)) != len(ids):
            raise ValueError(f"segment_ids {ids} must be {expected.size} distinct ids, one per share")
        self.segment_ids = tuple(ids)
        # None: ids are the slots already (the hot path of every model trained without --previous).
        self._slot = None if ids == list(range(expected.size)) else {s: i for i, s in enumerate(ids)}
        self.expected = expected / expected.sum()
        self.thresholds = thresholds or DriftThresholds()
        window = window or WindowSpec()
        self.segments = window.build(expected.size)
        self.features = {name: _FeatureTracker(b, window) for name, b in (feature_baselines or {}).items()}

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], **kwargs: Any) -> DriftMonitor:
        """Build from an artifact manifest, preferring the references that describe the stream.

        The scorer emits one assignment per changed customer per batch, over customers' partial
        histories, so a stable stream does not look like the training customers (one row each, whole
        history): young customers weigh more. Training from events therefore also records
        ``stream_segment_distribution`` / ``stream_feature_baselines``, computed per event on a replayed
        sample; they are used when present. Models trained from a customer table have no events and
        only ``segment_distribution`` / ``feature_baselines``, which are then the reference.
        """
        if "stream_segment_distribution" in manifest:
            distribution = manifest["stream_segment_distribution"]
            baselines = manifest.get("stream_feature_baselines") or {}
        elif "segment_distribution" in manifest:
            distribution = manifest["segment_distribution"]
            baselines = manifest.get("feature_baselines") or {}
        else:
            raise ValueError("manifest has no 'segment_distribution'; retrain to record drift baselines")
        return cls(distribution, baselines, segment_ids=manifest.get("segment_ids"), **kwargs)

    def observe(
        self,
        segment_ids: Iterable[int],
        feature_rows: Sequence[Mapping[str, Any]] | None = None,
        ts_s: float | Iterable[float] | None = None,
    ) -> None:
        """Add one scored batch: segment ids, their feature rows (aligned), event times in seconds."""
        segment_ids = list(segment_ids)
        stamps = ts_s if ts_s is None or isinstance(ts_s, int | float) else list(ts_s)
        self.segments.observe_many(self._slots(segment_ids), stamps)
        if feature_rows is None:
            return
        if len(feature_rows) != len(segment_ids):
            raise ValueError(f"{len(segment_ids)} segment ids but {len(feature_rows)} feature rows")
        for name, tracker in self.features.items():
            tracker.window.observe_many(tracker.slots([row.get(name) for row in feature_rows]), stamps)

    def _slots(self, segment_ids: list[int]) -> list[int]:
        if self._slot is None:
            return segment_ids
        try:
            return [self._slot[s] for s in segment_ids]
        except KeyError as missing:
            raise ValueError(
                f"segment id {missing.args[0]!r} is not one of the monitored {list(self.segment_ids)}"
            ) from None

    def snapshot(self) -> DriftReport:
        """Compare the current window with training and grade it."""
        counts = self.segments.counts()
        samples = int(counts.sum())
        if samples:
            live = counts / samples
            stats = (psi(self.expected, live), js_distance(self.expected, live), linf(self.expected, live))
        else:
            live, stats = np.zeros_like(self.expected), (math.nan, math.nan, math.nan)
        feature_psi, feature_w = {}, {}
        for name, tracker in self.features.items():
            feature_psi[name], wasserstein = tracker.stats()
            if wasserstein is not None:
                feature_w[name] = wasserstein
        state, reasons = self._grade(samples, stats, feature_psi)
        return DriftReport(
            samples=samples,
            expected_shares=tuple(float(v) for v in self.expected),
            window_shares=tuple(float(v) for v in live),
            psi=stats[0],
            js=stats[1],
            linf=stats[2],
            feature_psi=feature_psi,
            feature_wasserstein=feature_w,
            state=state,
            reasons=tuple(reasons),
            segment_ids=self.segment_ids,
        )

    def _grade(
        self, samples: int, stats: tuple[float, float, float], feature_psi: Mapping[str, float]
    ) -> tuple[str, list[str]]:
        t = self.thresholds
        if samples < t.min_samples:
            return "ok", [f"{samples} samples < min_samples {t.min_samples}: not graded"]
        checks = [
            ("segment PSI", stats[0], t.psi_warn, t.psi_alert),
            ("segment JS distance", stats[1], t.js_warn, t.js_alert),
            ("segment L∞", stats[2], t.linf_warn, t.linf_alert),
        ]
        checks += [
            (f"feature {n} PSI", v, t.feature_psi_warn, t.feature_psi_alert) for n, v in feature_psi.items()
        ]
        level, reasons = 0, []
        for label, value, warn, alert in checks:
            if math.isnan(value) or value < warn:
                continue
            hit = 2 if value >= alert else 1
            level = max(level, hit)
            reasons.append(f"{label} {value:.3f} >= {STATES[hit]} {alert if hit == 2 else warn}")
        return STATES[level], reasons
