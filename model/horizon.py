"""How long a quiet customer provably keeps its segment: what lets an ageing tick skip most customers.

A daily tick used to re-score every stored customer, although almost all of them stay where they
are for weeks. Between its events a customer's transformed features move along a path on which each
coordinate is monotone in time (``model.feature_columns.time_columns``: recency and tenure grow, the
purchase rate and the decayed spend shrink; imputation, ``log1p`` and scaling keep the order; every
other column is constant). So between two times ``a < b`` the point stays inside the axis-aligned
box spanned by its positions at ``a`` and ``b``. For a nearest-centroid model, "nearer centroid ``i``
than centroid ``j``" is a half-space (``|x - c_i|² - |x - c_j|²`` is linear in ``x``), so the box is
inside segment ``i``'s cell exactly when, for every other ``j``, that linear function is negative at
the box's worst corner, which is read off coordinate by coordinate. Then the customer keeps segment
``i`` at every time in ``[a, b]``, and a tick in that span may skip it: the output is the same as
re-scoring it (``tests/test_horizon.py`` checks the bound against brute force).

>>> centroids = np.array([[0.0, 0.0], [10.0, 0.0]])
>>> now, later = np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[3.0, 1.0], [6.0, 0.0]])
>>> stays_nearest(now, later, np.array([0, 0]), centroids).tolist()
[True, False]
"""

from __future__ import annotations

import numpy as np

__all__ = ["stays_nearest"]

# Slack on the squared-distance difference, relative to the squared norms involved: a box whose corner
# is this close to another segment's half-space is treated as crossing it, so floating-point rounding
# in the scorer's own distance arithmetic can never turn a "stays" into a different argmin.
_RELATIVE_SLACK = 1e-9


def stays_nearest(now: np.ndarray, later: np.ndarray, index: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Whether every point of the box spanned by ``now[r]`` and ``later[r]`` is strictly nearer
    centroid ``index[r]`` than every other centroid (n x d points, k x d centroids)."""
    low, high = np.minimum(now, later), np.maximum(now, later)
    own = centroids[index]  # n x d
    own_norm = np.einsum("ij,ij->i", own, own)
    reach = np.maximum(np.einsum("ij,ij->i", low, low), np.einsum("ij,ij->i", high, high))
    stays = np.ones(len(index), dtype=bool)
    for j, other in enumerate(centroids):
        # |x - own|² - |x - other|² = 2 x·(other - own) + |own|² - |other|², maximised over the box
        weight = 2.0 * (other[None, :] - own)
        worst = np.maximum(low * weight, high * weight).sum(axis=1) + own_norm - other @ other
        slack = _RELATIVE_SLACK * (1.0 + reach + own_norm + other @ other)
        stays &= (index == j) | (worst < -slack)
    return stays
