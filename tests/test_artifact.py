"""The artifact: what is saved loads back identical; tampered or mismatched artifacts are refused."""

import argparse
import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from malicious_artifact import plant_malicious_model

from model.artifact import (
    MANIFEST_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    load_artifact,
    read_manifest,
    save_artifact,
    sign_artifact,
)
from model.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactSignatureError,
    ConfigError,
    SchemaMismatchError,
)
from model.pipeline import build_pipeline, to_frame
from model.signing import KEY_ENV, KEY_FILE_ENV, ModelKey, resolve_model_key
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


# --- signing: HMAC over manifest and model, checked before anything is unpickled ---------------------

KEY = ModelKey(b"test-model-key-0123456789abcdef")
OTHER_KEY = ModelKey(b"another-model-key-0123456789abc")


@pytest.fixture
def signed(tmp_path):
    pipeline = build_pipeline(SPEC, k=3, seed=0).fit(to_frame(customers(), SPEC))
    save_artifact(tmp_path, pipeline, SPEC, signing_key=KEY, algorithm="kmeans", k=3)
    return tmp_path


def test_a_signed_artifact_loads_with_its_key_and_without_one(signed):
    assert (signed / SIGNATURE_FILE).is_file()
    assert load_artifact(signed, key=KEY).k == 3
    assert load_artifact(signed).k == 3, "with no key configured model.sig is not consulted"


def test_a_signed_artifact_is_refused_under_another_key(signed):
    with pytest.raises(ArtifactSignatureError, match="another key"):
        load_artifact(signed, key=OTHER_KEY)


def test_an_unsigned_artifact_is_refused_when_a_key_is_configured(saved):
    directory, *_ = saved
    assert not (directory / SIGNATURE_FILE).exists()
    with pytest.raises(ArtifactSignatureError, match="unsigned") as caught:
        load_artifact(directory, key=KEY)
    assert "segmenter sign" in str(caught.value)


def test_an_edited_manifest_is_refused_even_if_it_stays_consistent(signed):
    rewrite_manifest(signed, lambda m: m.update(segment_names=["x", "y", "z"]))
    with pytest.raises(ArtifactSignatureError, match="does not match"):
        load_artifact(signed, key=KEY)


def test_tampered_model_bytes_with_a_recomputed_sha256_are_refused(signed):
    path = signed / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rewrite_manifest(signed, lambda m: m.update(model_sha256=hashlib.sha256(bytes(data)).hexdigest()))
    with pytest.raises(ArtifactSignatureError):
        load_artifact(signed, key=KEY)


def test_a_malformed_signature_file_is_refused(signed):
    (signed / SIGNATURE_FILE).write_text("garbage")
    with pytest.raises(ArtifactSignatureError, match="malformed"):
        load_artifact(signed, key=KEY)


def test_the_malicious_pickle_runs_without_a_key_and_never_with_one(signed, tmp_path_factory):
    marker = tmp_path_factory.mktemp("marker") / "pwned"
    plant_malicious_model(signed, marker)
    with pytest.raises(ArtifactSignatureError):
        load_artifact(signed, key=KEY)
    assert not marker.exists(), "the pickle was executed although the signature did not match"

    # The control: without a key the sha256 matches, so the pickle runs (why signing is needed).
    with pytest.raises(SchemaMismatchError):
        load_artifact(signed)
    assert marker.exists()


def test_sign_artifact_signs_an_existing_artifact_without_unpickling_it(saved, tmp_path_factory):
    directory, *_ = saved
    sign_artifact(directory, KEY)
    assert load_artifact(directory, key=KEY).k == 3

    marker = tmp_path_factory.mktemp("marker") / "pwned"
    plant_malicious_model(directory, marker)
    sign_artifact(directory, KEY)  # an operator vouching for a bad file: signing itself runs nothing
    assert not marker.exists()


def test_sign_artifact_refuses_a_model_that_does_not_match_its_manifest(saved):
    directory, *_ = saved
    (directory / MODEL_FILE).write_bytes(b"not the model")
    with pytest.raises(ArtifactIntegrityError):
        sign_artifact(directory, KEY)
    assert not (directory / SIGNATURE_FILE).exists()


def test_saving_unsigned_removes_a_stale_signature(signed):
    pipeline = build_pipeline(SPEC, k=2, seed=0).fit(to_frame(customers(), SPEC))
    save_artifact(signed, pipeline, SPEC)
    assert not (signed / SIGNATURE_FILE).exists()


def test_the_key_never_shows_and_is_never_pickled():
    secret = b"very-secret-model-key-material"
    key = ModelKey(secret)
    assert secret.decode() not in f"{key} {key!r} {[key]} {vars(argparse.Namespace(k=key))}"
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_resolve_model_key_from_file_or_environment(tmp_path):
    assert resolve_model_key(None, {}) is None
    path = tmp_path / "key"
    path.write_text("file-key-0123456789abcdef\n")
    from_file = resolve_model_key(path, {KEY_ENV: "env-key-0123456789abcdef"})
    assert from_file.mac(b"m") == ModelKey(b"file-key-0123456789abcdef").mac(b"m"), "the file wins"
    from_env = resolve_model_key(None, {KEY_ENV: "env-key-0123456789abcdef"})
    assert from_env.mac(b"m") == ModelKey(b"env-key-0123456789abcdef").mac(b"m")
    assert resolve_model_key(None, {KEY_FILE_ENV: str(path)}).mac(b"m") == from_file.mac(b"m")


@pytest.mark.parametrize(
    ("key_file", "environ", "message"),
    [
        ("missing", {}, "cannot read the model key file"),
        ("empty", {}, "is empty"),
        (None, {KEY_ENV: " "}, "set but empty"),
        (None, {KEY_ENV: "short"}, "at least 16"),
    ],
)
def test_a_bad_key_is_a_config_error_never_no_key(tmp_path, key_file, environ, message):
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=message):
        resolve_model_key(tmp_path / key_file if key_file else None, environ)
