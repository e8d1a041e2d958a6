"""Stable segment ids across retrains: a new model's clusters take the ids of the previous model's.

KMeans numbers its clusters arbitrarily: the same data with another seed can swap two of them, and
every customer downstream would look "changed". ``segmenter train --previous DIR`` therefore matches
the new clusters to the previous model's segments and publishes the matched ids (``segment_ids`` in
the manifest, see ``model.scoring``).

Matching: the previous model scores the new model's training rows, so every row has a previous
segment and a new cluster. For each pair (previous segment P, new cluster N) the similarity is the
Jaccard index of their row sets, ``|P ∩ N| / |P ∪ N|``, from the contingency table. The Hungarian
assignment (``scipy.optimize.linear_sum_assignment``) pairs them one to one maximising the total
similarity, and a pair is a match when its similarity is above ``MATCH_THRESHOLD`` (0.5).

Why Jaccard above 0.5: it counts both ways — a big old segment swallowing a small new cluster is not a
match (the union is large), and neither is a new cluster that merged two old ones. Above 0.5, N holds
more than half of P and P more than half of N, so no other pair can claim either: the match is
unambiguous whatever the assignment, and a segment that split in two halves matches neither half
(both get fresh ids) rather than one at random. Raw overlap counts, by contrast, favour the largest
segments.

A matched cluster takes the previous segment's id; any other gets a fresh id, one above the largest
id ever used in the lineage (``ids_used``), so a segment that vanished never has its id given to a
different one. Ids must fit the changelog's 16-bit ``last_segment`` (``MAX_SEGMENT_ID``).

Names travel with ids while they still describe the segment: a matched segment keeps its previous
name when every word of it is still said of the new profile (the profile's name with every word its
z-scores support, not only the two shown; a disambiguating number such as "lapsed 2" is ignored), and
takes its new name otherwise. So "frequent loyal" stays "frequent loyal" when the new profile would
be called "high-value frequent" but is still loyal, and becomes the new name when it no longer is.

>>> ids = np.array([5, 5, 5, 9, 9, 9, 9, 2])      # the previous model's segment per row
>>> new = np.array([1, 1, 1, 0, 0, 0, 2, 2])      # the new model's cluster per row
>>> table = jaccard_table(ids, [2, 5, 9], new, 3)  # rows: previous ids 2, 5, 9; columns: new clusters
>>> table.round(2).tolist()
[[0.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.75, 0.0, 0.2]]
>>> matched = match_ids(table, [2, 5, 9], ids_used=[0, 1, 2, 5, 9])
>>> matched.segment_ids, matched.retired
([9, 5, 10], [2])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from model.errors import SchemaMismatchError
from model.scoring import MAX_SEGMENT_ID, SegmentModel
from model.spec import FeatureSpec
from training.profiles import name_from_z, unique_names

__all__ = [
    "MATCH_THRESHOLD",
    "Lineage",
    "carry_names",
    "check_schema",
    "first_lineage",
    "jaccard_table",
    "match_ids",
    "match_previous",
]

MATCH_THRESHOLD = 0.5


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


def jaccard_table(previous_ids: np.ndarray, previous_order: Sequence[int], new: np.ndarray, k: int):
    """Jaccard similarity of every (previous segment, new cluster) pair of row sets: a matrix with a
    row per id of ``previous_order`` and a column per new cluster 0..k-1."""
    position = {segment: i for i, segment in enumerate(previous_order)}
    rows = np.fromiter((position[s] for s in np.asarray(previous_ids).tolist()), dtype=np.int64)
    both = np.bincount(rows * k + np.asarray(new, dtype=np.int64), minlength=len(position) * k)
    both = both.reshape(len(position), k).astype(float)
    union = both.sum(axis=1)[:, None] + both.sum(axis=0)[None, :] - both
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


def match_previous(previous: SegmentModel, previous_ids: np.ndarray, new: np.ndarray, k: int) -> Lineage:
    """The lineage of a new model whose training rows ``previous`` scored as ``previous_ids`` and the
    new model clustered as ``new`` (cluster indices 0..k-1)."""
    recorded = previous.manifest.get("lineage") or {}
    order = previous.segment_ids
    matched = match_ids(
        jaccard_table(previous_ids, order, new, k), order, [*recorded.get("ids_used", ()), *order]
    )
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


def _words(name: str) -> set[str]:
    """The words a name says: a trailing disambiguating number dropped, "one-timers" as "one-time"."""
    words = re.sub(r" \d+$", "", name).split()
    return {"one-time" if word == "one-timers" else word for word in words}


def _still_says(name: str, profile: dict) -> bool:
    """Whether every word of ``name`` is still said of ``profile`` (by its name with all its words)."""
    z_scores = profile.get("z_scores") or {}
    # Every feature gives at most one word, and high recency one more: this many words is all of them.
    everything = name_from_z(z_scores, len(z_scores) + 1, profile.get("median"))
    return _words(name) <= _words(everything)


def carry_names(lineage: Lineage, previous: SegmentModel, profiles: list[dict]) -> list[str]:
    """Each new segment's name (by cluster index): the previous name of a matched segment whose new
    profile still says it, else the new profile's name; unique, kept names winning a clash.

    >>> class Previous:  # the previous model: segment 4 was "lapsed one-timers"
    ...     segment_name = staticmethod({4: "lapsed one-timers"}.get)
    >>> lapsed = {"name": "lapsed", "z_scores": {"recency_days": 1.0, "frequency": -0.5}, "median": {}}
    >>> grown = {"name": "lapsed", "z_scores": {"recency_days": 1.0, "frequency": 0.5}, "median": {}}
    >>> mapping = [{"id": 4, "previous_id": 4}]
    >>> carry_names(Lineage([4], "m", ["m"], [4], mapping, []), Previous(), [lapsed])
    ['lapsed one-timers']
    >>> carry_names(Lineage([4], "m", ["m"], [4], mapping, []), Previous(), [grown])
    ['lapsed']
    """
    names = [p["name"] for p in profiles]
    kept = []
    for j, entry in enumerate(lineage.mapping):
        if entry["previous_id"] is not None:
            before = previous.segment_name(entry["previous_id"])
            if _still_says(before, profiles[j]):
                names[j] = before
                kept.append(j)
    order = kept + [j for j in range(len(names)) if j not in kept]  # kept names keep their spelling
    unique = dict(zip(order, unique_names([names[j] for j in order]), strict=True))
    return [unique[j] for j in range(len(names))]
