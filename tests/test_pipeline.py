"""The model pipeline and scorer: preprocessing declared by a spec, batch scoring, readable profiles."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from model.fastpath import compile_preprocessor
from model.pipeline import build_pipeline, build_preprocessor, to_frame, usable_spec
from model.scoring import SegmentModel
from model.spec import FeatureSpec
from training.profiles import name_from_z, segment_profiles

SPEC = FeatureSpec(
    "customer_id",
    numeric=("spend", "orders", "recency_days", "age"),
    categorical=("country",),
    heavy_tailed=("spend", "orders"),
)


def two_groups(n=400, seed=0):
    """Big spenders and small spenders, with lognormal spend (a few whales in both) and no ages."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "spend": rng.lognormal(np.where(truth == 1, 6.0, 2.5), 0.9),
            "orders": rng.poisson(np.where(truth == 1, 15, 1)) + 1.0,
            "recency_days": rng.uniform(0, 400, n),
            "age": np.nan,
            "country": rng.choice(["NL", "US", None], n),
        }
    )
    return frame, truth


def fitted_model(algorithm="kmeans", seed=0):
    frame, truth = two_groups(seed=seed)
    spec, _ = usable_spec(SPEC, frame)
    pipeline = build_pipeline(spec, algorithm=algorithm, k=2, seed=seed).fit(to_frame(frame, spec))
    return SegmentModel(pipeline, spec, {"segment_names": ["one", "two"]}), frame, truth


def test_entirely_missing_and_constant_features_are_dropped_with_a_reason():
    frame, _ = two_groups()
    frame["recency_days"] = 7.0
    spec, dropped = usable_spec(SPEC, frame)
    assert spec.feature_names == ("spend", "orders", "country")
    assert set(dropped) == {"age", "recency_days"}
    assert "entirely missing" in dropped["age"]
    assert "constant" in dropped["recency_days"]


def test_nothing_usable_is_an_error_naming_the_features():
    frame = pd.DataFrame({"spend": [np.nan] * 3, "orders": [1.0] * 3})
    with pytest.raises(ValueError, match="spend"):
        usable_spec(FeatureSpec("id", numeric=("spend", "orders")), frame)


def test_preprocessed_matrix_is_finite_despite_gaps_and_unseen_categories():
    frame, _ = two_groups()
    frame.loc[:20, "spend"] = np.nan
    spec, _ = usable_spec(SPEC, frame)
    pre = build_preprocessor(spec).fit(to_frame(frame, spec))
    rows = [{"spend": None, "orders": 3, "country": "never-seen"}, {"spend": -5.0, "extra_key": 1}]
    out = pre.transform(to_frame(rows, spec))
    assert np.isfinite(out).all()
    assert out.shape[0] == 2


def test_heavy_tailed_groups_are_recovered_instead_of_one_giant_cluster():
    model, frame, truth = fitted_model()
    labels, _, _ = model.score_arrays(frame)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert min(np.bincount(labels, minlength=2)) / len(labels) > 0.3


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch", "gmm"])
def test_batch_scoring_equals_row_by_row_scoring(algorithm):
    model, frame, _ = fitted_model(algorithm)
    rows = frame.head(25).to_dict(orient="records")
    batch = model.score(rows)
    single = [model.score([row])[0] for row in rows]
    assert [a.segment_id for a in batch] == [a.segment_id for a in single]
    np.testing.assert_allclose([a.distance for a in batch], [a.distance for a in single])
    assert all(0.0 <= a.confidence <= 1.0 for a in batch)
    assert {a.segment_name for a in batch} <= {"one", "two"}


def test_assignment_distances_match_the_transformed_point_and_centroids():
    model, frame, _ = fitted_model()
    rows = frame.head(10).to_dict(orient="records")
    points = model.transform(rows)
    expected = np.linalg.norm(points[:, None, :] - model.centroids_scaled[None, :, :], axis=2)
    got = np.array([a.distances for a in model.score(rows)])
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert [a.segment_id for a in model.score(rows)] == expected.argmin(axis=1).tolist()
    assert model.centroids_scaled.shape == (2, len(model.transformed_feature_names))


def test_scoring_an_empty_batch_returns_nothing():
    model, _, _ = fitted_model()
    assert model.score([]) == []


def test_density_algorithms_cannot_become_a_served_model():
    with pytest.raises(ValueError, match="dbscan"):
        build_pipeline(SPEC, algorithm="dbscan")


def test_profiles_describe_each_segment_and_names_are_unique():
    model, frame, _ = fitted_model()
    spec = model.spec
    raw = to_frame(frame, spec)
    labels, _, _ = model.score_arrays(raw)
    profiles = segment_profiles(raw, labels, spec, 2)
    assert sum(p["size"] for p in profiles) == len(frame)
    assert len({p["name"] for p in profiles}) == 2
    big = max(profiles, key=lambda p: p["median"]["spend"])
    assert big["z_scores"]["spend"] > 0.5
    assert big["mode"]["country"] in {"NL", "US"}


def test_names_follow_what_stands_out():
    assert name_from_z({"recency_days": 1.5, "frequency": -1.0}) == "lapsed one-timers"
    assert name_from_z({"tenure_days": -1.2, "monetary_total": -0.6}) == "new low-spend"
    assert name_from_z({"frequency": 1.1, "avg_order_value": -0.9}) == "frequent bargain"
    assert name_from_z({"recency_days": 0.1, "frequency": -0.05}) == "average"


def test_numpy_fast_path_reproduces_the_pipeline():
    frame, _ = two_groups()
    frame.loc[:30, "spend"] = np.nan
    spec, _ = usable_spec(SPEC, frame)
    model = SegmentModel(build_pipeline(spec, k=2).fit(to_frame(frame, spec)), spec, {})
    fast = compile_preprocessor(model.pipeline[0])
    assert fast is not None
    rows = [
        *frame.head(40).to_dict(orient="records"),
        {},
        {"spend": "12.5", "orders": None, "country": "never-seen"},
        {"spend": -3.0, "orders": "not a number", "country": float("nan")},
        {"spend": 1e9, "orders": 2, "country": "NL", "unrelated": [1, 2]},
    ]
    expected = model.pipeline[0].transform(to_frame(rows, spec))
    np.testing.assert_allclose(fast.transform(rows), expected, atol=1e-12)
    np.testing.assert_allclose(model.transform(rows), model.transform(pd.DataFrame.from_records(rows)))
