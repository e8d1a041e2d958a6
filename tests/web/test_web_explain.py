"""'What pushed this customer there': the per-feature split of the margin to the runner-up segment."""

from __future__ import annotations

import numpy as np
import pytest
from web_helpers import LAPSED, LOYAL

from deploy.web.explain import pushes, runner_up, source_feature


def test_pushes_add_up_to_the_squared_distance_margin():
    rng = np.random.default_rng(4)
    centroids, point = rng.normal(size=(4, 5)), rng.normal(size=5)
    columns = ["heavy__a", "heavy__b", "numeric__missingindicator_b", "categorical__c_x", "categorical__c_y"]
    d = np.linalg.norm(centroids - point, axis=1)
    chosen, other = int(d.argmin()), runner_up(d, int(d.argmin()))
    shares = dict(pushes(point, centroids, chosen, other, columns, ["a", "b", "c"]))
    assert set(shares) == {"a", "b", "c"}
    assert sum(shares.values()) == pytest.approx(d[other] ** 2 - d[chosen] ** 2)
    assert sum(shares.values()) > 0, "the runner-up is farther away"


def test_runner_up_is_the_nearest_other_segment():
    assert runner_up([3.0, 1.0, 2.0], 1) == 2
    assert runner_up([5.0], 0) is None


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("heavy__visits", "visits"),
        ("numeric__missingindicator_recency_days", "recency_days"),
        ("categorical__country_missing", "country"),
        ("heavy__visits_total", "visits_total"),
        ("numeric__unrelated", None),
    ],
)
def test_transformed_columns_map_back_to_their_feature(column, expected):
    assert source_feature(column, ["visits", "visits_total", "recency_days", "country"]) == expected


def test_service_explanation_points_at_the_features_that_differ(service):
    (loyal,) = service.score([LOYAL])
    explained = service.explain(LOYAL, loyal)
    assert {p.feature for p in explained} == set(service.model.spec.feature_names)
    margin = loyal.distances[runner_up(loyal.distances, loyal.segment_id)] ** 2 - loyal.distance**2
    assert sum(p.amount for p in explained) == pytest.approx(margin)
    (lapsed,) = service.score([LAPSED])
    top = service.explain(LAPSED, lapsed)[0]
    assert top.amount > 0
    assert top.value == LAPSED[top.feature]
