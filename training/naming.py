"""Segment names from what sets a segment apart, one word per group of related columns.

What naming sees of a segment (:class:`Evidence`): per column, the z-score of the segment mean against
all rows (in the space the model sees, heavy-tailed columns in ``log1p``), the other segments' z-scores,
and the segment's and the population's medians in original units.

- **Facets, counted once.** Columns that say the same thing give one word: the spec's groups
  (``spec.group_of``, e.g. a policy's count and amount) and the roles recognised from a column's name
  (recency, tenure, frequency, spend, order value, refunds). A facet is named only when its columns
  agree (none at least ``AGREE`` the other way); its strongest column decides.
- **What sets it apart.** A column scores ``|z|`` (apart from the population) plus its distance to
  the nearest other segment on that column (apart from the others): a trait two segments share
  counts less than one only this segment has. The best ``max_words`` facets from ``THRESHOLD`` on
  are named, a role word (``"lapsed"``) or ``"high <label>"`` / ``"low <label>"`` with the spec's label.
- **Never against the profile.** "high"/"low" (and every role word) only when the segment's median
  of the deciding column is above/below the population median and no agreeing column's median is on
  the other side; "one-timers" only when a purchase-count column (integer-valued) has a median of at
  most 1, "frequent" only when it is above 1, else "infrequent"; "loyal" not for a lapsed or rarely
  buying segment. High recency is always named first ("lapsed"): it is what a retention campaign is for.

>>> name_from_z({"recency_days": 1.2, "frequency": -0.8, "monetary_total": -0.3})
'lapsed one-timers'
>>> name_from_z({"monetary_total": 1.5, "tenure_days": 0.9, "recency_days": -0.1})
'high-value loyal'
>>> name_from_z({"support_tickets": 2.0, "recency_days": 0.6})
'lapsed, high support tickets'
>>> name_from_z({"tenure_days": -1.4, "purchase_rate": 1.3, "recency_days": -1.0, "frequency": -0.3})
'active new'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from model.spec import FeatureSpec

__all__ = ["AGREE", "MAX_WORDS", "THRESHOLD", "Evidence", "join_words", "name_from_z", "name_words"]

# role -> (pattern searched in the lower-case column name, word when high, word when low)
ROLES: dict[str, tuple[str, str | None, str | None]] = {
    "recency": (r"recency|since_last|days_since(?!_first)", "lapsed", "active"),
    "tenure": (r"tenure|first_purchase|since_first", "loyal", "new"),
    "frequency": (r"frequency|orders|purchase_count|purchase_rate|n_purchases|num_purchases|visits",
                  "frequent", "one-time"),
    "value": (r"monetary|spend|revenue", "high-value", "low-spend"),
    "basket": (r"mean_order|avg_order|order_value|aov|basket", "big-basket", "bargain"),
    "refunds": (r"refund|return", "refund-prone", None),
}  # fmt: skip
WORD_ORDER = ("lapsed", "active", "new", "frequent", "infrequent", "one-time", "high-value", "low-spend",
              "big-basket", "bargain", "loyal", "refund-prone")  # fmt: skip
THRESHOLD = 0.25  # |z| below this is not worth a word: the segment is near average on that column
AGREE = 0.1  # a facet's columns with |z| from here on must point the same way for it to be named
MAX_WORDS = 2


@dataclass(frozen=True)
class Evidence:
    """What naming sees of one segment (column -> value); see the module docstring."""

    z: dict[str, float]
    others: tuple[dict[str, float], ...] = ()  # the other segments' z-scores
    medians: dict[str, float | None] | None = None  # this segment's, original units
    population: dict[str, float | None] | None = None  # all rows', original units
    counts: frozenset[str] | None = None  # integer-valued columns (None: guess from the name)


def _role(column: str) -> str | None:
    lowered = column.lower()
    return next((role for role, (pattern, *_) in ROLES.items() if re.search(pattern, lowered)), None)


def _facet(column: str, spec: FeatureSpec | None) -> tuple[str, str]:
    """``("group", name)`` for a column of a spec group, ``("role", role)``, or ``("column", name)``."""
    if spec is not None and spec.group_of(column) != column:
        return "group", spec.group_of(column)
    role = _role(column)
    return ("role", role) if role else ("column", column)


def _score(column: str, ev: Evidence) -> float:
    z = ev.z[column]
    apart = min((abs(z - other.get(column, 0.0)) for other in ev.others), default=0.0)
    return abs(z) + apart


def _direction(members: list[str], ev: Evidence) -> int:
    """+1/-1 when the facet's columns agree (0: contested or near average)."""
    signs = {1 if ev.z[c] > 0 else -1 for c in members if abs(ev.z[c]) >= AGREE}
    return signs.pop() if len(signs) == 1 else 0


def _median_side(column: str, ev: Evidence) -> int:
    """+1/-1 when the segment's median is above/below the population's, 0 when equal (or unknown: 0)."""
    mine, everyone = (ev.medians or {}).get(column), (ev.population or {}).get(column)
    if mine is None or everyone is None:
        return 0
    return (mine > everyone) - (mine < everyone)


def _profile_agrees(members: list[str], decider: str, direction: int, ev: Evidence) -> bool:
    """The medians do not contradict the word (no medians known: nothing to contradict)."""
    if ev.medians is None or ev.population is None:
        return True
    if _median_side(decider, ev) != direction:
        return False
    return all(_median_side(c, ev) != -direction for c in members if abs(ev.z[c]) >= AGREE)


def _counts(members: list[str], ev: Evidence) -> list[str]:
    if ev.counts is not None:
        return [c for c in members if c in ev.counts]
    return [c for c in members if "rate" not in c.lower()]  # no data: purchase counts by name


def _frequency_word(members: list[str], direction: int, ev: Evidence) -> str | None:
    counts = [c for c in _counts(members, ev) if (ev.medians or {}).get(c) is not None]
    if ev.medians is None:
        return "frequent" if direction > 0 else "one-time"
    if direction > 0:
        return "frequent" if all(ev.medians[c] > 1 for c in counts) else None
    return "one-time" if counts and all(ev.medians[c] <= 1 for c in counts) else "infrequent"


def _word(
    facet: tuple[str, str], members: list[str], direction: int, ev: Evidence, spec, roles: dict
) -> str | None:
    kind, name = facet
    if kind != "role":
        label = spec.label(name) if spec is not None else name
        return f"{'high' if direction > 0 else 'low'} {label.replace('_', ' ') if label == name else label}"
    if name == "frequency":
        return _frequency_word(members, direction, ev)
    if name == "tenure" and direction > 0 and (roles.get("recency") == 1 or roles.get("frequency") == -1):
        return None  # "loyal" is not said of a segment that has lapsed or buys rarely
    return ROLES[name][1] if direction > 0 else ROLES[name][2]


def name_words(ev: Evidence, spec: FeatureSpec | None = None, max_words: int = MAX_WORDS) -> list[dict]:
    """The words of a segment's name, strongest first (high recency always first), each with the evidence
    behind it."""
    facets: dict[tuple[str, str], list[str]] = {}
    for column in ev.z:
        facets.setdefault(_facet(column, spec), []).append(column)
    roles = {name: _direction(cols, ev) for (kind, name), cols in facets.items() if kind == "role"}
    candidates = []
    for facet, members in facets.items():
        decider = max(members, key=lambda c: (_score(c, ev), c))
        direction = _direction(members, ev)
        if abs(ev.z[decider]) < THRESHOLD or direction == 0 or ev.z[decider] * direction < 0:
            continue
        if not _profile_agrees(members, decider, direction, ev):
            continue
        word = _word(facet, members, direction, ev, spec, roles)
        if word:
            lapsed = facet == ("role", "recency") and direction > 0  # always named, first
            candidates.append((not lapsed, -_score(decider, ev), word, facet, decider, direction))
    chosen = sorted(candidates)[:max_words]
    return [_record(word, facet, decider, direction, ev) for _, _, word, facet, decider, direction in chosen]


def _record(word: str, facet: tuple[str, str], column: str, direction: int, ev: Evidence) -> dict:
    return {
        "word": word, "kind": facet[0], "facet": facet[1], "column": column,
        "direction": "high" if direction > 0 else "low", "z": round(float(ev.z[column]), 3),
        "median": (ev.medians or {}).get(column), "population_median": (ev.population or {}).get(column),
    }  # fmt: skip


def join_words(words: list[dict]) -> str:
    """The name: role words as one phrase in ``WORD_ORDER`` ("lapsed one-timers"), placed where its
    strongest word ranks, and the other phrases in the order given (strongest first).

    >>> join_words([{"word": "high policy A", "kind": "group"}, {"word": "lapsed", "kind": "role"}])
    'high policy A, lapsed'
    """
    roles = sorted((w["word"] for w in words if w["kind"] == "role"), key=WORD_ORDER.index)
    if roles and roles[-1] == "one-time":
        roles[-1] = "one-timers"
    phrases: list[str] = []
    for word in words:
        if word["kind"] != "role":
            phrases.append(word["word"])
        elif roles:
            phrases.append(" ".join(roles))
            roles = []
    return ", ".join(phrases) or "average"


def name_from_z(z_scores: dict[str, float], max_words: int = MAX_WORDS, medians: dict | None = None) -> str:
    """A name from z-scores alone (no other segments, no population medians): the doctests' shorthand."""
    return join_words(name_words(Evidence(dict(z_scores), medians=medians), max_words=max_words))
