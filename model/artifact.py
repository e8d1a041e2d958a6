"""The model artifact: ``model.joblib`` (the fitted pipeline) beside ``manifest.json`` (what it is).

The manifest records the model id, creation time (UTC ISO-8601), library versions, the sha256 of
``model.joblib``, the feature spec, names and schema hash, and whatever training adds (metrics, segment
distribution, per-feature drift baselines, segment profiles and names, k, algorithm, seed, data).

Security: joblib files are pickles, and unpickling runs code. Load only artifacts you trained or
otherwise trust. :func:`load_artifact` verifies the sha256 of the exact bytes it is about to unpickle
against the manifest *before* unpickling, which catches a tampered or truncated model file — but the
manifest itself is not signed, so the model directory must be writable only by trusted parties.

Writes are atomic per file (temp file + ``os.replace``), and the manifest is written last: a scorer
that hot-reloads when ``manifest.json`` changes always finds a model file whose hash matches it (and in
the short window where it would not, it gets an :class:`ArtifactIntegrityError` and keeps its old model).
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

from model.errors import ArtifactError, ArtifactIntegrityError, SchemaMismatchError
from model.scoring import SegmentModel
from model.spec import FeatureSpec

__all__ = ["MANIFEST_FILE", "MODEL_FILE", "load_artifact", "read_manifest", "save_artifact"]

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


def save_artifact(directory: str | os.PathLike, pipeline, spec: FeatureSpec, **manifest_fields: Any) -> dict:
    """Write ``model.joblib`` then ``manifest.json`` into ``directory``; return the manifest.

    ``manifest_fields`` (metrics, profiles, ...) must be JSON-serialisable; they cannot override the
    fields this function owns (id, hashes, spec, versions).
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
    text = json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False)
    _atomic_write(directory / MODEL_FILE, data)
    _atomic_write(directory / MANIFEST_FILE, text.encode())
    return manifest


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a model directory, or an :class:`ArtifactError` naming the file."""
    path = Path(directory) / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"no model manifest at {path}; train a model first (segmenter train)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"model manifest {path} is not valid JSON: {exc}") from exc


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


def load_artifact(directory: str | os.PathLike, *, expected_schema_hash: str | None = None) -> SegmentModel:
    """Load a model directory after checking the model file's sha256 and the feature schema.

    ``expected_schema_hash`` may be the model's own ``schema_hash`` or the ``source_schema_hash`` of
    the full spec its features were selected from (what the stream produces).

    Raises
    ------
    ArtifactIntegrityError
        ``model.joblib`` does not hash to the manifest's ``model_sha256`` (tampered or truncated).
    SchemaMismatchError
        the manifest's spec is inconsistent, differs from ``expected_schema_hash``, or from the
        columns the pickled pipeline was fitted on.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = _checked_spec(manifest, directory / MANIFEST_FILE, expected_schema_hash)
    model_path = directory / str(manifest.get("model_file", MODEL_FILE))
    try:
        data = model_path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"model file {model_path} is missing") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.get("model_sha256"):
        raise ArtifactIntegrityError(
            f"refusing to load {model_path}: sha256 {actual} != manifest {manifest.get('model_sha256')} "
            "(tampered or truncated; retrain or restore the artifact)"
        )
    pipeline = joblib.load(io.BytesIO(data))
    fitted = [str(n) for n in getattr(pipeline, "feature_names_in_", [])]
    if fitted != list(spec.feature_names):
        raise SchemaMismatchError(
            f"{model_path} was fitted on columns {fitted}, "
            f"but {MANIFEST_FILE} declares {list(spec.feature_names)}"
        )
    return SegmentModel(pipeline, spec, manifest)
