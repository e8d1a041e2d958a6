"""Scoring customers with a fitted pipeline: one vectorised call per batch, never one row at a time.

A :class:`SegmentModel` is what every scorer (streaming consumer, web form, training's held-out check)
holds. ``score(rows)`` transforms the whole batch in one call (dict rows through the numpy fast path
of :mod:`model.fastpath`, DataFrames through the pipeline itself) and computes the distance of every
customer to every centroid in the transformed space.

:class:`Scorer` is what the streaming processor holds, whichever model it is: the batch model and the
online river model (:mod:`model.online`) both score one partition's changed customers with
``score_partition(rows, checkpoint)``. The batch model keeps no checkpoint (it returns ``None``); the
online model starts from the partition's checkpoint and returns the next one.

Confidence of an assignment, in [0, 1]:

- centroid models (KMeans, MiniBatchKMeans): the relative margin ``(second - best) / second`` between
  the nearest and second-nearest centroid distances (0 = on the boundary, 1 = on the centroid);
- Gaussian mixture: the posterior probability of the chosen component (``predict_proba``), with the
  component means as centroids.

Segment ids are stable across retrains (``training.lineage``): a model trained with ``--previous``
publishes, for each of its clusters, the id of the previous model's segment it matches, or a fresh
one. So a model has two numberings, and one rule keeps them apart: the **cluster index** (0..k-1, the
order of the fitted centroids and of the manifest's per-segment lists ``segment_names``, ``profiles``,
``segment_distribution``) stays inside ``model/``; everything a scorer returns and everything outside
``model/`` speaks **segment ids** (``segment_ids[index]``, see :class:`SegmentModel`). A manifest
without ``segment_ids`` (every model trained before lineage) has ids 0..k-1, equal to the indices.

>>> from model.pipeline import build_pipeline, to_frame
>>> from model.spec import FeatureSpec
>>> spec = FeatureSpec("id", numeric=("spend",), heavy_tailed=("spend",))
>>> rows = [{"spend": s} for s in (1, 2, 3, 900, 1000, 1100)]
>>> pipe = build_pipeline(spec, k=2, seed=0).fit(to_frame(rows, spec))
>>> model = SegmentModel(pipe, spec, {"model_id": "demo", "segment_names": ["a", "b"]})
>>> low, high = model.score([{"spend": 2}, {"spend": 1000}])
>>> low.segment_id != high.segment_id, 0 <= low.confidence <= 1, len(low.distances)
(True, True, 2)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline

from model.errors import ArtifactError
from model.fastpath import CompiledPreprocessor, compile_preprocessor
from model.horizon import stays_nearest
from model.pipeline import MISSING_CATEGORY, to_frame
from model.spec import FeatureSpec

logger = logging.getLogger(__name__)

__all__ = ["MAX_SEGMENT_ID", "Assignment", "Scorer", "SegmentModel", "assign"]

MAX_SEGMENT_ID = 2**15 - 1  # the changelog stores a customer's last segment as a signed 16-bit int


@dataclass(frozen=True)
class Assignment:
    """One customer's segment, its distance to that segment's centroid and how clear-cut it is.

    ``segment_id`` is the published (stable) id; ``distances`` are to every segment's centroid in the
    order of the model's ``segment_ids`` (``distances[model.index_of(segment_id)] == distance``).
    """

    segment_id: int
    segment_name: str
    distance: float
    confidence: float
    distances: tuple[float, ...]


class Scorer(Protocol):
    """Every model the streaming processor can hold: :class:`SegmentModel` and ``OnlineKMeans``.

    ``model_id``, ``k``, ``algorithm`` and ``manifest`` (its drift references) are what the scorer
    reports about the model; ``spec`` is the features it takes; ``segment_ids`` the published id of
    each cluster index (the labels every method returns are such ids).
    """

    model_id: str
    spec: FeatureSpec
    k: int
    algorithm: str
    manifest: Mapping[str, Any]
    segment_names: list[str]
    segment_ids: list[int]

    def segment_name(self, segment_id: int) -> str:
        """The name of segment ``segment_id``."""
        ...

    def index_of(self, segment_id: int) -> int:
        """The cluster index (position in ``segment_ids`` and in every distance row) of an id."""
        ...

    def score_partition(
        self, rows: Sequence[Mapping[str, Any]], checkpoint: bytes | None
    ) -> tuple[list[Assignment], bytes | None]:
        """Assign ``rows`` (one partition's, in order) from ``checkpoint``; the next checkpoint or None."""
        ...

    def check_checkpoint(self, checkpoint: bytes) -> object:
        """Raise ``ValueError`` saying why a restored ``checkpoint`` cannot be used."""
        ...

    def score_columns(
        self, columns: Mapping[str, Any], n: int, checkpoint: bytes | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Re-score ``n`` stored customers given as feature columns, learning nothing (an ageing
        tick): ``(segment ids, distances n x k, confidence)``."""
        ...

    def keeps_segments(
        self, now: Mapping[str, Any], later: Mapping[str, Any], n: int, segment_ids: np.ndarray
    ) -> np.ndarray | None:
        """Whether each of ``n`` quiet customers, in ``segment_ids`` with features ``now``, provably
        stays there until its features are ``later`` (``model.horizon``). ``later`` may stack several
        times (``m * n`` rows, as ``model.feature_columns.at_times`` does): the answer is then ``m x n``.
        ``None`` when this model cannot tell (so every tick re-scores everyone)."""
        ...


def _distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Euclidean distances (n x k), via the expanded square so it stays one pass over the points.

    The cross term is an ``einsum``, not ``@``: with k a handful of centroids BLAS gains little, and
    OpenBLAS runs a matrix of a few thousand rows on worker threads that spin for a core; on a busy
    2-core machine that made an ageing tick 2-5x slower (``bench/tick_bench.py``).
    """
    squared = (
        np.einsum("ij,ij->i", points, points)[:, None]
        - 2.0 * np.einsum("ij,kj->ik", points, centroids)
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )
    return np.sqrt(np.clip(squared, 0.0, None))


def assign(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centroid, all distances and margin confidence for transformed ``points``.

    >>> labels, dist, conf = assign(np.array([[0.0], [9.0]]), np.array([[0.0], [10.0]]))
    >>> labels.tolist(), conf.round(2).tolist()
    ([0, 1], [1.0, 0.89])
    """
    dist = _distances(points, centroids)
    labels = dist.argmin(axis=1)
    if centroids.shape[0] < 2:
        return labels, dist, np.ones(len(points))
    two = np.partition(dist, 1, axis=1)[:, :2]
    with np.errstate(divide="ignore", invalid="ignore"):
        confidence = np.where(two[:, 1] > 0, (two[:, 1] - two[:, 0]) / two[:, 1], 0.0)
    return labels, dist, confidence


class SegmentModel:
    """A fitted pipeline plus its manifest: the thing every scorer holds.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        ``features`` (ColumnTransformer) then ``cluster`` (KMeans, MiniBatchKMeans or GaussianMixture).
    spec : FeatureSpec
        The features the pipeline takes (extra keys in scored rows are ignored).
    manifest : dict
        The artifact manifest (``model_id``, ``segment_names``, ``profiles``, ``segment_ids``, ...).

    Ids and indices (the rule): the pipeline numbers its clusters 0..k-1 (the **cluster index**), and
    the manifest's ``segment_names``, ``profiles`` and ``segment_distribution`` are lists in that
    order. ``segment_ids[index]`` is the **segment id** a cluster is published as, stable across
    retrains with ``--previous``. Every label this class returns (``Assignment.segment_id``,
    :meth:`score_arrays`, :meth:`score_columns`) is an id; look names and profiles up by id with
    :meth:`segment_name` and :meth:`profile`, never by indexing the lists with an id. Code outside
    ``model/`` speaks ids only; where it needs a position (a distance row, a centroid) it asks
    :meth:`index_of`.

    >>> from model.pipeline import build_pipeline, to_frame
    >>> spec = FeatureSpec("id", numeric=("spend",))
    >>> rows = [{"spend": s} for s in (1.0, 2.0, 10.0, 11.0)]
    >>> pipe = build_pipeline(spec, k=2, seed=0).fit(to_frame(rows, spec))
    >>> low = int(pipe.predict(to_frame(rows[:1], spec))[0])  # the cluster index of the low spenders
    >>> ids = [7, 3] if low == 0 else [3, 7]  # published as 7 (low) and 3 (high)
    >>> model = SegmentModel(pipe, spec, {"segment_ids": ids, "segment_names": ["a", "b"]})
    >>> [a.segment_id for a in model.score([{"spend": 1.5}, {"spend": 10.5}])]
    [7, 3]
    >>> model.score_arrays([{"spend": 1.5}])[0].tolist(), model.index_of(7) == low
    ([7], True)
    """

    def __init__(self, pipeline: Pipeline, spec: FeatureSpec, manifest: Mapping[str, Any]) -> None:
        self.pipeline = pipeline
        self.spec = spec
        self.manifest = dict(manifest)
        self._preprocess = pipeline[:-1]
        self._cluster = pipeline[-1]
        self._centroids = np.asarray(
            self._cluster.means_
            if isinstance(self._cluster, GaussianMixture)
            else self._cluster.cluster_centers_,
            dtype=float,
        )
        self.k = int(self._centroids.shape[0])
        self.model_id = str(self.manifest.get("model_id", "unsaved"))
        self.algorithm = str(self.manifest.get("algorithm", type(self._cluster).__name__.lower()))
        self.segment_ids = _segment_ids(self.manifest.get("segment_ids"), self.k, self.model_id)
        self._ids = np.asarray(self.segment_ids, dtype=np.int64)
        self._index = {segment: index for index, segment in enumerate(self.segment_ids)}
        names = list(self.manifest.get("segment_names") or [])
        self.segment_names = (
            names if len(names) == self.k else [f"segment {segment}" for segment in self.segment_ids]
        )
        self.profiles = list(self.manifest.get("profiles") or [])
        self._fast = self._checked_fast_path()

    @property
    def lineage(self) -> list[str]:
        """This model's id and its ancestors' (parent first): the models whose segment ids it keeps."""
        ancestors = (self.manifest.get("lineage") or {}).get("ancestors") or []
        return [self.model_id, *(str(a) for a in ancestors)]

    def index_of(self, segment_id: int) -> int:
        """The cluster index of ``segment_id``; ``KeyError`` naming it and the model's ids."""
        try:
            return self._index[int(segment_id)]
        except (KeyError, TypeError, ValueError):
            raise KeyError(
                f"segment id {segment_id!r} is not one of model {self.model_id}'s {self.segment_ids}"
            ) from None

    def ids_of(self, indices: np.ndarray) -> np.ndarray:
        """Cluster indices -> segment ids (vectorised)."""
        return self._ids[np.asarray(indices, dtype=np.int64)]

    def indices_of(self, segment_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Segment ids -> cluster indices (vectorised); ``KeyError`` names an id the model lacks."""
        ids = np.asarray(segment_ids, dtype=np.int64)
        lookup = np.full(int(self._ids.max()) + 2, -1, dtype=np.int64)  # the last slot: any other id
        lookup[self._ids] = np.arange(self.k)
        indices = lookup[np.clip(ids, -1, len(lookup) - 1)]
        if indices.size and indices.min() < 0:
            self.index_of(int(ids[np.argmin(indices)]))  # raises, naming the id
        return indices

    def segment_name(self, segment_id: int) -> str:
        """The name of segment ``segment_id`` (``KeyError`` for an id the model does not have)."""
        return self.segment_names[self.index_of(segment_id)]

    def profile(self, segment_id: int) -> dict[str, Any]:
        """The training profile of segment ``segment_id``; ``{}`` when unknown or not recorded."""
        index = self._index.get(segment_id)
        return dict(self.profiles[index]) if index is not None and index < len(self.profiles) else {}

    def _checked_fast_path(self) -> CompiledPreprocessor | None:
        """The numpy fast path, if it reproduces the pipeline on probe rows (else the pipeline is used)."""
        fast = compile_preprocessor(self._preprocess[-1])
        probes = [{}, dict.fromkeys(self.spec.numeric, 1.0) | dict.fromkeys(self.spec.categorical, "x")]
        if fast is not None:
            expected = self._preprocess.transform(to_frame(probes, self.spec))
            if fast.transform(probes).shape == expected.shape and np.allclose(
                fast.transform(probes), expected
            ):
                return fast
            logger.warning(
                "numpy fast path disagrees with the pipeline for %s; using the pipeline", self.model_id
            )
        return None

    @property
    def centroids_scaled(self) -> np.ndarray:
        """Centroids (k x d) in the pipeline's transformed space (a copy: callers may not edit the model)."""
        return self._centroids.copy()

    @property
    def categories(self) -> dict[str, list[str]]:
        """Every categorical column's values seen in training, as the encoder learned them (the form
        offers them as choices; an unseen value is scored as none of them)."""
        learned: dict[str, Any] = {}
        for name, pipe, columns in getattr(self._preprocess[-1], "transformers_", ()):
            if name == "categorical":
                learned.update(zip(columns, pipe["onehot"].categories_, strict=True))
        return {
            name: [str(v) for v in learned.get(name, ()) if str(v) != MISSING_CATEGORY]
            for name in self.spec.categorical
        }

    @property
    def transformed_feature_names(self) -> list[str]:
        """Names of the d transformed columns, in the order of :attr:`centroids_scaled`."""
        return [str(n) for n in self._preprocess.get_feature_names_out()]

    def transform(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Rows (dicts or a DataFrame of raw features) -> transformed matrix (n x d), in one call."""
        if self._fast is not None and not isinstance(rows, pd.DataFrame):
            return self._fast.transform(rows)
        return np.asarray(self._preprocess.transform(to_frame(rows, self.spec)), dtype=float)

    def score(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> list[Assignment]:
        """Segment of every row, in input order; one preprocessing pass for the whole batch."""
        if len(rows) == 0:
            return []
        indices, dist, confidence = self._labelled(self.transform(rows))
        names, ids = self.segment_names, self.segment_ids
        return [
            Assignment(ids[i], names[i], float(d[i]), float(c), tuple(d.tolist()))
            for i, d, c in zip(indices.tolist(), dist, confidence.tolist(), strict=True)
        ]

    def score_partition(
        self, rows: Sequence[Mapping[str, Any]], checkpoint: bytes | None
    ) -> tuple[list[Assignment], None]:
        """:meth:`score` as the :class:`Scorer` protocol asks: a batch model has no checkpoint.

        >>> from model.pipeline import build_pipeline, to_frame
        >>> spec = FeatureSpec("id", numeric=("spend",))
        >>> rows = [{"spend": s} for s in (1.0, 2.0, 10.0, 11.0)]
        >>> model = SegmentModel(build_pipeline(spec, k=2, seed=0).fit(to_frame(rows, spec)), spec, {})
        >>> assignments, checkpoint = model.score_partition(rows[:2], None)
        >>> len(assignments), checkpoint
        (2, None)
        """
        return self.score(rows), None

    def check_checkpoint(self, checkpoint: bytes) -> None:
        """Accept any: the batch model ignores checkpoints (an online model serving later may use it)."""

    def score_columns(self, columns: Mapping[str, Any], n: int, checkpoint: bytes | None = None):
        """:meth:`score_arrays` of rows given as columns (``model.feature_columns``), e.g. a tick's."""
        return self._published(self.transform_columns(columns, n))

    def keeps_segments(
        self, now: Mapping[str, Any], later: Mapping[str, Any], n: int, segment_ids: np.ndarray
    ) -> np.ndarray | None:
        """See :class:`Scorer`. Only a nearest-centroid model on the numpy fast path can tell: the fast
        path's transforms are known to be monotone per column, and a Gaussian mixture's cells are not
        bounded by half-spaces."""
        if self._fast is None or isinstance(self._cluster, GaussianMixture):
            return None
        times = len(next(iter(later.values()))) // n if n else 1
        stays = stays_nearest(
            np.tile(self._fast.transform_columns(now, n), (times, 1)),
            self._fast.transform_columns(later, n * times),
            np.tile(self.indices_of(segment_ids), times),
            self._centroids,
        )
        return stays.reshape(times, n)

    def transform_columns(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """Feature columns (floats with NaN for unknown, categoricals) -> transformed matrix (n x d)."""
        if self._fast is not None:
            return self._fast.transform_columns(columns, n)
        frame = pd.DataFrame(
            {
                name: columns[name].to_objects()
                if name in self.spec.categorical
                else np.asarray(columns[name], dtype=float)
                for name in self.spec.feature_names
            }
        )
        return np.asarray(self._preprocess.transform(frame), dtype=float)

    def score_arrays(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame):
        """``(segment ids, distances n x k, confidence)`` as arrays: the fast path for large batches."""
        return self._published(self.transform(rows))

    def _published(self, points: np.ndarray):
        indices, dist, confidence = self._labelled(points)
        return self._ids[indices], dist, confidence

    def _labelled(self, points: np.ndarray):
        """``(cluster indices, distances, confidence)`` of transformed points."""
        if isinstance(self._cluster, GaussianMixture):
            proba = self._cluster.predict_proba(points)
            return proba.argmax(axis=1), _distances(points, self._centroids), proba.max(axis=1)
        return assign(points, self._centroids)

    def __repr__(self) -> str:
        return f"SegmentModel(model_id={self.model_id!r}, algorithm={self.algorithm!r}, k={self.k})"


def _segment_ids(recorded: Any, k: int, model_id: str) -> list[int]:
    """The manifest's ``segment_ids`` checked (k distinct ids in 0..MAX_SEGMENT_ID), else 0..k-1."""
    if recorded is None:
        return list(range(k))
    valid = (
        isinstance(recorded, list)
        and len(recorded) == k
        and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEGMENT_ID for s in recorded)
        and len(set(recorded)) == k
    )
    if not valid:
        raise ArtifactError(
            f"model {model_id}: manifest segment_ids {recorded!r} must be {k} distinct integers in "
            f"0..{MAX_SEGMENT_ID} (one per cluster)"
        )
    return list(recorded)
