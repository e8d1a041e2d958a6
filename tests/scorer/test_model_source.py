"""Hot reload between batches: a new artifact is picked up, a broken one refused while the old serves."""

from __future__ import annotations

import logging
import shutil

import pytest
from malicious_artifact import plant_malicious_model

from consumer.metrics import ScorerMetrics
from consumer.model_source import ModelSource
from model.artifact import load_artifact, sign_artifact
from model.errors import ArtifactError, ArtifactIntegrityError, ArtifactSignatureError
from model.features import EVENT_FEATURE_SPEC
from model.signing import ModelKey
from model.synthetic import synthetic_events
from training.sources import from_events
from training.train import TrainOptions, train

SCHEMA = EVENT_FEATURE_SPEC.schema_hash()


@pytest.fixture
def live_dir(model_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    return live


def _source(directory, events):
    return ModelSource(
        directory,
        expected_schema_hash=SCHEMA,
        check_interval_s=0,
        on_reload=lambda r, d: events.append((r, d)),
    )


def _train_newer(out, seed: int, signing_key=None, previous=None) -> None:
    """Another small model into ``out``: what a retrain drops beside the live one (with ``previous``,
    a model directory, a retrain of that model: its child, which a scorer serving it accepts)."""
    data = from_events(synthetic_events(800, seed=seed), "synthetic:800")
    parent = None if previous is None else load_artifact(previous)
    options = TrainOptions(k_max=4, stability_rounds=2, compare_sample=2000, report=False)
    train(data, out, options, signing_key=signing_key, previous=parent)


def test_a_new_artifact_is_loaded_between_batches(live_dir, tmp_path):
    events: list = []
    source = _source(live_dir, events)
    first_id = source().model_id
    assert not source.maybe_reload(), "nothing changed yet"

    newer = tmp_path / "newer"
    _train_newer(newer, seed=3, previous=live_dir)
    for name in ("model.joblib", "manifest.json"):  # what training does: model first, manifest last
        shutil.copy(newer / name, live_dir / name)
    assert not source.maybe_reload(), "a change is loaded once the files look the same twice"
    assert source.maybe_reload()
    assert source().model_id != first_id
    assert events == [("loaded", first_id), ("loaded", source().model_id)]


def test_a_check_between_the_model_and_the_manifest_writes_refuses_nothing(live_dir, tmp_path):
    events: list = []
    source = _source(live_dir, events)
    first_id = source().model_id
    newer = tmp_path / "newer"
    _train_newer(newer, seed=4, previous=live_dir)

    shutil.copy(newer / "model.joblib", live_dir / "model.joblib")  # the manifest is not there yet
    assert not source.maybe_reload()
    shutil.copy(newer / "manifest.json", live_dir / "manifest.json")
    assert not source.maybe_reload()
    assert source.maybe_reload()
    assert events == [("loaded", first_id), ("loaded", source().model_id)], "no refusal on the way"
    assert source().model_id != first_id


def test_a_tampered_artifact_is_refused_and_the_old_model_keeps_serving(live_dir):
    events: list = []
    source = _source(live_dir, events)
    serving = source()
    data = bytearray((live_dir / "model.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (live_dir / "model.joblib").write_bytes(bytes(data))
    assert not source.maybe_reload()
    assert not source.maybe_reload()
    assert source() is serving
    assert events[-1] == ("refused", "integrity")
    assert not source.maybe_reload(), "the same broken files are not retried"


def test_a_broken_artifact_at_start_is_a_clear_error(live_dir):
    (live_dir / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        ModelSource(live_dir, expected_schema_hash=SCHEMA)
    shutil.rmtree(live_dir)
    with pytest.raises(ArtifactError, match="train a model first"):
        ModelSource(live_dir, expected_schema_hash=SCHEMA)


KEY = ModelKey(b"scorer-test-model-key-0123456789")


def _signed_source(directory, metrics, key=KEY):
    return ModelSource(
        directory,
        expected_schema_hash=SCHEMA,
        check_interval_s=0,
        on_reload=metrics.record_model_reload,
        model_key=key,
    )


def test_a_malicious_artifact_is_refused_at_reload_unexecuted_when_a_key_is_set(live_dir, tmp_path):
    sign_artifact(live_dir, KEY)
    metrics = ScorerMetrics()
    source = _signed_source(live_dir, metrics)
    serving = source()
    marker = tmp_path / "pwned"

    plant_malicious_model(live_dir, marker)
    assert not source.maybe_reload(), "first look at the changed files"
    assert not source.maybe_reload(), "settled, verified, refused"
    assert source() is serving, "the old model keeps serving"
    assert not marker.exists(), "the pickle must never be unpickled"
    sample = metrics.registry.get_sample_value
    assert sample("segmenter_model_refusals_total", {"reason": "signature"}) == 1
    assert sample("segmenter_model_reloads_total", {"result": "refused"}) == 1
    assert sample("segmenter_model_reloads_total", {"result": "loaded"}) == 1, "only the start"


def test_a_signed_new_artifact_is_loaded_and_an_unsigned_one_refused(live_dir, tmp_path):
    sign_artifact(live_dir, KEY)
    metrics = ScorerMetrics()
    source = _signed_source(live_dir, metrics)
    first_id = source().model_id
    newer = tmp_path / "newer"
    _train_newer(newer, seed=3, previous=live_dir)

    for name in ("model.joblib", "manifest.json"):  # unsigned: model.sig still signs the old files
        shutil.copy(newer / name, live_dir / name)
    source.maybe_reload()
    source.maybe_reload()
    assert source().model_id == first_id
    assert metrics.registry.get_sample_value("segmenter_model_refusals_total", {"reason": "signature"}) == 1

    _train_newer(newer, seed=3, signing_key=KEY, previous=live_dir)
    for name in ("model.joblib", "model.sig", "manifest.json"):
        shutil.copy(newer / name, live_dir / name)
    assert not source.maybe_reload()
    assert source.maybe_reload()
    assert source().model_id != first_id


def test_an_unsigned_artifact_at_start_is_refused_when_a_key_is_set(live_dir, tmp_path):
    marker = tmp_path / "pwned"
    plant_malicious_model(live_dir, marker)
    with pytest.raises(ArtifactSignatureError, match="unsigned"):
        _signed_source(live_dir, ScorerMetrics())
    assert not marker.exists()


def _reload_from(source, directory, live_dir) -> bool:
    """Copy the artifact in ``directory`` over ``live_dir`` as training writes it; the second check's
    verdict (the first only sees the change)."""
    for name in ("model.joblib", "manifest.json"):
        shutil.copy(directory / name, live_dir / name)
    assert not source.maybe_reload(), "a change is loaded once the files look the same twice"
    return source.maybe_reload()


def test_an_unrelated_model_is_refused_at_reload_unless_allowed(model_dir, live_dir, tmp_path, caplog):
    metrics = ScorerMetrics()
    source = ModelSource(
        live_dir, expected_schema_hash=SCHEMA, check_interval_s=0, on_reload=metrics.record_model_reload
    )
    serving = source()
    unrelated = tmp_path / "unrelated"
    _train_newer(unrelated, seed=3)  # trained without --previous: a lineage of its own

    with caplog.at_level(logging.ERROR, logger="consumer.model_source"):
        assert not _reload_from(source, unrelated, live_dir)
    assert source() is serving, "the live model keeps serving"
    sample = metrics.registry.get_sample_value
    assert sample("segmenter_model_refusals_total", {"reason": "unrelated"}) == 1
    assert sample("segmenter_model_reloads_total", {"result": "refused"}) == 1
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "(unrelated)" in line
    assert f"does not descend from the live model {serving.model_id}" in line
    for way_out in ("--previous", "--allow-unrelated-model"):
        assert way_out in line, "the line says the ways out"
    assert not source.maybe_reload(), "the same refused files are not retried"

    other_live = tmp_path / "other-live"
    shutil.copytree(model_dir, other_live)
    events: list = []
    lenient = ModelSource(
        other_live, expected_schema_hash=SCHEMA, check_interval_s=0,
        on_reload=lambda r, d: events.append((r, d)), allow_unrelated=True,
    )  # fmt: skip
    assert _reload_from(lenient, unrelated, other_live)
    assert lenient().model_id == load_artifact(unrelated).model_id
    assert [r for r, _ in events] == ["loaded", "loaded"]


def test_a_shadow_source_reloads_any_candidate_of_the_schema_without_a_lineage_warning(
    live_dir, tmp_path, caplog
):
    """``--shadow-model-dir``: the next candidate is compared, never published, so lineage is no bar."""
    events: list = []
    shadow = ModelSource(
        live_dir, expected_schema_hash=SCHEMA, check_interval_s=0,
        on_reload=lambda r, d: events.append((r, d)), check_lineage=False, name="shadow model",
    )  # fmt: skip
    unrelated = tmp_path / "unrelated"
    _train_newer(unrelated, seed=3)
    with caplog.at_level(logging.INFO, logger="consumer.model_source"):
        assert _reload_from(shadow, unrelated, live_dir)
    assert shadow().model_id == load_artifact(unrelated).model_id
    assert [r for r, _ in events] == ["loaded", "loaded"]
    assert [r.levelname for r in caplog.records] == ["INFO"], "no unrelated-model warning"
    assert caplog.records[0].getMessage().startswith("shadow model reloaded: ")


def test_a_child_and_a_grandchild_of_the_live_model_are_accepted(live_dir, tmp_path):
    metrics = ScorerMetrics()
    source = ModelSource(
        live_dir, expected_schema_hash=SCHEMA, check_interval_s=0, on_reload=metrics.record_model_reload
    )
    first = source().model_id
    child, grandchild = tmp_path / "child", tmp_path / "grandchild"
    _train_newer(child, seed=3, previous=live_dir)
    _train_newer(grandchild, seed=4, previous=child)
    lineage = load_artifact(grandchild).lineage
    assert lineage[1:] == [load_artifact(child).model_id, first], "parent first, then its ancestors"

    assert _reload_from(source, grandchild, live_dir), "the live model is among its ancestors"
    assert source().model_id == lineage[0]
    assert metrics.registry.get_sample_value("segmenter_model_refusals_total", {"reason": "unrelated"}) == 0
