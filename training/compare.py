"""Offline comparison of two models on the same customers (``segmenter compare``): what an operator
reads before promoting a candidate.

Both models score the same rows; the figures are the share of customers given the same segment
**id** (ids are stable across retrains with ``--previous``, so the same id is the same mapped
segment), the adjusted Rand index (agreement of the two partitions whatever their numbering: 1 the
same segments, 0 chance), the A x B transition table (counts and shares of each A row), and each
model's segment shares. Whether the ids are comparable at all depends on the lineage: a descendant
(or a sibling from a common ancestor) keeps the ids; an unrelated model numbers its own, and only
the ARI is then meaningful.

>>> a, b = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])
>>> older, newer = Side("a", [0, 1], ["low", "high"], []), Side("b", [0, 1, 2], ["l", "h", "n"], ["a"])
>>> found = compare(a, b, older, newer)
>>> found.agreement, found.relation, found.counts.tolist()
(0.75, 'B descends from A (its child)', [[2, 0, 0], [0, 1, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score

from training.report import _note, _section, _table, html_page

__all__ = ["Comparison", "Side", "compare", "format_comparison", "relation", "render_html"]


@dataclass(frozen=True)
class Side:
    """What the comparison needs of one model: its id, segment ids and names (in the same order),
    and its ancestors (parent first, the manifest's ``lineage.ancestors``)."""

    model_id: str
    segment_ids: list[int]
    segment_names: list[str]
    ancestors: list[str]

    @classmethod
    def of(cls, model) -> Side:
        """The side of a loaded :class:`~model.scoring.SegmentModel`."""
        return cls(model.model_id, list(model.segment_ids), list(model.segment_names), model.lineage[1:])

    def by_id(self) -> Side:
        """The same side with its segments in ascending id order (the tables' order)."""
        pairs = sorted(zip(self.segment_ids, self.segment_names, strict=True))
        return Side(self.model_id, [i for i, _ in pairs], [n for _, n in pairs], self.ancestors)

    def label(self, segment_id: int) -> str:
        return f"{segment_id} {self.segment_names[self.segment_ids.index(segment_id)]}"


def relation(a: Side, b: Side) -> tuple[str, bool]:
    """How B relates to A by lineage, and whether their segment ids name the same segments.

    >>> r, p = Side("r", [0], ["x"], []), Side("p", [0], ["x"], ["r"])
    >>> relation(r, Side("c", [0], ["x"], ["p", "r"])), relation(p, Side("s", [0], ["x"], ["r"]))
    (('B descends from A (2 generations)', True), ('B and A share the ancestor r', True))
    >>> relation(Side("c", [0], ["x"], ["p", "r"]), r), relation(r, Side("u", [0], ["x"], []))
    (('A descends from B: B is the older model', True), ('unrelated: no common ancestor', False))
    """
    if a.model_id == b.model_id:
        return "the same model", True
    if a.model_id in b.ancestors:
        generations = b.ancestors.index(a.model_id) + 1
        how = "its child" if generations == 1 else f"{generations} generations"
        return f"B descends from A ({how})", True
    if b.model_id in a.ancestors:
        return "A descends from B: B is the older model", True
    common = [m for m in a.ancestors if m in b.ancestors]
    if common:
        return f"B and A share the ancestor {common[0]}", True
    return "unrelated: no common ancestor", False


@dataclass(frozen=True)
class Comparison:
    """The figures of :func:`compare`; ``counts[i, j]`` is the customers in A's ``a.segment_ids[i]``
    and B's ``b.segment_ids[j]`` (both sides in ascending id order)."""

    a: Side
    b: Side
    relation: str
    ids_comparable: bool
    customers: int
    agreement: float
    ari: float
    counts: np.ndarray

    def row_shares(self) -> np.ndarray:
        totals = self.counts.sum(axis=1, keepdims=True)
        return np.divide(self.counts, totals, out=np.zeros(self.counts.shape), where=totals > 0)

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Each model's segment shares of the customers compared, in its ``segment_ids`` order."""
        n = max(self.customers, 1)
        return self.counts.sum(axis=1) / n, self.counts.sum(axis=0) / n


def compare(ids_a: np.ndarray, ids_b: np.ndarray, a: Side, b: Side) -> Comparison:
    """Compare the segment ids two models gave the same customers (in the same order)."""
    ids_a, ids_b = np.asarray(ids_a, dtype=np.int64), np.asarray(ids_b, dtype=np.int64)
    if ids_a.shape != ids_b.shape or ids_a.size == 0:
        raise ValueError(f"need the same customers scored by both models, got {ids_a.size} and {ids_b.size}")
    a, b = a.by_id(), b.by_id()  # the same id in the same place: the diagonal is "kept its id"
    rows, cols = np.searchsorted(a.segment_ids, ids_a), np.searchsorted(b.segment_ids, ids_b)
    counts = np.zeros((len(a.segment_ids), len(b.segment_ids)), dtype=np.int64)
    np.add.at(counts, (rows, cols), 1)
    text, comparable = relation(a, b)
    agreement, ari = float(np.mean(ids_a == ids_b)), float(adjusted_rand_score(ids_a, ids_b))
    return Comparison(a, b, text, comparable, int(ids_a.size), agreement, ari, counts)


def _summary_lines(c: Comparison, described: str) -> list[tuple[str, str]]:
    caveat = "" if c.ids_comparable else " (unrelated models: the same id need not be the same segment)"
    return [
        ("model A", f"{c.a.model_id}  k={len(c.a.segment_ids)}"),
        ("model B", f"{c.b.model_id}  k={len(c.b.segment_ids)}"),
        ("lineage", c.relation),
        ("customers", f"{c.customers:,}" + (f" ({described})" if described else "")),
        ("agreement", f"{c.agreement:.1%} in the same segment id{caveat}"),
        ("ARI", f"{c.ari:.3f} (adjusted Rand index: 1 the same segments, 0 chance)"),
    ]


def _share_rows(c: Comparison) -> list[dict]:
    """One row per segment id of either model: its name, customers and share in A and in B."""
    sizes = {"A": c.counts.sum(axis=1), "B": c.counts.sum(axis=0)}
    rows = []
    for segment in sorted({*c.a.segment_ids, *c.b.segment_ids}):
        row: dict = {"segment": segment}
        for side, tag in ((c.a, "A"), (c.b, "B")):
            at = side.segment_ids.index(segment) if segment in side.segment_ids else None
            size = None if at is None else int(sizes[tag][at])
            row[f"name in {tag}"] = "-" if at is None else side.segment_names[at]
            row[f"customers in {tag}"] = "-" if size is None else f"{size:,}"
            row[f"share in {tag}"] = "-" if size is None else _percent(size / max(c.customers, 1))
        rows.append(row)
    return rows


def _percent(share: float) -> str:
    """A share as a percentage, with a second decimal below 1% and above 99.9%, so that a few
    customers neither read 0.0% nor vanish into 100.0%.

    >>> _percent(0.2231), _percent(0.0003), _percent(0.0), _percent(0.9997), _percent(1.0)
    ('22.3%', '0.03%', '0.0%', '99.97%', '100.0%')
    """
    return f"{share:.2%}" if 0 < share < 0.01 or 0.999 < share < 1 else f"{share:.1%}"


def _transition_rows(c: Comparison, names: bool) -> list[dict]:
    """A row per A segment, a column per B segment (labelled with its name too when ``names``); cells
    ``customers (share of the A row)``, a dash for none."""
    shares = c.row_shares()
    return [
        {"A \\ B": c.a.label(a_id)}
        | {
            (c.b.label(b_id) if names else str(b_id)): (
                f"{c.counts[i, j]:,} ({_percent(shares[i, j])})" if c.counts[i, j] else "-"
            )
            for j, b_id in enumerate(c.b.segment_ids)
        }
        for i, a_id in enumerate(c.a.segment_ids)
    ]


def _text_table(rows: Sequence[dict]) -> list[str]:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    first, *rest = range(len(columns))

    def line(values) -> str:
        cells = [f"{values[first]!s:<{widths[first]}}", *(f"{values[i]!s:>{widths[i]}}" for i in rest)]
        return "  ".join(cells).rstrip()

    return [line(columns), *(line([r[c] for c in columns]) for r in rows)]


def format_comparison(c: Comparison, described: str = "") -> str:
    """The comparison as the terminal shows it."""
    lines = [f"{label:<10} {value}" for label, value in _summary_lines(c, described)]
    lines += [
        "",
        "transitions (rows: A's segments; columns: B's segment ids; customers, share of the A row)",
    ]
    lines += _text_table(_transition_rows(c, names=False))
    lines += ["", "segment shares"]
    lines += _text_table(_share_rows(c))
    return "\n".join(lines) + "\n"


def render_html(c: Comparison, described: str = "") -> str:
    """The comparison as one self-contained HTML page (no external assets)."""
    summary = [{"item": label, "value": value} for label, value in _summary_lines(c, described)]
    return html_page(
        f"Model comparison: {c.a.model_id} vs {c.b.model_id}",
        [
            _section("Summary", _table(summary)),
            _section(
                "Transitions",
                _note("Rows: model A's segments; columns: model B's; cells: customers (share of the A row)."),
                _table(_transition_rows(c, names=True)),
            ),
            _section("Segment shares", _table(_share_rows(c))),
        ],
    )
