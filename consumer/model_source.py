"""The model the scorer uses now, and hot reload from its model directory between batches.

Training writes ``model.joblib``, ``model.sig`` (when it signs) and ``manifest.json`` into the
directory. Between batches the scorer
looks (at most every ``check_interval_s``) whether those files changed. A change is loaded only once
the files have looked the same on two checks in a row: a check that falls between the two writes (new
model, old manifest) or inside a copy that is still running would otherwise refuse an artifact that
is only half there. A settled artifact is loaded and verified; a broken or incompatible one is refused
with a logged reason and the model in hand keeps serving; the same broken files are not retried until
they change again.

With a ``model_key``, every load (at start and at each reload) checks the artifact's signature before
unpickling: an unsigned or wrongly signed artifact is refused like a broken one, with the reason
``signature`` reported to ``on_reload`` (the scorer counts it in ``segmenter_model_refusals_total``).

A reload must keep the meaning of the segment ids the stream has published (stored as each customer's
last segment, compared by ageing ticks, read by every consumer of the output topic). So a new model is
swapped in only if its lineage (``SegmentModel.lineage``: its own id and its ``ancestors``, recorded
by ``segmenter train --previous``) includes the live model: a child, grandchild... of it. Any other
model numbers its segments independently and is refused with the reason ``unrelated``, unless
``allow_unrelated`` (``--allow-unrelated-model``), when it is loaded with a warning. The model at start
is not checked: there is no live model yet. A shadow model's source (``check_lineage=False``) skips the
check altogether: a candidate is compared with the live model, never published, and the next candidate
need not descend from the previous one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from model.artifact import MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE, load_artifact
from model.errors import ArtifactError, ArtifactIntegrityError, ArtifactSignatureError, SchemaMismatchError
from model.signing import ModelKey

log = logging.getLogger(__name__)

# (result: "loaded" | "refused", model id when loaded, else a refusal reason from REFUSAL_REASONS)
ReloadListener = Callable[[str, str], None]
REFUSAL_REASONS = ("signature", "integrity", "schema", "invalid", "unrelated")


def refusal_reason(error: BaseException) -> str:
    """A short, bounded label for why an artifact was refused (metrics label values)."""
    if isinstance(error, ArtifactSignatureError):
        return "signature"
    if isinstance(error, ArtifactIntegrityError):
        return "integrity"
    if isinstance(error, SchemaMismatchError):
        return "schema"
    return "invalid"


def _fingerprint(directory: Path) -> tuple:
    """Size and modification time of the artifact files: cheap to read every few seconds."""
    out = []
    for name in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
        try:
            st = os.stat(directory / name)
            out.append((name, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append((name, None, None))
    return tuple(out)


class ModelSource:
    """Holds the current model; ``maybe_reload()`` swaps in a newer valid artifact."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        expected_schema_hash: str | None = None,
        wrap: Callable | None = None,
        loader: Callable = load_artifact,
        check_interval_s: float = 5.0,
        on_reload: ReloadListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        model_key: ModelKey | None = None,
        allow_unrelated: bool = False,
        check_lineage: bool = True,
        name: str = "model",
    ) -> None:
        self.directory = Path(directory)
        self._allow_unrelated = allow_unrelated
        self._check_lineage = check_lineage
        self._name = name  # what the log lines call it: "model", or "shadow model"
        self._loader = loader if model_key is None else functools.partial(loader, key=model_key)
        self._wrap = wrap or (lambda model: model)  # e.g. an online river model around the artifact
        self._interval = check_interval_s
        self._on_reload = on_reload or (lambda result, detail: None)
        self._clock = clock
        self._seen = _fingerprint(self.directory)
        self._changed_to: tuple | None = None  # files seen changed once, loaded if the next check agrees
        # At start a broken artifact is fatal: there is nothing else to serve.
        loaded = self._loader(self.directory, expected_schema_hash=expected_schema_hash)
        # A reload must keep the input the stored state was built for: the same source schema (a
        # retrain may drop columns its data lacked, as the event model drops absent demographics).
        self._expected_schema = expected_schema_hash or _source_schema(loaded)
        self._model = self._wrap(loaded)
        self._base = loaded  # the artifact's model (the wrapped one may carry another id)
        self._next_check = clock() + check_interval_s
        self._on_reload("loaded", self._model.model_id)

    def __call__(self):
        return self._model

    @property
    def schema_hash(self) -> str:
        """The input schema every load must take (a shadow model's source is held to it too)."""
        return self._expected_schema

    def maybe_reload(self) -> bool:
        """Load a changed artifact if one appeared; True when a new model now serves."""
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._interval
        fingerprint = _fingerprint(self.directory)
        if fingerprint == self._seen:
            self._changed_to = None
            return False
        if fingerprint != self._changed_to:
            self._changed_to = fingerprint  # possibly still being written: wait for one more check
            return False
        self._seen, self._changed_to = fingerprint, None
        try:
            loaded = self._loader(self.directory, expected_schema_hash=self._expected_schema)
        except (ArtifactError, OSError, ValueError) as error:
            return self._refuse(refusal_reason(error), error)
        if loaded.model_id == self._base.model_id:
            return False
        unrelated = _unrelated(loaded, self._base) if self._check_lineage else None
        if unrelated and not self._allow_unrelated:
            return self._refuse(
                "unrelated", f"{unrelated}; retrain with --previous or pass --allow-unrelated-model"
            )
        if unrelated:
            log.warning("loading an unrelated model (--allow-unrelated-model): %s", unrelated)
        try:
            candidate = self._wrap(loaded)
        except (ArtifactError, ValueError) as error:
            return self._refuse(refusal_reason(error), error)
        log.info("%s reloaded: %s -> %s", self._name, self._model.model_id, candidate.model_id)
        self._model, self._base = candidate, loaded
        self._on_reload("loaded", candidate.model_id)
        return True

    def _refuse(self, reason: str, why: object) -> bool:
        log.error(
            "%s reload refused (%s), still serving %s: %s", self._name, reason, self._model.model_id, why
        )
        self._on_reload("refused", reason)
        return False


def _unrelated(candidate, live) -> str | None:
    """Why ``candidate`` may not replace ``live`` (its lineage lacks it), or None when it descends."""
    if live.model_id in candidate.lineage:
        return None
    return (
        f"model {candidate.model_id} does not descend from the live model {live.model_id} (its lineage: "
        f"{', '.join(candidate.lineage)}), so its segment ids may name other segments"
    )


def _source_schema(model) -> str:
    """The schema a model's training source declared (before unusable columns were dropped)."""
    return model.manifest.get("source_schema_hash") or model.spec.schema_hash()
