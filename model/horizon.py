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
    # |x - own|² - |x - other|² = w·x + |own|² - |other|² with w = 2 (other - own); over the box with
    # centre m and half-widths h its largest value is w·m + |w|·h. Rows are taken one segment at a
    # time, so each is two small (rows x d) by (d x k) products.
    centre, half = (now + later) / 2.0, np.abs(later - now) / 2.0
    norms = np.einsum("ij,ij->i", centroids, centroids)
    reach = np.maximum(np.einsum("ij,ij->i", now, now), np.einsum("ij,ij->i", later, later))
    stays = np.zeros(len(index), dtype=bool)
    for own in range(len(centroids)):
        rows = np.flatnonzero(index == own)
        if not rows.size:
            continue
        weight = 2.0 * (centroids - centroids[own])  # k x d; its own row is zero
        worst = (
            np.einsum("ij,kj->ik", centre[rows], weight)
            + np.einsum("ij,kj->ik", half[rows], np.abs(weight))
            + (norms[own] - norms)[None, :]
        )
        slack = _RELATIVE_SLACK * (1.0 + reach[rows, None] + norms[own] + norms[None, :])
        beaten = worst >= -slack
        beaten[:, own] = False
        stays[rows] = ~beaten.any(axis=1)
    return stays
