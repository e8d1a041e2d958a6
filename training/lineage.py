"""Stable segment ids across retrains: a new model's clusters take the ids of the previous model's.

KMeans numbers its clusters arbitrarily: the same data with another seed can swap two of them, and
every customer downstream would look "changed". ``segmenter train --previous DIR`` therefore matches
the new clusters to the previous model's segments and publishes the matched ids (``segment_ids`` in
the manifest, see ``model.scoring``).

Matching: the previous model scores the new model's training rows, so every row has a previous
segment and a new cluster. A row farther from its previous segment's centre than that segment's
radius (``segment_radii`` in the manifest: the distance within which ``RADIUS_QUANTILE`` = 99% of its
training rows lay) belongs to no previous segment: the nearest centre is not a segment's member when
it lies where the segment never reached, and without this cut a new group of customers beside an old
segment would dilute it (a previous model without radii counts every row as its nearest segment's).
For each pair (previous segment P, new cluster N) the similarity is the Jaccard index of their row
sets, ``|P ∩ N| / |P ∪ N|``, from the contingency table. The Hungarian assignment
(``scipy.optimize.linear_sum_assignment``) pairs them one to one maximising the total similarity,
and a pair is a match when its similarity is above ``MATCH_THRESHOLD`` (0.5).

Why Jaccard above 0.5: it counts both ways — a big old segment swallowing a small new cluster is not a
match (the union is large), and neither is a new cluster that merged two old ones. Above 0.5, N holds
more than half of P and P more than half of N, so no other pair can claim either: the match is
unambiguous whatever the assignment, and a segment that split in two halves matches neither half
(both get fresh ids) rather than one at random. Raw overlap counts, by contrast, favour the largest
segments.

A matched cluster takes the previous segment's id; any other gets a fresh id, one above the largest
id ever used in the lineage (``ids_used``), so a segment that vanished never has its id given to a
different one. Ids must fit the changelog's 16-bit ``last_segment`` (``MAX_SEGMENT_ID``).

Names travel with ids while the profile says the same: a matched segment keeps its previous name
when it is the same customers (similarity >= ``SAME_SEGMENT``) or when the name its new profile
generates (``training.profiles``) has the same words, ignoring the
number that tells apart two segments of the same name ("lapsed 2" says what "lapsed" says); when the
words differ, the profile now says something else and the new name is taken. So "lapsed 2" stays
"lapsed 2" even when the new numbering would call it "lapsed", and "frequent loyal" becomes
"frequent high-value" when spend, not tenure, now sets the segment apart.

>>> ids = np.array([5, 5, 5, 9, 9, 9, 9, 2])      # the previous model's segment per row
>>> new = np.array([1, 1, 1, 0, 0, 0, 2, 2])      # the new model's cluster per row
>>> table = jaccard_table(ids, [2, 5, 9], new, 3)  # rows: previous ids 2, 5, 9; columns: new clusters
>>> table.round(2).tolist()
[[0.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.75, 0.0, 0.2]]
>>> matched = match_ids(table, [2, 5, 9], ids_used=[0, 1, 2, 5, 9])  # 0.5 is not above 0.5
>>> matched.segment_ids, matched.retired
([9, 5, 10], [2])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from model.errors import SchemaMismatchError
from model.pipeline import to_frame
from model.scoring import MAX_SEGMENT_ID, SegmentModel
from model.spec import FeatureSpec

__all__ = [
    "MATCH_THRESHOLD",
    "RADIUS_QUANTILE",
    "Lineage",
    "carry_names",
    "check_schema",
    "first_lineage",
    "jaccard_table",
    "match_ids",
    "match_previous",
    "segment_radii",
]

MATCH_THRESHOLD = 0.5
RADIUS_QUANTILE = 0.99


@dataclass(frozen=True)
class Matched:
    """The ids of the new clusters (by cluster index), which previous id each took (or None), the
    similarity of each (for an unmatched one: to its closest previous segment), the previous ids
    left unmatched, and every id ever used."""

    segment_ids: list[int]
    previous_ids: list[int | None]
    similarity: list[float]
    retired: list[int]
    ids_used: list[int]


@dataclass(frozen=True)
class Lineage:
    """What the manifest records: ``segment_ids`` and ``lineage`` (see :meth:`manifest_fields`)."""

    segment_ids: list[int]
    parent_model_id: str | None
    ancestors: list[str]
    ids_used: list[int]
    mapping: list[dict]
    retired: list[int]

    def manifest_fields(self) -> dict:
        return {
            "segment_ids": self.segment_ids,
            "lineage": {
                "parent_model_id": self.parent_model_id,
                "ancestors": self.ancestors,
                "ids_used": self.ids_used,
                "mapping": self.mapping,
                "retired": self.retired,
                "match": f"Jaccard of training rows > {MATCH_THRESHOLD}, Hungarian assignment",
            },
        }


def first_lineage(k: int) -> Lineage:
    """A model trained without ``--previous``: ids 0..k-1, the lineage is just this model.

    >>> first_lineage(2).manifest_fields()["lineage"]["mapping"]
    [{'id': 0, 'previous_id': None, 'similarity': None}, {'id': 1, 'previous_id': None, 'similarity': None}]
    """
    mapping = [{"id": i, "previous_id": None, "similarity": None} for i in range(k)]
    return Lineage(list(range(k)), None, [], list(range(k)), mapping, [])


def check_schema(previous: SegmentModel, spec: FeatureSpec) -> None:
    """``SchemaMismatchError`` unless ``previous`` was trained on the input schema ``spec`` declares."""
    theirs = previous.manifest.get("source_schema_hash") or previous.spec.schema_hash()
    if theirs != spec.schema_hash():
        source = previous.manifest.get("source_spec") or {}
        features = sorted({*source.get("numeric", ()), *source.get("categorical", ())}) or list(
            previous.spec.feature_names
        )
        raise SchemaMismatchError(
            f"--previous model {previous.model_id} was trained on input schema {theirs} (features "
            f"{features}), not this data's {spec.schema_hash()} (features {sorted(spec.feature_names)}): "
            "stable ids need the same input; train without --previous to start a new lineage"
        )


def segment_radii(points: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> list[float]:
    """Per cluster index, the distance from its centre within which ``RADIUS_QUANTILE`` of its rows lie
    (0 for an empty cluster): recorded in the manifest for the next retrain's matching.

    >>> points, labels = np.array([[0.0], [1.0], [2.0], [4.0], [10.0]]), np.array([0, 0, 0, 0, 1])
    >>> segment_radii(points, labels, np.array([[1.0], [10.0]]))
    [2.94, 0.0]
    """
    distance = np.linalg.norm(points - centroids[labels], axis=1)
    return [
        round(float(np.quantile(distance[labels == j], RADIUS_QUANTILE)), 6) if np.any(labels == j) else 0.0
        for j in range(len(centroids))
    ]


def jaccard_table(
    previous_ids: np.ndarray,
    previous_order: Sequence[int],
    new: np.ndarray,
    k: int,
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """Jaccard similarity of every (previous segment, new cluster) pair of row sets: a matrix with a
    row per id of ``previous_order`` and a column per new cluster 0..k-1. Rows not ``inside`` their
    previous segment (its radius) count in their new cluster only."""
    position = {segment: i for i, segment in enumerate(previous_order)}
    rows = np.fromiter((position[s] for s in np.asarray(previous_ids).tolist()), dtype=np.int64)
    new = np.asarray(new, dtype=np.int64)
    inside = np.ones(len(rows), dtype=bool) if inside is None else np.asarray(inside, dtype=bool)
    both = np.bincount(rows[inside] * k + new[inside], minlength=len(position) * k)
    both = both.reshape(len(position), k).astype(float)
    sizes = np.bincount(new, minlength=k)  # a new cluster's rows, inside a previous segment or not
    union = both.sum(axis=1)[:, None] + sizes[None, :] - both
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, both / union, 0.0)


def match_ids(table: np.ndarray, previous_order: Sequence[int], ids_used: Sequence[int]) -> Matched:
    """Hungarian matching on ``table`` (:func:`jaccard_table`); fresh ids above every id in ``ids_used``."""
    k = table.shape[1]
    segment_ids: list[int | None] = [None] * k
    previous_ids: list[int | None] = [None] * k
    similarity = [round(float(table[:, j].max()), 4) if table.size else 0.0 for j in range(k)]
    for i, j in zip(*linear_sum_assignment(table, maximize=True), strict=True):
        if table[i, j] > MATCH_THRESHOLD:
            segment_ids[j] = previous_ids[j] = int(previous_order[i])
            similarity[j] = round(float(table[i, j]), 4)
    used = set(ids_used) | set(previous_order)
    fresh = max(used, default=-1) + 1
    for j in range(k):
        if segment_ids[j] is None:
            if fresh > MAX_SEGMENT_ID:
                raise ValueError(
                    f"segment id {fresh} would exceed {MAX_SEGMENT_ID}, the largest the stream stores; "
                    "train without --previous to start a new lineage"
                )
            segment_ids[j], fresh = fresh, fresh + 1
    retired = sorted(set(previous_order) - {p for p in previous_ids if p is not None})
    used |= set(segment_ids)
    return Matched([int(s) for s in segment_ids], previous_ids, similarity, retired, sorted(used))


def match_previous(previous: SegmentModel, rows: pd.DataFrame, new: np.ndarray, k: int) -> Lineage:
    """The lineage of a new model that clustered its training ``rows`` (raw features) as ``new``
    (cluster indices 0..k-1): ``previous`` scores the rows, and the two are matched."""
    recorded = previous.manifest.get("lineage") or {}
    order = previous.segment_ids
    previous_ids, distances, _ = previous.score_arrays(to_frame(rows, previous.spec))
    table = jaccard_table(previous_ids, order, new, k, _inside(previous, previous_ids, distances))
    matched = match_ids(table, order, [*recorded.get("ids_used", ()), *order])
    mapping = [
        {"id": segment, "previous_id": before, "similarity": similarity}
        for segment, before, similarity in zip(
            matched.segment_ids, matched.previous_ids, matched.similarity, strict=True
        )
    ]
    ancestors = [previous.model_id, *(str(a) for a in recorded.get("ancestors", ()))]
    return Lineage(
        matched.segment_ids, previous.model_id, ancestors, matched.ids_used, mapping, matched.retired
    )


def _inside(previous: SegmentModel, ids: np.ndarray, distances: np.ndarray) -> np.ndarray | None:
    """Which scored rows lie within their previous segment's radius (None: no radii recorded)."""
    radii = previous.manifest.get("segment_radii")
    if not isinstance(radii, list) or len(radii) != previous.k:
        return None
    index = previous.indices_of(ids)
    return distances[np.arange(len(index)), index] <= np.asarray(radii, dtype=float)[index]


SAME_SEGMENT = 0.9
"""Jaccard similarity at which a matched segment is the same customers: it keeps its name whatever
words its slightly different profile would generate (names come from medians and z-scores that move
a little with a seed; a name downstream must not)."""


def _says(name: str) -> str:
    """What a name says: without the number that tells two segments of the same name apart."""
    return re.sub(r" \d+$", "", name)


def carry_names(lineage: Lineage, previous: SegmentModel, profiles: list[dict]) -> list[str]:
    """Each new segment's name (by cluster index): a matched segment's previous name when it is the
    same customers or its new name says the same, else the new name; unique, kept names winning a
    clash.

    >>> class Previous:  # the previous model's segments 4 and 6
    ...     segment_name = staticmethod({4: "lapsed 2", 6: "frequent loyal"}.get)
    >>> profiles = [{"name": "lapsed"}, {"name": "frequent high-value"}, {"name": "lapsed 2"}]
    >>> mapping = [{"previous_id": 4}, {"previous_id": 6}, {"previous_id": None}]
    >>> carry_names(Lineage([4, 6, 7], "m", ["m"], [4, 6, 7], mapping, []), Previous(), profiles)
    ['lapsed 2', 'frequent high-value', 'lapsed']
    """
    names = [p["name"] for p in profiles]
    kept = []
    for j, entry in enumerate(lineage.mapping):
        if entry["previous_id"] is not None:
            before = previous.segment_name(entry["previous_id"])
            same_customers = entry.get("similarity", 0.0) >= SAME_SEGMENT
            if same_customers or _says(before) == _says(names[j]):
                names[j] = before
                kept.append(j)
    taken = {names[j] for j in kept}  # kept names keep their spelling; the others number around them
    for j in range(len(names)):
        if j not in kept:
            base, n = _says(names[j]), 2
            names[j] = base
            while names[j] in taken:
                names[j], n = f"{base} {n}", n + 1
            taken.add(names[j])
    return names
