"""Published segment ids (manifest ``segment_ids``): every scoring path returns ids, names and profiles
follow them, and a manifest without them scores exactly as before."""

from __future__ import annotations

import numpy as np
import pytest

from consumer.metrics import ScorerMetrics
from model.errors import ArtifactError
from model.monitor import DriftMonitor, DriftThresholds, WindowSpec
from model.online import OnlineKMeans
from model.pipeline import build_pipeline, to_frame
from model.scoring import SegmentModel
from model.spec import FeatureSpec

SPEC = FeatureSpec("id", numeric=("x", "y"))
CENTRES = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]


@pytest.fixture(scope="module")
def pipeline():
    rng = np.random.default_rng(0)
    rows = [{"x": x + rng.normal(), "y": y + rng.normal()} for x, y in CENTRES for _ in range(50)]
    return build_pipeline(SPEC, k=3, seed=0).fit(to_frame(rows, SPEC))


@pytest.fixture(scope="module")
def published(pipeline):
    """The pipeline published as ids 7, 3, 12 (a lineage's), with names and profiles by cluster index."""
    manifest = {
        "model_id": "child",
        "segment_ids": [7, 3, 12],
        "segment_names": ["first", "second", "third"],
        "profiles": [{"segment_id": s, "name": n} for s, n in ((7, "first"), (3, "second"), (12, "third"))],
    }
    return SegmentModel(pipeline, SPEC, manifest)


def _points():
    return [{"x": x, "y": y} for x, y in CENTRES]


def _columns(rows):
    return {name: np.array([r[name] for r in rows], dtype=float) for name in SPEC.numeric}


def test_every_scoring_path_returns_the_published_ids(pipeline, published):
    rows = _points()
    indices = pipeline.predict(to_frame(rows, SPEC))
    expected = [published.segment_ids[i] for i in indices]
    assert sorted(expected) == [3, 7, 12]

    assignments = published.score(rows)
    assert [a.segment_id for a in assignments] == expected
    for a, index in zip(assignments, indices, strict=True):
        assert a.segment_name == published.segment_name(a.segment_id) == published.segment_names[index]
        assert a.distance == a.distances[published.index_of(a.segment_id)] == min(a.distances)
        assert published.profile(a.segment_id)["segment_id"] == a.segment_id
    assert published.score_arrays(rows)[0].tolist() == expected
    assert [a.segment_id for a in published.score_partition(rows, None)[0]] == expected
    assert published.score_columns(_columns(rows), len(rows))[0].tolist() == expected, "ageing ticks"
    assert published.indices_of(expected).tolist() == indices.tolist()
    assert published.ids_of(indices).tolist() == expected


def test_the_online_model_publishes_the_base_model_s_ids(published):
    online = OnlineKMeans(published, learning_rate=0.001)
    rows = _points()
    expected = published.score_arrays(rows)[0].tolist()
    assignments, checkpoint = online.score_partition(rows, None)
    assert [a.segment_id for a in assignments] == expected
    assert [a.segment_name for a in assignments] == [published.segment_name(s) for s in expected]
    assert online.score_columns(_columns(rows), len(rows), checkpoint)[0].tolist() == expected
    assert online.segment_ids == published.segment_ids


def test_unknown_ids_are_errors_that_name_them(published):
    with pytest.raises(KeyError, match=r"segment id 4 is not one of model child's \[7, 3, 12\]"):
        published.segment_name(4)
    with pytest.raises(KeyError, match="segment id 0 "):
        published.indices_of([7, 0])
    assert published.profile(4) == {}


def test_a_manifest_without_segment_ids_scores_as_before(pipeline):
    legacy = SegmentModel(pipeline, SPEC, {"model_id": "old", "segment_names": ["a", "b", "c"]})
    rows = _points()
    assert legacy.segment_ids == [0, 1, 2]
    assert legacy.lineage == ["old"]
    assert legacy.score_arrays(rows)[0].tolist() == pipeline.predict(to_frame(rows, SPEC)).tolist()
    assert [a.segment_name for a in legacy.score(rows)] == [
        ["a", "b", "c"][i] for i in pipeline.predict(to_frame(rows, SPEC))
    ]


@pytest.mark.parametrize("ids", [[0, 1], [0, 1, 1], [0, -1, 2], [0, 1, 40_000], "012", [0, 1, 2.0]])
def test_malformed_segment_ids_are_refused_naming_them(pipeline, ids):
    with pytest.raises(ArtifactError, match="segment_ids"):
        SegmentModel(pipeline, SPEC, {"model_id": "bad", "segment_ids": ids})


def test_the_drift_monitor_and_its_gauges_speak_ids():
    manifest = {"segment_distribution": [0.5, 0.3, 0.2], "segment_ids": [7, 3, 12]}
    monitor = DriftMonitor.from_manifest(
        manifest, thresholds=DriftThresholds(min_samples=1), window=WindowSpec(max_count=100)
    )
    monitor.observe([7] * 5 + [3] * 3 + [12] * 2)
    report = monitor.snapshot()
    assert report.window_shares == pytest.approx((0.5, 0.3, 0.2))
    assert report.psi == pytest.approx(0.0, abs=1e-9)
    assert report.segment_ids == (7, 3, 12)
    with pytest.raises(ValueError, match=r"segment id 1 is not one of the monitored \[7, 3, 12\]"):
        monitor.observe([1])

    metrics = ScorerMetrics()
    metrics.set_drift(report)
    sample = metrics.registry.get_sample_value
    assert sample("segmenter_segment_share", {"segment": "3"}) == pytest.approx(0.3)
    assert sample("segmenter_segment_expected_share", {"segment": "12"}) == pytest.approx(0.2)
    assert sample("segmenter_segment_share", {"segment": "1"}) is None
