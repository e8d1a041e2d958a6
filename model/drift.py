"""Drift statistics: baseline histograms from training, and distances between two distributions.

Training stores, in ``manifest.json``, one baseline per feature (``numeric_baseline`` /
``categorical_baseline``) and the share of customers in each segment. The stream bins live values onto
the same baseline bins (``bin_index``) and compares the two histograms with:

- ``psi``: population stability index, epsilon-smoothed so empty bins do not give infinities;
- ``js_distance``: Jensen–Shannon distance, base 2, always in [0, 1];
- ``linf``: the largest change of one bin's (one segment's) share;
- ``wasserstein_normalised``: earth mover's distance between two histograms on the same numeric bins,
  divided by the span of the bin centres, so it lies in [0, 1].

Every function takes counts or shares; both are normalised to shares first.

>>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
0.0
>>> round(js_distance([1, 0], [0, 1]), 6)
1.0
>>> round(linf([0.2, 0.8], [0.5, 0.5]), 6)
0.3
>>> b = numeric_baseline([1.0, 2.0, 3.0, 4.0, float("nan")], bins=2)
>>> b["edges"], b["counts"], b["missing"]
([1.0, 2.5, 4.0], [2, 2], 1)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from model.spec import is_missing, number_or_nan

OTHER = "__other__"


def _shares(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-d sequence of counts or shares, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite non-negative numbers, got {array.tolist()}")
    total = array.sum()
    if total <= 0:
        raise ValueError(f"{name} sums to {total}; a distribution needs positive mass")
    return array / total


def _pair(expected: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    p, q = _shares(expected, "expected"), _shares(actual, "actual")
    if p.size != q.size:
        raise ValueError(f"expected has {p.size} bins but actual has {q.size}; they must be the same bins")
    return p, q


def psi(expected: Any, actual: Any, eps: float = 1e-4) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` over additively smoothed shares.

    Smoothing: each share ``s`` becomes ``(s + eps) / (1 + n * eps)`` (``n`` bins), so an empty bin
    costs a large but finite amount. Rules of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 major.

    >>> round(psi([0.25, 0.75], [0.5, 0.5], eps=0.0), 4)  # 0.25*ln(2) + (-0.25)*ln(2/3)
    0.2747
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    p, q = _pair(expected, actual)
    p = (p + eps) / (1 + p.size * eps)
    q = (q + eps) / (1 + q.size * eps)
    if np.any(p == 0) or np.any(q == 0):
        return math.inf
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(p: Any, q: Any) -> float:
    """Jensen–Shannon distance (square root of the JS divergence, base 2): symmetric, in [0, 1]."""
    p, q = _pair(p, q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    divergence = (kl(p) + kl(q)) / 2
    return float(math.sqrt(min(max(divergence, 0.0), 1.0)))


def linf(p: Any, q: Any) -> float:
    """Largest absolute change of one bin's share, in [0, 1]."""
    p, q = _pair(p, q)
    return float(np.max(np.abs(p - q)))


def wasserstein_normalised(edges: Any, expected: Any, actual: Any) -> float:
    """Earth mover's distance between two histograms on ``edges``, mass at bin centres, in [0, 1].

    Divided by the distance between the first and last bin centre, so 1 means all mass moved from one
    end to the other. A single bin gives 0.

    >>> wasserstein_normalised([0, 1, 2, 3], [1, 0, 0], [0, 0, 1])
    1.0
    """
    edges = np.asarray(edges, dtype=float)
    p, q = _pair(expected, actual)
    if edges.size != p.size + 1:
        raise ValueError(f"{edges.size} edges do not bound {p.size} bins")
    centres = (edges[:-1] + edges[1:]) / 2
    span = centres[-1] - centres[0]
    if p.size < 2 or span <= 0:
        return 0.0
    cdf_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    return float(min(np.sum(cdf_gap * np.diff(centres)) / span, 1.0))


def numeric_baseline(values: Iterable[Any], bins: int = 10) -> dict[str, Any]:
    """Quantile-binned histogram of a numeric training column; None/NaN counted as ``missing``.

    Edges are the ``bins + 1`` quantiles with duplicates removed (discrete and heavy-tailed columns get
    fewer, wider bins). The outer bins are open: live values below the first edge count in bin 0, above
    the last edge in the last bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    array = np.array([number_or_nan(v) for v in values], dtype=float)
    present = array[np.isfinite(array)]
    missing = int(array.size - present.size)
    if present.size == 0:
        return {"kind": "numeric", "edges": [], "counts": [], "missing": missing}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    if edges.size == 1:
        edges = np.repeat(edges, 2)
    baseline = {"kind": "numeric", "edges": [float(e) for e in edges], "counts": [], "missing": missing}
    indices = np.searchsorted(edges[1:-1], present, side="right")
    baseline["counts"] = [int(c) for c in np.bincount(indices, minlength=edges.size - 1)]
    return baseline


def categorical_baseline(values: Iterable[Any], max_categories: int = 50) -> dict[str, Any]:
    """Category counts of a training column, most frequent first; rarer ones pooled in ``other``."""
    counter = Counter(None if is_missing(v) else str(v) for v in values)
    missing = counter.pop(None, 0)
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    kept = ranked[:max_categories]
    return {
        "kind": "categorical",
        "categories": [name for name, _ in kept],
        "counts": [int(count) for _, count in kept],
        "other": int(sum(count for _, count in ranked[max_categories:])),
        "missing": int(missing),
    }


def baseline_histogram(baseline: Mapping[str, Any]) -> np.ndarray:
    """The baseline's counts over every slot ``bin_index`` can return (bins, [other,] missing)."""
    counts = list(baseline["counts"])
    if baseline["kind"] == "categorical":
        counts.append(baseline.get("other", 0))
    counts.append(baseline.get("missing", 0))
    return np.asarray(counts, dtype=float)


def bin_index(baseline: Mapping[str, Any], value: Any) -> int:
    """Slot of one live value in ``baseline_histogram(baseline)``: a bin, ``other`` or ``missing``."""
    slots = len(baseline["counts"])
    if baseline["kind"] == "categorical":
        if is_missing(value):
            return slots + 1
        try:
            return baseline["categories"].index(str(value))
        except ValueError:
            return slots
    number = number_or_nan(value)
    if not math.isfinite(number) or slots == 0:
        return slots
    return int(np.searchsorted(np.asarray(baseline["edges"][1:-1], dtype=float), number, side="right"))
