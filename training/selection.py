"""Choosing k, comparing algorithms and measuring stability, on the already-transformed matrix.

Every step is seeded and works on samples where cost grows faster than linearly: silhouette on
``silhouette_sample`` points, fits for selection on at most ``fit_sample`` points, bootstrap refits on
``stability_sample`` points, density-based algorithms on ``density_sample`` points. Degenerate
solutions (a segment below ``min_share`` of the rows) are rejected, and the reason is recorded in the
table the report shows.

The k rule (:func:`choose_k`). Silhouette alone favours k=2 on skewed data (one big "ordinary" group
against the rest), which nobody can act on. So every admissible k is also refitted on bootstrap
samples, and the rule is: **the largest k whose silhouette is within** ``SILHOUETTE_TOLERANCE`` (0.05,
absolute) **of the best admissible silhouette and whose mean bootstrap ARI is at least**
``MIN_STABILITY`` (0.9), every segment holding at least ``min_share``. Within 0.05 the partitions are
about equally well separated, so the finer one is preferred as long as it is reproducible: an ARI of
0.9 means refits on resampled customers put nearly everyone in the same segment. If no k within the
tolerance is that stable, the most stable of them is chosen (ties: the better silhouette), and the
reason says so. The best-silhouette k is always within the tolerance, so an admissible k always
exists unless every k leaves a segment below ``min_share`` (``ValueError``).

>>> table = [{"k": 2, "admissible": True, "silhouette": 0.33, "ari_mean": 0.98},
...          {"k": 3, "admissible": True, "silhouette": 0.32, "ari_mean": 0.97},
...          {"k": 4, "admissible": True, "silhouette": 0.30, "ari_mean": 0.93},
...          {"k": 5, "admissible": True, "silhouette": 0.29, "ari_mean": 0.71},
...          {"k": 6, "admissible": True, "silhouette": 0.25, "ari_mean": 0.95}]
>>> choose_k(table)[0]
4
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    rand_score,
    silhouette_score,
)
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from model.pipeline import build_clusterer

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_STABILITY",
    "SILHOUETTE_TOLERANCE",
    "WARN_STABILITY",
    "Selection",
    "bootstrap_stability",
    "choose_k",
    "compare_algorithms",
    "evaluate",
    "select_k",
    "stability_warning",
]

SILHOUETTE_TOLERANCE = 0.05  # absolute: silhouettes this close are "about as well separated"
MIN_STABILITY = 0.90  # mean adjusted Rand index between bootstrap refits
WARN_STABILITY = 0.80  # below this mean ARI the segments are not reproducible: say so, loudly


@dataclass
class Selection:
    """The chosen k, the k-selection table (one dict per k), why k won (a sentence) and the chosen
    k's bootstrap stability (:func:`bootstrap_stability`)."""

    k: int
    table: list[dict] = field(default_factory=list)
    reason: str = ""
    stability: dict = field(default_factory=dict)


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))


def evaluate(points: np.ndarray, labels: np.ndarray, seed: int, silhouette_sample: int = 5_000) -> dict:
    """Silhouette (sampled, seeded), Davies–Bouldin, Calinski–Harabasz, and segment shares.

    Points labelled -1 (noise from density-based algorithms) are left out of the scores.
    """
    kept = labels >= 0
    points, scored = points[kept], labels[kept]
    clusters = np.unique(scored)
    shares = np.bincount(scored, minlength=int(clusters.max(initial=-1)) + 1) / max(len(labels), 1)
    metrics = {"n_clusters": len(clusters), "noise_share": round(float(1 - kept.mean()), 4)}
    if len(clusters) < 2:
        return metrics | {
            "silhouette": None,
            "davies_bouldin": None,
            "calinski_harabasz": None,
            "min_share": float(shares.max(initial=0)),
            "shares": shares.round(4).tolist(),
        }
    size = min(silhouette_sample, len(points))
    return metrics | {
        "silhouette": round(float(silhouette_score(points, scored, sample_size=size, random_state=seed)), 4),
        "davies_bouldin": round(float(davies_bouldin_score(points, scored)), 4),
        "calinski_harabasz": round(float(calinski_harabasz_score(points, scored)), 1),
        "min_share": round(float(shares[clusters].min()), 4),
        "shares": shares.round(4).tolist(),
    }


def select_k(
    points: np.ndarray,
    k_values: Iterable[int] = range(2, 9),
    *,
    algorithm: str = "kmeans",
    seed: int = 0,
    min_share: float = 0.02,
    silhouette_sample: int = 5_000,
    fit_sample: int = 50_000,
    stability_rounds: int = 5,
    stability_sample: int = 30_000,
    silhouette_tolerance: float = SILHOUETTE_TOLERANCE,
    min_stability: float = MIN_STABILITY,
) -> Selection:
    """Score every k (silhouette, shares, bootstrap stability) and choose one by :func:`choose_k`.

    Fits use at most ``fit_sample`` points; the labels judged are those of *all* points, predicted.
    Bootstrap stability is measured only for admissible k (every segment >= ``min_share``).
    Raises ``ValueError`` when no k is admissible, with each k's reason.
    """
    rng = np.random.default_rng(seed)
    fit_rows = _sample(len(points), fit_sample, rng)
    table, stability = [], {}
    for k in _k_progress(list(k_values)):
        started = time.perf_counter()
        labels = build_clusterer(algorithm, k, seed).fit(points[fit_rows]).predict(points)
        row = {"k": k} | evaluate(points, labels, seed, silhouette_sample)
        row["admissible"] = row["n_clusters"] == k and row["min_share"] >= min_share
        row["reason"] = (
            "" if row["admissible"] else f"smallest segment {row['min_share']:.1%} < {min_share:.0%}"
        )
        if row["admissible"]:
            stability[k] = bootstrap_stability(
                points, k, algorithm=algorithm, seed=seed, rounds=stability_rounds, sample=stability_sample
            )
            row |= {key: stability[k][key] for key in ("ari_mean", "ari_min")}
        row["seconds"] = round(time.perf_counter() - started, 3)
        table.append(row)
    k, reason = choose_k(table, silhouette_tolerance, min_stability, min_share)
    logger.info("chose k=%d: %s", k, reason)
    return Selection(k=k, table=table, reason=reason, stability=stability[k])


def _k_progress(k_values: list[int]) -> tqdm:
    """A progress bar counting k values ("choosing k: 3/7 k values"), without a rate: tqdm would print
    "2.36k/s" (2.36 k values a second), which reads as thousands of something."""
    return tqdm(
        k_values, total=len(k_values), desc="choosing k", unit="k", leave=False,
        bar_format="{desc}: {n_fmt}/{total_fmt} k values |{bar}| [{elapsed}<{remaining}]",
    )  # fmt: skip


def choose_k(
    table: list[dict],
    silhouette_tolerance: float = SILHOUETTE_TOLERANCE,
    min_stability: float = MIN_STABILITY,
    min_share: float = 0.02,
) -> tuple[int, str]:
    """The k the rule picks from ``table`` (rows with ``k``, ``admissible``, ``silhouette``,
    ``ari_mean``) and a sentence saying why; marks each row's ``chosen`` and, for admissible rows
    not chosen, its ``reason``. See the module docstring for the rule.
    """
    admissible = [r for r in table if r["admissible"]]
    if not admissible:
        raise ValueError(f"no k in {[r['k'] for r in table]} is admissible: {[r['reason'] for r in table]}")
    best = max(admissible, key=lambda r: (r["silhouette"], -r["k"]))
    floor = best["silhouette"] - silhouette_tolerance
    near = [r for r in admissible if r["silhouette"] >= floor]
    stable = [r for r in near if r["ari_mean"] >= min_stability]
    rule = (
        f"silhouette within {silhouette_tolerance:g} of the best ({best['silhouette']:.3f} at "
        f"k={best['k']}), every segment >= {min_share:.0%}"
    )
    if stable:
        chosen = max(stable, key=lambda r: r["k"])
        reason = (
            f"k={chosen['k']} is the largest k with {rule} and mean bootstrap ARI >= {min_stability:g} "
            f"(silhouette {chosen['silhouette']:.3f}, ARI {chosen['ari_mean']:.3f})"
        )
    else:
        chosen = max(near, key=lambda r: (r["ari_mean"], r["silhouette"], -r["k"]))
        reason = (
            f"no k with {rule} reached mean bootstrap ARI {min_stability:g}; k={chosen['k']} is the most "
            f"stable of them (ARI {chosen['ari_mean']:.3f}, silhouette {chosen['silhouette']:.3f})"
        )
    for row in table:
        row["chosen"] = row is chosen
        if row["admissible"]:
            row["reason"] = "chosen" if row is chosen else _passed_over(row, floor, min_stability)
    return chosen["k"], reason


def _passed_over(row: dict, floor: float, min_stability: float) -> str:
    if row["silhouette"] < floor:
        return f"silhouette below {floor:.3f}"
    if row["ari_mean"] < min_stability:
        return f"bootstrap ARI {row['ari_mean']:.3f} < {min_stability:g}"
    return "a larger k qualifies"


def compare_algorithms(
    points: np.ndarray, k: int, *, seed: int = 0, density_sample: int = 5_000, silhouette_sample: int = 5_000
) -> list[dict]:
    """One row per algorithm: metrics, clusters found, noise share and fit time (density ones on a sample).

    An algorithm that cannot run on this little data (HDBSCAN needs ``min_samples`` points) is skipped,
    and one that yields no usable clustering (every point noise, or one cluster) is listed as such: its
    row has a ``note`` saying why instead of scores, and the comparison goes on.
    """
    rng = np.random.default_rng(seed)
    sample = points[_sample(len(points), density_sample, rng)]
    rows = []
    algorithms = ("kmeans", "minibatch", "gmm", "dbscan", "hdbscan")
    for algorithm in tqdm(algorithms, desc="comparing", unit="algorithm", leave=False):
        data = sample if algorithm in ("dbscan", "hdbscan") else points
        clusterer = build_clusterer(algorithm, k, seed)
        started = time.perf_counter()
        try:
            too_small = _too_small(clusterer, len(data))
            if too_small:
                raise ValueError(too_small)
            labels = clusterer.fit_predict(data)
        except ValueError as exc:
            note = f"skipped: {exc}"
            logger.info("comparison: %s %s", algorithm, note)
            rows.append({"algorithm": algorithm, "n_points": len(data), "note": note})
            continue
        seconds = round(time.perf_counter() - started, 3)
        row = {"algorithm": algorithm, "n_points": len(data)} | evaluate(
            data, labels, seed, silhouette_sample
        )
        unusable = _unusable(row, clusterer)
        if unusable:
            logger.info("comparison: %s %s", algorithm, unusable)
            row = {"algorithm": algorithm, "n_points": len(data), "note": unusable}
        rows.append(row | {"seconds": seconds})
    return rows


def _unusable(row: dict, clusterer) -> str:
    """Why a comparison result is no clustering at all (every point noise, or one cluster), or ``""``.

    >>> _unusable({"n_clusters": 0, "n_points": 5000, "noise_share": 1.0}, None)
    'no usable clustering: all 5,000 points are noise'
    >>> _unusable({"n_clusters": 1, "n_points": 5000, "noise_share": 0.25}, None)
    'no usable clustering: one cluster (75.0% of the points; the rest noise)'
    """
    settings = _settings(clusterer)
    if row["n_clusters"] == 0:
        return f"no usable clustering: all {row['n_points']:,} points are noise{settings}"
    if row["n_clusters"] == 1:
        rest = "; the rest noise" if row["noise_share"] else ""
        return (
            f"no usable clustering: one cluster ({1 - row['noise_share']:.1%} of the points{rest}){settings}"
        )
    return ""


def _settings(clusterer) -> str:
    """The density settings that produced a degenerate result (what to change), e.g. " with eps=0.5"."""
    names = ("eps", "min_samples", "min_cluster_size")
    found = [f"{n}={getattr(clusterer, n)}" for n in names if getattr(clusterer, n, None) is not None]
    return f" with {', '.join(found)}" if found else ""


def _too_small(clusterer, n_points: int) -> str:
    """Why ``clusterer`` cannot run on ``n_points`` points, or ``""``."""
    if type(clusterer).__name__ == "HDBSCAN":
        needed = clusterer.min_samples or clusterer.min_cluster_size
        if n_points < needed:
            return f"HDBSCAN needs at least {needed} points (min_samples), has {n_points}"
    return ""


def bootstrap_stability(
    points: np.ndarray,
    k: int,
    *,
    algorithm: str = "kmeans",
    seed: int = 0,
    rounds: int = 5,
    sample: int = 30_000,
) -> dict:
    """Adjusted Rand index between refits on bootstrap samples, all predicting one common set.

    The common set is a seeded sample of at most ``sample`` points; each round refits on a bootstrap
    resample of it (one thread: small fits only lose to threading overhead, badly on a busy machine).
    Returns the mean, min and every pairwise ARI (1.0 = the same partition every time), and
    ``agreement_mean``: the mean Rand index over the same pairs, the share of pairs of common points
    that two refits treat alike (both in one segment, or both apart) -- the plain-words number.
    """
    rng = np.random.default_rng(seed)
    common = points[_sample(len(points), sample, rng)]
    predictions = []
    with threadpool_limits(limits=1):
        for round_ in tqdm(range(rounds), desc="bootstrap", unit="refit", leave=False):
            boot = common[rng.integers(0, len(common), len(common))]
            predictions.append(build_clusterer(algorithm, k, seed + round_ + 1).fit(boot).predict(common))
    pairs = list(itertools.combinations(predictions, 2))
    scores = [adjusted_rand_score(a, b) for a, b in pairs]
    return {
        "rounds": rounds,
        "n_points": len(common),
        "ari_mean": round(float(np.mean(scores)), 4),
        "ari_min": round(float(np.min(scores)), 4),
        "ari_pairs": [round(float(s), 4) for s in scores],
        "agreement_mean": round(float(np.mean([rand_score(a, b) for a, b in pairs])), 4),
    }


def stability_warning(
    stability: dict, threshold: float = WARN_STABILITY, advice: str = "treat these segments with care"
) -> str:
    """A plain-words warning when the mean bootstrap ARI is below ``threshold``, else ``""``.

    >>> warning = stability_warning({"ari_mean": 0.37, "ari_min": -0.002, "agreement_mean": 0.684})
    >>> warning.split(" (")[0]
    'refits agree on 68 % of customer pairs: treat these segments with care'
    >>> warning.split(" (")[1]
    'mean bootstrap ARI 0.37, lowest -0.002, below 0.8)'
    >>> stability_warning({"ari_mean": 0.92, "ari_min": 0.9, "agreement_mean": 0.97})
    ''
    """
    if stability.get("ari_mean") is None or stability["ari_mean"] >= threshold:
        return ""
    agreement = stability.get("agreement_mean")
    opening = (
        "refits disagree"
        if agreement is None
        else f"refits agree on {agreement * 100:.0f} % of customer pairs"
    )
    return (
        f"{opening}: {advice} (mean bootstrap ARI {stability['ari_mean']:.2f}, "
        f"lowest {stability['ari_min']:.3g}, below {threshold:g})"
    )
