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
    silhouette_score,
)
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from model.pipeline import build_clusterer

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_STABILITY",
    "SILHOUETTE_TOLERANCE",
    "Selection",
    "bootstrap_stability",
    "choose_k",
    "compare_algorithms",
    "evaluate",
    "select_k",
]

SILHOUETTE_TOLERANCE = 0.05  # absolute: silhouettes this close are "about as well separated"
MIN_STABILITY = 0.90  # mean adjusted Rand index between bootstrap refits


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
    for k in tqdm(list(k_values), desc="choosing k", unit="k", leave=False):
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

    An algorithm that cannot run on this little data (HDBSCAN needs ``min_samples`` points) is skipped:
    its row has only a ``note`` saying why, and the comparison goes on.
    """
    rng = np.random.default_rng(seed)
    sample = points[_sample(len(points), density_sample, rng)]
    rows = []
    for algorithm in tqdm(("kmeans", "minibatch", "gmm", "dbscan", "hdbscan"), desc="comparing", leave=False):
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
        seconds = time.perf_counter() - started
        row = {"algorithm": algorithm, "n_points": len(data)} | evaluate(
            data, labels, seed, silhouette_sample
        )
        rows.append(row | {"seconds": round(seconds, 3)})
    return rows


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
    Returns the mean, min and every pairwise ARI (1.0 = the same partition every time).
    """
    rng = np.random.default_rng(seed)
    common = points[_sample(len(points), sample, rng)]
    predictions = []
    with threadpool_limits(limits=1):
        for round_ in tqdm(range(rounds), desc="bootstrap", leave=False):
            boot = common[rng.integers(0, len(common), len(common))]
            predictions.append(build_clusterer(algorithm, k, seed + round_ + 1).fit(boot).predict(common))
    scores = [adjusted_rand_score(a, b) for a, b in itertools.combinations(predictions, 2)]
    return {
        "rounds": rounds,
        "n_points": len(common),
        "ari_mean": round(float(np.mean(scores)), 4),
        "ari_min": round(float(np.min(scores)), 4),
        "ari_pairs": [round(float(s), 4) for s in scores],
    }
