"""The artifact: what is saved loads back identical; tampered or mismatched artifacts are refused."""

import json

import numpy as np
import pandas as pd
import pytest

from model.artifact import MANIFEST_FILE, MODEL_FILE, load_artifact, read_manifest, save_artifact
from model.errors import ArtifactError, ArtifactIntegrityError, SchemaMismatchError
from model.pipeline import build_pipeline, to_frame
from model.spec import FeatureSpec

SPEC = FeatureSpec("id", numeric=("spend", "recency_days"), categorical=("plan",), heavy_tailed=("spend",))
SOURCE = FeatureSpec(
    "id", numeric=("spend", "recency_days", "age"), categorical=("plan",), heavy_tailed=("spend",)
)


def customers(n=300, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "spend": rng.lognormal(3.0, 1.5, n),
            "recency_days": rng.uniform(0, 500, n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )


@pytest.fixture
def saved(tmp_path):
    frame = customers()
    pipeline = build_pipeline(SPEC, k=3, seed=0).fit(to_frame(frame, SPEC))
    manifest = save_artifact(
        tmp_path,
        pipeline,
        SPEC,
        algorithm="kmeans",
        k=3,
        segment_names=["a", "b", "c"],
        source_schema_hash=SOURCE.schema_hash(),
    )
    return tmp_path, pipeline, manifest, frame


def rewrite_manifest(directory, change):
    path = directory / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_saved_model_loads_back_and_scores_like_the_original(saved):
    directory, pipeline, manifest, frame = saved
    model = load_artifact(directory, expected_schema_hash=SPEC.schema_hash())
    labels = [a.segment_id for a in model.score(frame.to_dict(orient="records"))]
    assert labels == pipeline.predict(to_frame(frame, SPEC)).tolist()
    assert model.model_id == manifest["model_id"]
    assert model.segment_names == ["a", "b", "c"]
    assert model.spec == SPEC


def test_manifest_records_provenance(saved):
    directory, _, manifest, _ = saved
    on_disk = read_manifest(directory)
    assert on_disk == manifest
    assert set(on_disk["library_versions"]) == {"python", "sklearn", "numpy", "pandas", "joblib"}
    assert on_disk["created_at"].endswith("Z")
    assert on_disk["feature_names"] == ["spend", "recency_days", "plan"]
    assert len(on_disk["model_sha256"]) == 64
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_the_source_schema_is_accepted_too(saved):
    directory, *_ = saved
    assert load_artifact(directory, expected_schema_hash=SOURCE.schema_hash()).k == 3


def test_tampered_model_file_is_refused_before_unpickling(saved):
    directory, *_ = saved
    path = directory / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="sha256") as caught:
        load_artifact(directory)
    assert str(path) in str(caught.value)


def test_truncated_model_file_is_refused(saved):
    directory, *_ = saved
    path = directory / MODEL_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match="tampered or truncated"):
        load_artifact(directory)


def test_manifest_with_an_edited_spec_is_refused(saved):
    directory, *_ = saved
    rewrite_manifest(directory, lambda m: m["spec"]["numeric"].remove("recency_days"))
    with pytest.raises(SchemaMismatchError, match="schema_hash"):
        load_artifact(directory)


def test_consistently_edited_manifest_is_refused_by_the_fitted_columns(saved):
    directory, *_ = saved
    edited = FeatureSpec(
        "id", numeric=("spend", "tenure_days"), categorical=("plan",), heavy_tailed=("spend",)
    )

    def change(manifest):
        manifest.update(spec=edited.to_dict(), schema_hash=edited.schema_hash())
        manifest["feature_names"] = list(edited.feature_names)

    rewrite_manifest(directory, change)
    with pytest.raises(SchemaMismatchError, match="fitted on columns"):
        load_artifact(directory)


def test_a_model_for_another_schema_is_refused(saved):
    directory, *_ = saved
    with pytest.raises(SchemaMismatchError, match="not the expected"):
        load_artifact(directory, expected_schema_hash="0" * 64)


def test_missing_or_broken_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="segmenter train"):
        load_artifact(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(tmp_path)


def test_save_refuses_to_overwrite_its_own_fields(tmp_path):
    pipeline = build_pipeline(SPEC, k=2).fit(to_frame(customers(), SPEC))
    with pytest.raises(ValueError, match="model_sha256"):
        save_artifact(tmp_path, pipeline, SPEC, model_sha256="forged")
