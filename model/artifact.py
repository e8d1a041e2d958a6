"""The model artifact: ``model.joblib`` (the fitted pipeline) beside ``manifest.json`` (what it is).

The manifest records the model id, creation time (UTC ISO-8601), library versions, the sha256 of
``model.joblib``, the feature spec, names and schema hash, and whatever training adds (metrics, segment
distribution, per-feature drift baselines, segment profiles and names, k, algorithm, seed, data).

Security: joblib files are pickles, and **loading a model executes code**: a pickle names functions
to call, and ``joblib.load`` calls them. The manifest's sha256 of ``model.joblib`` catches accidents (a
tampered or truncated copy) but not an attacker, who updates the hash too. So artifacts can be signed
(:mod:`model.signing`): with a key, :func:`save_artifact` writes ``model.sig``, an HMAC-SHA256 over the
exact bytes of ``manifest.json`` and ``model.joblib``, and :func:`load_artifact` with a key reads the
three files once and checks the signature *before* parsing the manifest or unpickling anything,
raising :class:`ArtifactSignatureError` for an unsigned or wrongly signed artifact. Without a key,
``model.sig`` is ignored and the model directory must be writable only by trusted parties.

Writes are atomic per file (temp file + ``os.replace``), in the order ``model.joblib``, ``model.sig``,
``manifest.json``: the manifest is last, so a scorer that hot-reloads when the files change always
finds a model file (and signature) that match it — and in the short window where it would not, it gets
an :class:`ArtifactIntegrityError` or :class:`ArtifactSignatureError` and keeps its old model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from model.errors import ArtifactError, ArtifactIntegrityError, ArtifactSignatureError, SchemaMismatchError
from model.scoring import SegmentModel
from model.signing import SIGNATURE_FILE, ModelKey, decode_signature_file, encode_signature_file, sign, verify
from model.spec import FeatureSpec

__all__ = [
    "MANIFEST_FILE",
    "MODEL_FILE",
    "SIGNATURE_FILE",
    "load_artifact",
    "read_manifest",
    "save_artifact",
    "sign_artifact",
]

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a pickled pipeline (a mismatch is worth a warning)."""
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
    }


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temp, 0o644)  # mkstemp makes 0600; scorers may run as another user
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_artifact(
    directory: str | os.PathLike,
    pipeline,
    spec: FeatureSpec,
    *,
    signing_key: ModelKey | None = None,
    **manifest_fields: Any,
) -> dict:
    """Write ``model.joblib``, ``model.sig`` (with ``signing_key``), ``manifest.json``; return the manifest.

    ``manifest_fields`` (metrics, profiles, ...) must be JSON-serialisable; they cannot override the
    fields this function owns (id, hashes, spec, versions). Without a key, a ``model.sig`` left by an
    earlier artifact is removed (it could only fail to verify).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    created = datetime.now(UTC)
    algorithm = manifest_fields.get("algorithm", "model")
    owned = {
        "format_version": FORMAT_VERSION,
        "model_id": f"{algorithm}-{created:%Y%m%dT%H%M%SZ}-{digest[:8]}",
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "library_versions": library_versions(),
        "model_file": MODEL_FILE,
        "model_sha256": digest,
        "spec": spec.to_dict(),
        "feature_names": list(spec.feature_names),
        "schema_hash": spec.schema_hash(),
    }
    clash = sorted(set(owned) & set(manifest_fields))
    if clash:
        raise ValueError(f"manifest fields {clash} are set by save_artifact itself")
    manifest = owned | manifest_fields
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False).encode()
    if signing_key is None:
        (directory / SIGNATURE_FILE).unlink(missing_ok=True)
    _atomic_write(directory / MODEL_FILE, data)
    if signing_key is not None:
        _atomic_write(directory / SIGNATURE_FILE, encode_signature_file(sign(signing_key, text, data)))
    _atomic_write(directory / MANIFEST_FILE, text)
    return manifest


def sign_artifact(directory: str | os.PathLike, key: ModelKey) -> dict:
    """Sign an existing artifact (writes ``model.sig``) after checking its sha256; never unpickles it.

    Signing says "I trust this model": sign only artifacts you trained or otherwise vouch for.
    """
    directory = Path(directory)
    manifest_bytes, manifest = _read_manifest_bytes(directory)
    _check_model_file_name(manifest, directory)
    model_path = directory / MODEL_FILE
    data = _read_model(model_path)
    _check_sha256(data, manifest, model_path)
    _atomic_write(directory / SIGNATURE_FILE, encode_signature_file(sign(key, manifest_bytes, data)))
    return manifest


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a model directory, or an :class:`ArtifactError` naming the file."""
    return _parse_manifest(_manifest_bytes(Path(directory)), Path(directory) / MANIFEST_FILE)


def _manifest_bytes(directory: Path) -> bytes:
    path = directory / MANIFEST_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"no model manifest at {path}; train a model first (segmenter train)") from exc


def _parse_manifest(data: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"model manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"model manifest {path} is not a JSON object")
    return manifest


def _read_manifest_bytes(directory: Path) -> tuple[bytes, dict]:
    data = _manifest_bytes(directory)
    return data, _parse_manifest(data, directory / MANIFEST_FILE)


def _read_model(model_path: Path) -> bytes:
    try:
        return model_path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"model file {model_path} is missing") from exc


def _check_model_file_name(manifest: dict, directory: Path) -> None:
    """Signed artifacts keep the model in ``model.joblib``: the signature covers that file's bytes."""
    named = manifest.get("model_file", MODEL_FILE)
    if named != MODEL_FILE:
        raise ArtifactError(
            f"manifest {directory / MANIFEST_FILE} names model file {named!r}; "
            f"a signed artifact keeps its model in {MODEL_FILE}"
        )


def _check_sha256(data: bytes, manifest: dict, model_path: Path) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.get("model_sha256"):
        raise ArtifactIntegrityError(
            f"refusing to load {model_path}: sha256 {actual} != manifest {manifest.get('model_sha256')} "
            "(tampered or truncated; retrain or restore the artifact)"
        )


def _verify_signature(directory: Path, key: ModelKey, manifest_bytes: bytes, model_bytes: bytes) -> None:
    """Raise :class:`ArtifactSignatureError` unless ``model.sig`` signs exactly these bytes under ``key``."""
    path = directory / SIGNATURE_FILE
    hint = "sign it with the same key (segmenter sign --model-dir DIR) or retrain with the key set"
    try:
        signature = decode_signature_file(path.read_bytes())
    except FileNotFoundError as exc:
        raise ArtifactSignatureError(
            f"refusing to load {directory}: the artifact is unsigned (no {SIGNATURE_FILE}) and a model key "
            f"is configured; {hint}"
        ) from exc
    except ValueError as exc:
        raise ArtifactSignatureError(f"refusing to load {directory}: {path} is malformed: {exc}") from exc
    if not verify(key, manifest_bytes, model_bytes, signature):
        raise ArtifactSignatureError(
            f"refusing to load {directory}: {SIGNATURE_FILE} does not match {MANIFEST_FILE} and "
            f"{MODEL_FILE} under the configured model key (tampered, or signed with another key)"
        )


def _checked_spec(manifest: dict, path: Path, expected_schema_hash: str | None) -> FeatureSpec:
    try:
        spec = FeatureSpec.from_dict(manifest["spec"])
        recorded = manifest["schema_hash"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaMismatchError(f"manifest {path} has no valid feature spec: {exc}") from exc
    if spec.schema_hash() != recorded or list(spec.feature_names) != manifest.get("feature_names"):
        raise SchemaMismatchError(
            f"manifest {path}: spec/feature_names hash to {spec.schema_hash()} "
            f"but its schema_hash says {recorded} (edited by hand?)"
        )
    accepted = {recorded, manifest.get("source_schema_hash")}
    if expected_schema_hash is not None and expected_schema_hash not in accepted:
        raise SchemaMismatchError(
            f"model in {path.parent} was trained on schema {recorded} (features {list(spec.feature_names)}), "
            f"not the expected {expected_schema_hash}"
        )
    return spec


def load_artifact(
    directory: str | os.PathLike,
    *,
    expected_schema_hash: str | None = None,
    key: ModelKey | None = None,
) -> SegmentModel:
    """Load a model directory after checking its signature (with ``key``), the sha256 and the schema.

    ``expected_schema_hash`` may be the model's own ``schema_hash`` or the ``source_schema_hash`` of
    the full spec its features were selected from (what the stream produces). With ``key``, the
    manifest and model bytes are read once and their signature checked before either is parsed or
    unpickled; those same bytes are what is then used.

    Raises
    ------
    ArtifactSignatureError
        ``key`` is given and ``model.sig`` is missing, malformed or does not match.
    ArtifactIntegrityError
        ``model.joblib`` does not hash to the manifest's ``model_sha256`` (tampered or truncated).
    SchemaMismatchError
        the manifest's spec is inconsistent, differs from ``expected_schema_hash``, or from the
        columns the pickled pipeline was fitted on.
    """
    directory = Path(directory)
    manifest_bytes = _manifest_bytes(directory)
    if key is not None:
        # Nothing from an unverified manifest is trusted, not even which file holds the model.
        model_path = directory / MODEL_FILE
        data = _read_model(model_path)
        _verify_signature(directory, key, manifest_bytes, data)
    manifest = _parse_manifest(manifest_bytes, directory / MANIFEST_FILE)
    spec = _checked_spec(manifest, directory / MANIFEST_FILE, expected_schema_hash)
    if key is None:
        model_path = directory / str(manifest.get("model_file", MODEL_FILE))
        data = _read_model(model_path)
    else:
        _check_model_file_name(manifest, directory)
    _check_sha256(data, manifest, model_path)
    pipeline = joblib.load(io.BytesIO(data))
    fitted = [str(n) for n in getattr(pipeline, "feature_names_in_", [])]
    if fitted != list(spec.feature_names):
        raise SchemaMismatchError(
            f"{model_path} was fitted on columns {fitted}, "
            f"but {MANIFEST_FILE} declares {list(spec.feature_names)} (schema {spec.schema_hash()})"
        )
    return SegmentModel(pipeline, spec, manifest)
