"""The one scikit-learn pipeline: preprocessing declared by a FeatureSpec, then a clusterer.

Heavy-tailed money and count features go through ``log1p`` (negatives clipped at 0) before scaling, so
a few big spenders cannot pull every other customer into one giant cluster. Plain numeric features are
median-imputed (with a missing-indicator column where training data had gaps) and standardised;
categorical features are imputed with a constant and one-hot encoded, ignoring unseen categories.

Features absent or entirely missing in the training data (CDNOW has no demographics) are dropped by
:func:`usable_spec`, which also says why, instead of feeding all-NaN columns to the model.

>>> from model.spec import FeatureSpec
>>> spec = FeatureSpec("id", numeric=("spend", "age"), categorical=("country",), heavy_tailed=("spend",))
>>> frame = to_frame([{"spend": 10.0, "age": None, "country": "NL"},
...                   {"spend": 2000.0, "age": None, "country": None}], spec)
>>> kept, dropped = usable_spec(spec, frame)
>>> kept.feature_names, dropped
(('spend', 'country'), {'age': 'entirely missing in the training data'})
>>> build_pipeline(kept, k=2, seed=0).fit(to_frame([{"spend": s, "country": c} for s, c in
...     [(1, "NL"), (2, "NL"), (900, "US"), (1000, "US")]], kept)).predict(
...     to_frame([{"spend": 1.5, "country": "NL"}, {"spend": 950, "country": "US"}], kept)).tolist() in (
...     [0, 1], [1, 0])
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from model.spec import FeatureSpec

__all__ = [
    "ALGORITHMS",
    "CENTROID_ALGORITHMS",
    "build_clusterer",
    "build_pipeline",
    "build_preprocessor",
    "log1p_clipped",
    "to_frame",
    "usable_spec",
]

CENTROID_ALGORITHMS = ("kmeans", "minibatch", "gmm")
"""Algorithms a model can be trained and served with (they assign any new customer to a centroid)."""
ALGORITHMS = (*CENTROID_ALGORITHMS, "dbscan", "hdbscan")
"""All algorithms, including the density-based ones used only in the report's comparison."""
MISSING_CATEGORY = "missing"


def log1p_clipped(values: np.ndarray) -> np.ndarray:
    """``log1p`` of values clipped at 0: money and counts are never negative in a customer profile."""
    return np.log1p(np.clip(np.asarray(values, dtype=float), 0.0, None))


def to_frame(rows: Sequence[Mapping[str, Any]] | pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """One DataFrame with exactly the spec's columns: numeric as float, categorical as str objects.

    Missing keys become missing values; extra keys are ignored; non-numeric text in a numeric
    column becomes missing (the caller validates input at the edge and reports it there).
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    out = {}
    for name in spec.numeric:
        column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        out[name] = pd.to_numeric(column, errors="coerce").astype(float)
    for name in spec.categorical:
        column = frame[name] if name in frame else pd.Series(None, index=frame.index)
        out[name] = column.astype(str).astype(object).where(column.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index, columns=list(spec.feature_names))


def usable_spec(spec: FeatureSpec, frame: pd.DataFrame) -> tuple[FeatureSpec, dict[str, str]]:
    """The spec restricted to features the training data can support, and why each other one was dropped.

    A feature is dropped when its column is absent, entirely missing, or constant (it cannot separate
    customers and would only shift every one of them alike).
    """
    dropped: dict[str, str] = {}
    for name in spec.feature_names:
        if name not in frame:
            dropped[name] = "absent from the training data"
        elif frame[name].isna().all():
            dropped[name] = "entirely missing in the training data"
        elif frame[name].nunique(dropna=False) < 2:
            value = frame[name].iloc[0]
            shown = value.item() if isinstance(value, np.generic) else value
            dropped[name] = f"constant in the training data (always {shown!r})"
    if len(dropped) == len(spec.feature_names):
        raise ValueError(f"no usable feature left in the training data: {dropped}")
    return spec.restricted_to(set(spec.feature_names) - set(dropped)), dropped


def build_preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """The ColumnTransformer for ``spec``: log/scale heavy-tailed, scale numeric, one-hot categorical."""
    heavy = [n for n in spec.numeric if n in spec.heavy_tailed]
    plain = [n for n in spec.numeric if n not in spec.heavy_tailed]
    transformers = []
    if heavy:
        transformers.append(("heavy", _numeric_steps(log=True), heavy))
    if plain:
        transformers.append(("numeric", _numeric_steps(log=False), plain))
    if spec.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.categorical)))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def _numeric_steps(*, log: bool) -> Pipeline:
    steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if log:
        steps.append(("log1p", FunctionTransformer(log1p_clipped, feature_names_out="one-to-one")))
    steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def build_clusterer(algorithm: str = "kmeans", k: int = 4, seed: int = 0, **options: Any):
    """A fresh, seeded clusterer by name (see :data:`ALGORITHMS`); ``options`` override defaults."""
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=options.pop("n_init", 4), random_state=seed, **options)
    if algorithm == "minibatch":
        defaults = {"batch_size": 4096, "n_init": 3}
        return MiniBatchKMeans(n_clusters=k, random_state=seed, **(defaults | options))
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="diag", random_state=seed, **options)
    if algorithm == "dbscan":
        return DBSCAN(**({"eps": 0.5, "min_samples": 20} | options))
    if algorithm == "hdbscan":
        return HDBSCAN(**({"min_cluster_size": 50, "copy": True} | options))
    raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")


def build_pipeline(spec: FeatureSpec, algorithm: str = "kmeans", k: int = 4, seed: int = 0) -> Pipeline:
    """``Pipeline([("features", preprocessor), ("cluster", clusterer)])`` for ``spec``, unfitted."""
    if algorithm not in CENTROID_ALGORITHMS:
        raise ValueError(
            f"algorithm {algorithm!r} cannot score new customers; "
            f"choose from {', '.join(CENTROID_ALGORITHMS)}"
        )
    return Pipeline(
        [("features", build_preprocessor(spec)), ("cluster", build_clusterer(algorithm, k, seed))]
    )
