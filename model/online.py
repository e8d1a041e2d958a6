"""An online river clustering model seeded from the batch artifact, learning as events arrive.

``OnlineKMeans`` wraps a loaded :class:`~model.scoring.SegmentModel`: rows go through the artifact's
fitted preprocessing (one vectorised call per batch), then river's sequential ``KMeans`` assigns each
row to the nearest centre and moves that centre a small step towards it. The centres start at the
batch model's centroids, so segment ids and names keep their meaning while the centres follow the
stream: river numbers the centres by cluster index, and every label returned is the base model's
published segment id for that index (``SegmentModel.segment_ids``).

The learned centres are state like a customer's: the scorer keeps one set per input partition (so the
result of a partition does not depend on how partitions are spread over instances) and checkpoints
them with the batch, in the same changelog and the same commit. A checkpoint is a small binary record
(never a pickle: the changelog is data, not code), tied to the base model it was seeded from; its
layout is in ``model.changelog``.

>>> import numpy as np
>>> from model.pipeline import build_pipeline, to_frame
>>> from model.scoring import SegmentModel
>>> from model.spec import FeatureSpec
>>> spec = FeatureSpec("id", numeric=("spend",))
>>> rows = [{"spend": s} for s in (1.0, 2.0, 3.0, 10.0, 11.0, 12.0)]
>>> base = SegmentModel(build_pipeline(spec, k=2, seed=0).fit(to_frame(rows, spec)), spec, {"model_id": "m"})
>>> online = OnlineKMeans(base, learning_rate=0.1)
>>> assignments, checkpoint = online.score_partition([{"spend": 2.0}, {"spend": 11.0}], None)
>>> assignments[0].segment_id != assignments[1].segment_id
True
>>> again, _ = online.score_partition([{"spend": 2.0}], checkpoint)
>>> again[0].segment_id == assignments[0].segment_id
True
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from river.cluster import KMeans

from model.changelog import checkpoint_rows_learned, decode_checkpoint, encode_checkpoint, model_fingerprint
from model.scoring import Assignment, SegmentModel, assign

log = logging.getLogger(__name__)


class OnlineKMeans:
    """The batch model's preprocessing plus per-partition river KMeans centres (see module docstring)."""

    algorithm = "river-kmeans"

    def __init__(self, base: SegmentModel, learning_rate: float = 0.005, seed: int = 0) -> None:
        if not 0 < learning_rate <= 1:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate}")
        self.base = base
        self.learning_rate = learning_rate
        self.seed = seed
        self.spec = base.spec
        self.k = base.k
        self.segment_names = base.segment_names
        self.segment_ids = base.segment_ids
        self.segment_name = base.segment_name
        self.index_of = base.index_of
        self.profile = base.profile
        self.manifest = base.manifest
        self.model_id = f"{base.model_id}+river"
        self._seed_centres = base.centroids_scaled

    def score_partition(
        self, rows: Sequence[Mapping[str, Any]], checkpoint: bytes | None
    ) -> tuple[list[Assignment], bytes]:
        """Assign and learn ``rows`` in order, starting from ``checkpoint``; return the new checkpoint."""
        centres, learned = self._centres(checkpoint)
        river_model = self._river(centres)
        points = self.base.transform(rows)
        labels = [river_model.learn_predict_one(dict(enumerate(point))) for point in points]
        after = self._matrix(river_model, centres.shape[1])
        # Distances and confidence against the centres as they stand after the batch.
        _, distances, confidence = assign(points, after)
        ids, names = self.segment_ids, self.segment_names
        assignments = [
            Assignment(ids[label], names[label], float(dist[label]), float(conf), tuple(dist))
            for label, dist, conf in zip(labels, distances.tolist(), confidence.tolist(), strict=True)
        ]
        return assignments, self._checkpoint(after, learned + len(rows))

    def keeps_segments(self, now, later, n: int, segment_ids) -> None:
        """Cannot tell: the centres move whenever the model learns, so every tick re-scores everyone."""
        return None

    def score_columns(self, columns: Mapping[str, Any], n: int, checkpoint: bytes | None):
        """Re-score stored customers against the partition's learned centres, learning nothing: an
        ageing tick must not teach the model the same quiet customers again and again."""
        centres, _ = self._centres(checkpoint)
        indices, distances, confidence = assign(self.base.transform_columns(columns, n), centres)
        return self.base.ids_of(indices), distances, confidence

    def _river(self, centres: np.ndarray) -> KMeans:
        river_model = KMeans(n_clusters=self.k, halflife=self.learning_rate, seed=self.seed)
        for i, centre in enumerate(centres):
            river_model.centers[i] = defaultdict(float, enumerate(centre.tolist()))
        return river_model

    @staticmethod
    def _matrix(river_model: KMeans, d: int) -> np.ndarray:
        return np.array([[river_model.centers[i][j] for j in range(d)] for i in sorted(river_model.centers)])

    def _centres(self, checkpoint: bytes | None) -> tuple[np.ndarray, int]:
        """Centres from a valid checkpoint of this base model, else (with a warning) the artifact's."""
        if checkpoint:
            try:
                return self.check_checkpoint(checkpoint)
            except ValueError as error:
                log.warning("online model checkpoint not used, reseeded from the artifact: %s", error)
        return self._seed_centres.copy(), 0

    def check_checkpoint(self, checkpoint: bytes) -> tuple[np.ndarray, int]:
        """The centres and rows learned of ``checkpoint``; ``ValueError`` says why it does not fit.

        It must be a valid checkpoint (``model.changelog.decode_checkpoint``: this version's layout,
        all centres finite) of this base model, with the model's k x d centres.
        """
        decoded = decode_checkpoint(checkpoint)
        if decoded.fingerprint != model_fingerprint(self.base.model_id):
            raise ValueError(f"checkpoint belongs to another model than {self.base.model_id}")
        if decoded.centres.shape != self._seed_centres.shape:
            k, d = decoded.centres.shape
            raise ValueError(
                f"checkpoint of {k}x{d} centres does not fit the model's "
                f"{self._seed_centres.shape[0]}x{self._seed_centres.shape[1]}"
            )
        return decoded.centres, decoded.learned

    def _checkpoint(self, centres: np.ndarray, learned: int) -> bytes:
        return encode_checkpoint(self.base.model_id, centres, learned)

    @staticmethod
    def rows_learned(checkpoint: bytes) -> int:
        return checkpoint_rows_learned(checkpoint)
