"""The report's figures, each returned as a base64 PNG so the HTML report is one self-contained file.

Uses matplotlib's Agg backend (no display needed) and seaborn's styling. Every function samples
with a seed, so a report built twice from the same model draws the same points.
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: training runs headless

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples

from model.pipeline import log1p_clipped
from model.spec import FeatureSpec

__all__ = [
    "correlation_png",
    "distributions_png",
    "k_selection_png",
    "missing_png",
    "projection",
    "projection_png",
    "silhouette_png",
]

sns.set_theme(style="whitegrid", context="notebook")


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(n: int, cols: int = 4, size: float = 3.0):
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 0.8), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def distributions_png(frame: pd.DataFrame, spec: FeatureSpec) -> str:
    """Histogram per numeric feature (heavy-tailed ones on a log1p axis), bar chart per categorical."""
    names = list(spec.feature_names)
    fig, axes = _grid(len(names))
    for ax, name in zip(axes, names, strict=False):
        column = frame[name].dropna()
        if name in spec.categorical:
            column.astype(str).value_counts().head(12).plot.bar(ax=ax, color="tab:blue")
        elif name in spec.heavy_tailed:
            ax.hist(log1p_clipped(column.to_numpy()), bins=40, color="tab:orange")
            name = f"log1p({name})"
        else:
            ax.hist(column.to_numpy(dtype=float), bins=40, color="tab:blue")
        ax.set_title(name, fontsize=10)
    return _png(fig)


def missing_png(missing_share: dict[str, float]) -> str:
    """Share of customers missing each feature (all features of the source spec, dropped ones too)."""
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(missing_share) + 1))
    series = pd.Series(missing_share).sort_values()
    series.plot.barh(ax=ax, color="tab:red")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share missing")
    return _png(fig)


def correlation_png(frame: pd.DataFrame, spec: FeatureSpec) -> str:
    """Spearman rank correlation of the numeric features (rank-based: fine for heavy tails)."""
    corr = frame[list(spec.numeric)].corr(method="spearman")
    size = 1.0 + 0.6 * len(spec.numeric)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(corr, ax=ax, annot=len(spec.numeric) <= 12, fmt=".2f", cmap="vlag", vmin=-1, vmax=1)
    return _png(fig)


def k_selection_png(table: list[dict], chosen: int) -> str:
    """Silhouette, Davies–Bouldin and Calinski–Harabasz against k; rejected k marked with x."""
    frame = pd.DataFrame(table)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    titles = {"silhouette": "silhouette (higher better)", "davies_bouldin": "Davies–Bouldin (lower better)"}
    for ax, metric in zip(axes, ("silhouette", "davies_bouldin", "calinski_harabasz"), strict=True):
        ax.plot(frame["k"], frame[metric], marker="o")
        rejected = frame[~frame["admissible"]]
        if not rejected.empty:
            ax.scatter(rejected["k"], rejected[metric], marker="x", color="red", s=80, label="rejected")
        ax.axvline(chosen, color="grey", linestyle="--")
        ax.set_title(titles.get(metric, "Calinski–Harabasz (higher better)"), fontsize=10)
        ax.set_xlabel("k")
    if not frame["admissible"].all():
        axes[0].legend(fontsize=8)
    return _png(fig)


def silhouette_png(points: np.ndarray, labels: np.ndarray, names: list[str], seed: int, sample=3000) -> str:
    """Classic silhouette plot of a seeded sample: one sorted band per segment."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(points), min(sample, len(points)), replace=False)
    values = silhouette_samples(points[rows], labels[rows])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bottom = 0
    for segment, name in enumerate(names):
        band = np.sort(values[labels[rows] == segment])
        ax.fill_betweenx(np.arange(bottom, bottom + len(band)), 0, band, alpha=0.8, label=name)
        bottom += len(band) + 20
    ax.axvline(values.mean(), color="red", linestyle="--")
    ax.set_xlabel(f"silhouette (mean {values.mean():.3f}, {len(rows)} customers)")
    ax.set_yticks([])
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def projection(points: np.ndarray, labels: np.ndarray, seed: int, sample: int = 2000) -> dict:
    """2-D PCA projection of a seeded sample: ``{"x", "y", "segment", "explained_variance"}``."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(points), min(sample, len(points)), replace=False))
    pca = PCA(n_components=min(2, points.shape[1]), random_state=seed).fit(points)
    xy = np.zeros((len(rows), 2))
    xy[:, : pca.n_components_] = pca.transform(points[rows])
    variance = np.zeros(2)
    variance[: pca.n_components_] = pca.explained_variance_ratio_
    return {
        "x": np.round(xy[:, 0], 4).tolist(),
        "y": np.round(xy[:, 1], 4).tolist(),
        "segment": labels[rows].astype(int).tolist(),
        "explained_variance": np.round(variance, 4).tolist(),
    }


def projection_png(proj: dict, names: list[str]) -> str:
    """Scatter of :func:`projection`, coloured by segment."""
    fig, ax = plt.subplots(figsize=(7, 5.5))
    segments = np.asarray(proj["segment"])
    x, y = np.asarray(proj["x"]), np.asarray(proj["y"])
    for segment, name in enumerate(names):
        members = segments == segment
        ax.scatter(x[members], y[members], s=6, alpha=0.6, label=name)
    ev = proj["explained_variance"]
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)")
    ax.legend(fontsize=8, markerscale=3)
    return _png(fig)
