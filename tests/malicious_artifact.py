"""The attack the signing tests replay: a code-running pickle placed as ``model.joblib``.

Unpickling :class:`WritesMarker` creates a file, so a test proves that nothing ran by checking that the
marker file does not exist. :func:`plant_malicious_model` also updates the manifest's ``model_sha256``,
as an attacker who can write the model directory would: only a signature check can refuse it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path


class WritesMarker:
    """Unpickling this creates ``marker``: the stand-in for a replaced model file that runs code."""

    def __init__(self, marker: Path | str) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_malicious_model(directory: Path, marker: Path) -> None:
    """Replace ``model.joblib`` with a code-running pickle and fix ``model_sha256`` to match it."""
    data = pickle.dumps(WritesMarker(marker))
    (directory / "model.joblib").write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["model_sha256"] = hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))
