"""Segments people can read: a profile per segment and a name generated from it.

A profile gives the segment's size and share, its centre in original units (per-segment median and
mean of every numeric feature, the most common value of every categorical one), and the features that
stand out most, as z-scores of the segment mean against all customers. Heavy-tailed features are
compared in ``log1p`` space, like the model sees them, so one whale does not dominate the z-score.

The name comes from what sets the segment apart from the population and from the other segments,
each group of related columns counted once, with the spec's labels, and never against the profile
(see :mod:`training.naming`); ``name_basis`` keeps the evidence behind every word. Names are unique
within a model: colliding names get one more word, then a number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.pipeline import log1p_clipped
from model.spec import FeatureSpec
from training.naming import MAX_WORDS, Evidence, join_words, name_from_z, name_words

__all__ = ["name_from_z", "segment_profiles", "unique_names"]


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


def segment_profiles(
    frame: pd.DataFrame, labels: np.ndarray, spec: FeatureSpec, k: int, people: FeatureSpec | None = None
) -> list[dict]:
    """One profile dict per segment 0..k-1 (empty segments get size 0), with a unique ``name``.

    ``people`` is the spec whose labels and groups word the names (default ``spec``; training passes
    the source spec, whose group labels survive dropping a column).
    """
    labels = np.asarray(labels)
    analysis = _analysis_space(frame, spec)
    mean, std = analysis.mean(), analysis.std(ddof=0).replace(0.0, np.nan)
    population = {n: _number(frame[n].median()) for n in spec.numeric}
    counts = frozenset(n for n in spec.numeric if _integer_valued(frame[n]))
    profiles = []
    for segment in range(k):
        members = labels == segment
        part = frame[members]
        z = ((analysis[members].mean() - mean) / std).fillna(0.0)
        top = z.reindex(z.abs().sort_values(ascending=False).index)[:4]
        profiles.append({
            "segment_id": segment,
            "size": int(members.sum()),
            "share": round(float(members.mean()), 4) if len(labels) else 0.0,
            "median": {n: _number(part[n].median()) for n in spec.numeric},
            "mean": {n: _number(part[n].mean()) for n in spec.numeric},
            "mode": {n: _mode(part[n]) for n in spec.categorical},
            "z_scores": {n: round(float(v), 3) for n, v in z.items()},
            "top_features": [{"feature": n, "z": round(float(v), 3)} for n, v in top.items()],
        })  # fmt: skip
    evidence = _evidence(profiles, population, counts)
    for profile, ev in zip(profiles, evidence, strict=True):
        profile["name_basis"] = name_words(ev, people or spec)
        profile["name"] = join_words(profile["name_basis"])
    _disambiguate(profiles, evidence, people or spec)
    return profiles


def _evidence(profiles: list[dict], population: dict, counts: frozenset[str]) -> list[Evidence]:
    """Each segment's evidence, set against the other non-empty segments."""
    filled = [p for p in profiles if p["size"]]
    return [
        Evidence(
            p["z_scores"], tuple(o["z_scores"] for o in filled if o is not p), p["median"], population, counts
        )
        for p in profiles
    ]


def _disambiguate(profiles: list[dict], evidence: list[Evidence], spec: FeatureSpec) -> None:
    """Colliding names first get one more word from their profile, then a number if still equal."""
    names = [p["name"] for p in profiles]
    for profile, ev in zip(profiles, evidence, strict=True):
        if names.count(profile["name"]) > 1:
            profile["name_basis"] = name_words(ev, spec, MAX_WORDS + 1)
            profile["name"] = join_words(profile["name_basis"])
    for profile, name in zip(profiles, unique_names([p["name"] for p in profiles]), strict=True):
        profile["name"] = name


def _integer_valued(column: pd.Series) -> bool:
    """Whether every known value is a whole number (counts: "one-timers" is decided on these)."""
    values = column.dropna().to_numpy(dtype=float)
    return bool(len(values)) and bool(np.all(values == np.round(values)))


def _number(value: float) -> float | None:
    return None if pd.isna(value) else round(float(value), 4)


def _mode(column: pd.Series) -> str | None:
    counts = column.dropna().astype(str).value_counts()
    return None if counts.empty else str(counts.index[0])
