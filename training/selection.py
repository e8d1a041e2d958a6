"""Choosing k, comparing algorithms and measuring stability, on the already-transformed matrix.

Every step is seeded and works on samples where cost grows faster than linearly: silhouette on
``silhouette_sample`` points, fits for selection on at most ``fit_sample`` points, density-based
algorithms on ``density_sample`` points. Degenerate solutions (a segment below ``min_share`` of the
customers) are rejected, and the reason is recorded in the table the report shows.
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
from tqdm.auto import tqdm

from model.pipeline import build_clusterer

logger = logging.getLogger(__name__)

__all__ = ["Selection", "bootstrap_stability", "compare_algorithms", "evaluate", "select_k"]


@dataclass
class Selection:
    """The k-selection table (one dict per k) and the chosen k."""

    k: int
    table: list[dict] = field(default_factory=list)


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
    fit_sample: int = 200_000,
) -> Selection:
    """Score every k; choose the admissible one (all segments >= ``min_share``) with the best silhouette.

    Fits use at most ``fit_sample`` points; the labels judged are those of *all* points, predicted.
    Raises ``ValueError`` when no k is admissible, with each k's reason.
    """
    rng = np.random.default_rng(seed)
    fit_rows = _sample(len(points), fit_sample, rng)
    table = []
    for k in tqdm(list(k_values), desc="choosing k", unit="k", leave=False):
        started = time.perf_counter()
        labels = build_clusterer(algorithm, k, seed).fit(points[fit_rows]).predict(points)
        row = {"k": k} | evaluate(points, labels, seed, silhouette_sample)
        row["seconds"] = round(time.perf_counter() - started, 3)
        row["admissible"] = row["n_clusters"] == k and row["min_share"] >= min_share
        row["reason"] = (
            "" if row["admissible"] else f"smallest segment {row['min_share']:.1%} < {min_share:.0%}"
        )
        table.append(row)
    admissible = [r for r in table if r["admissible"]]
    if not admissible:
        raise ValueError(f"no k in {[r['k'] for r in table]} is admissible: {[r['reason'] for r in table]}")
    best = max(admissible, key=lambda r: (r["silhouette"], -r["k"]))
    logger.info(
        "chose k=%d (silhouette %.3f) among %d admissible", best["k"], best["silhouette"], len(admissible)
    )
    return Selection(k=best["k"], table=table)


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
    sample: int = 20_000,
) -> dict:
    """Adjusted Rand index between refits on bootstrap samples, all predicting one common set.

    Returns the mean, min and every pairwise ARI (1.0 = the same partition every time).
    """
    rng = np.random.default_rng(seed)
    common = points[_sample(len(points), sample, rng)]
    predictions = []
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
