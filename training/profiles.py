"""Segments people can read: a profile per segment and a name generated from it.

A profile gives the segment's size and share, its centre in original units (per-segment median and
mean of every numeric feature, the most common value of every categorical one), and the features that
stand out most, as z-scores of the segment mean against all customers. Heavy-tailed features are
compared in ``log1p`` space, like the model sees them, so one whale does not dominate the z-score.

Names come from the standing-out features whose role is recognised from the feature name (recency,
tenure, frequency, spend, order value, refunds), e.g. "lapsed one-timers" or "high-value loyal";
other features give "high <feature>" / "low <feature>". Names are unique within a model, and they
never contradict the profile:

- a segment whose recency stands out high is always named "lapsed" (first word), however strongly
  other features stand out: it is the segment a retention campaign is for;
- a role is named only when its features agree (none of them at least ``AGREE`` the other way):
  frequency low but purchase rate high (one purchase in a short life) gives no frequency word;
- "loyal" (long tenure) is not said of a segment that has lapsed or buys rarely;
- "one-timers" only when the segment's median purchase count is at most 1 (else "infrequent").

>>> name_from_z({"recency_days": 1.2, "frequency": -0.8, "monetary_total": -0.3})
'lapsed one-timers'
>>> name_from_z({"monetary_total": 1.5, "tenure_days": 0.9, "recency_days": -0.1})
'high-value loyal'
>>> name_from_z({"support_tickets": 2.0})
'high support tickets'
>>> name_from_z({"tenure_days": -1.4, "purchase_rate": 1.3, "recency_days": -1.0, "frequency": -0.3})
'active new'
>>> name_from_z({"avg_order_value": 1.2, "tenure_days": 0.9, "monetary_total": 0.8, "recency_days": 0.5})
'lapsed big-basket'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.pipeline import log1p_clipped
from model.spec import FeatureSpec

__all__ = ["name_from_z", "segment_profiles", "unique_names"]

# (role, keywords in the feature name, word when high, word when low); the order is the word order.
ROLES = (
    ("recency", ("recency", "days_since"), "lapsed", "active"),
    ("new", ("tenure", "first_purchase", "customer_age"), None, "new"),
    (
        "frequency",
        ("frequency", "orders", "purchase_count", "purchase_rate", "n_purchases", "visits"),
        "frequent",
        "one-time",
    ),
    ("value", ("monetary", "spend", "revenue", "total"), "high-value", "low-spend"),
    ("basket", ("mean_order", "avg_order", "order_value", "aov", "basket"), "big-basket", "bargain"),
    ("loyal", ("tenure", "first_purchase", "customer_age"), "loyal", None),
    ("refunds", ("refund", "return"), "refund-prone", None),
)
THRESHOLD = 0.25  # |z| below this is not worth a word: the segment is near average on that feature
AGREE = 0.1  # a role's features with |z| from here on must point the same way for the role to be named
MAX_WORDS = 2


def _role(feature: str) -> list[int]:
    lowered = feature.lower()
    return [i for i, (_, keys, _, _) in enumerate(ROLES) if any(key in lowered for key in keys)]


_RECENCY, _FREQUENCY, _LOYAL = (
    i for i, (role, *_) in enumerate(ROLES) if role in ("recency", "frequency", "loyal")
)


def _directions(z_scores: dict[str, float]) -> dict[int, set[int]]:
    """Per role: the signs (+1/-1) of its features away from average (two signs: the role is contested)."""
    out: dict[int, set[int]] = {}
    for feature, z in z_scores.items():
        if abs(z) >= AGREE:
            for i in _role(feature):
                out.setdefault(i, set()).add(1 if z > 0 else -1)
    return out


def _allowed(role: int, directions: dict[int, set[int]]) -> bool:
    if len(directions.get(role, ())) > 1:
        return False  # its features disagree: any word would contradict one of them
    if role == _LOYAL:
        return directions.get(_RECENCY) != {1} and directions.get(_FREQUENCY) != {-1}
    return True


def name_from_z(z_scores: dict[str, float], max_words: int = MAX_WORDS, medians: dict | None = None) -> str:
    """A short name from a segment's z-scores (feature -> z), strongest recognised features first.

    ``medians`` (feature -> the segment's median), when given, decide "one-timers" vs "infrequent".
    """
    directions = _directions(z_scores)
    words: dict[int, str] = {}
    recency = [z for feature, z in z_scores.items() if _RECENCY in _role(feature)]
    if directions.get(_RECENCY) == {1} and max(recency) >= THRESHOLD:
        words[_RECENCY] = ROLES[_RECENCY][2]  # high recency is always named
    generic: list[tuple[float, str]] = []
    for feature, z in sorted(z_scores.items(), key=lambda item: -abs(item[1])):
        if abs(z) < THRESHOLD or len(words) + len(generic) >= max_words:
            continue
        choices = [(i, ROLES[i][2] if z > 0 else ROLES[i][3]) for i in _role(feature)]
        choices = [(i, w) for i, w in choices if w and i not in words and _allowed(i, directions)]
        if choices:
            words[choices[0][0]] = choices[0][1]
        elif not _role(feature):
            generic.append((abs(z), f"{'high' if z > 0 else 'low'} {feature.replace('_', ' ')}"))
    ordered = [words[i] for i in sorted(words)] + [w for _, w in generic]
    if not ordered:
        return "average"
    if words.get(_FREQUENCY) == "one-time" and not _one_purchase(medians):
        ordered[ordered.index("one-time")] = "infrequent"
    if ordered[-1] == "one-time":
        ordered[-1] = "one-timers"
    return " ".join(ordered)


def _one_purchase(medians: dict | None) -> bool:
    """Whether the segment's median count of purchases/orders is at most 1 (unknown: assume so)."""
    if not medians:
        return True
    counts = [v for n, v in medians.items() if _FREQUENCY in _role(n) and "rate" not in n and v is not None]
    return all(v <= 1 for v in counts)


def unique_names(names: list[str]) -> list[str]:
    """Names with ``" 2"``, ``" 3"`` ... appended to repeats, so every segment's name is unique.

    >>> unique_names(["lapsed", "active", "lapsed"])
    ['lapsed', 'active', 'lapsed 2']
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return out


def _analysis_space(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    numeric = frame[list(spec.numeric)].astype(float)
    for name in spec.heavy_tailed:
        numeric[name] = log1p_clipped(numeric[name].to_numpy())
    return numeric


def segment_profiles(frame: pd.DataFrame, labels: np.ndarray, spec: FeatureSpec, k: int) -> list[dict]:
    """One profile dict per segment 0..k-1 (empty segments get size 0), with a unique ``name``."""
    labels = np.asarray(labels)
    analysis = _analysis_space(frame, spec)
    mean, std = analysis.mean(), analysis.std(ddof=0).replace(0.0, np.nan)
    profiles = []
    for segment in range(k):
        members = labels == segment
        part = frame[members]
        z = ((analysis[members].mean() - mean) / std).fillna(0.0)
        top = z.reindex(z.abs().sort_values(ascending=False).index)[:4]
        profile = {
            "segment_id": segment,
            "size": int(members.sum()),
            "share": round(float(members.mean()), 4) if len(labels) else 0.0,
            "median": {n: _number(part[n].median()) for n in spec.numeric},
            "mean": {n: _number(part[n].mean()) for n in spec.numeric},
            "mode": {n: _mode(part[n]) for n in spec.categorical},
            "z_scores": {n: round(float(v), 3) for n, v in z.items()},
            "top_features": [{"feature": n, "z": round(float(v), 3)} for n, v in top.items()],
        }
        profiles.append(profile | {"name": _name(profile)})
    _disambiguate(profiles)
    return profiles


def _disambiguate(profiles: list[dict]) -> None:
    """Colliding names first get one more word from their profile, then a number if still equal."""
    names = [p["name"] for p in profiles]
    for profile in profiles:
        if names.count(profile["name"]) > 1:
            profile["name"] = _name(profile, MAX_WORDS + 1)
    for profile, name in zip(profiles, unique_names([p["name"] for p in profiles]), strict=True):
        profile["name"] = name


def _name(profile: dict, max_words: int = MAX_WORDS) -> str:
    return name_from_z(profile["z_scores"], max_words, profile["median"])


def _number(value: float) -> float | None:
    return None if pd.isna(value) else round(float(value), 4)


def _mode(column: pd.Series) -> str | None:
    counts = column.dropna().astype(str).value_counts()
    return None if counts.empty else str(counts.index[0])
