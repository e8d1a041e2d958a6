"""What pushed a customer into its segment rather than the runner-up.

A centroid model picks the segment whose centroid is nearest in the transformed space. The squared
distance is a sum over transformed columns, so the margin by which the chosen segment ``c`` beat the
runner-up ``r`` splits exactly into one term per column::

    d_r^2 - d_c^2 = sum_j [(x_j - r_j)^2 - (x_j - c_j)^2]

A positive term pulled the customer towards ``c``; a negative one towards ``r``. Columns are summed
back to the feature they came from (one-hot columns to their categorical feature, missing-value
indicators to their feature), so the page can say "frequency pushed towards this segment".

>>> import numpy as np
>>> x = np.array([1.0, 0.0]); centroids = np.array([[1.0, 0.0], [0.0, 0.0]])
>>> pushes(x, centroids, 0, 1, ["numeric__spend", "numeric__age"], ["spend", "age"])
[('spend', 1.0), ('age', 0.0)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pushes", "runner_up", "source_feature"]


def runner_up(distances: Sequence[float], chosen: int) -> int | None:
    """The nearest segment other than ``chosen`` (None with a single segment)."""
    order = [s for s in np.argsort(np.asarray(distances), kind="stable").tolist() if s != chosen]
    return order[0] if order else None


def source_feature(column: str, features: Sequence[str]) -> str | None:
    """The feature a transformed column (``heavy__frequency``, ``categorical__gender_F``) came from.

    >>> source_feature("categorical__gender_F", ["age", "gender"])
    'gender'
    >>> source_feature("numeric__missingindicator_age", ["age", "gender"])
    'age'
    """
    bare = column.split("__", 1)[-1].removeprefix("missingindicator_")
    # Longest names first, so "visits_total" is never taken for "visits".
    for name in sorted(features, key=len, reverse=True):
        if bare == name or bare.startswith(name + "_"):
            return name
    return None


def pushes(
    point: np.ndarray,
    centroids: np.ndarray,
    chosen: int,
    other: int,
    columns: Sequence[str],
    features: Sequence[str],
) -> list[tuple[str, float]]:
    """Per-feature share of ``d_other^2 - d_chosen^2``, largest push towards ``chosen`` first.

    The values add up to the whole margin; features with no transformed column get nothing.
    """
    terms = (point - centroids[other]) ** 2 - (point - centroids[chosen]) ** 2
    totals = dict.fromkeys(features, 0.0)
    for column, term in zip(columns, terms.tolist(), strict=True):
        name = source_feature(column, features)
        if name is not None:
            totals[name] += term
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)
