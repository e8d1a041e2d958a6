"""Which fields a served model takes: the columns of the spec it was trained from.

Any trained model can be served, from events or from a customer table. The form and the API ask for
the columns of the spec the model was **trained from** (``source_spec`` in the manifest: the table's
spec, or the event feature spec), so a column training dropped is still shown, as optional and
ignored; an older manifest without one gives the model's own spec.

A model whose own spec is the event feature spec restricted to some of its columns (same names,
kinds and transforms) takes **event features**: the dates of :mod:`deploy.web.dates` stand in for
``recency_days`` / ``tenure_days``, and ``null`` is allowed where the stream itself says unknown.
Any other model takes a table's columns: ``null`` only where the training table had gaps (the
columns the manifest lists as ``imputed``), and no dates.

The manifest is checked before it is believed: the source spec must hash to the recorded
``source_schema_hash`` and the model's spec must be that spec restricted to the model's columns, or
the model is refused (:class:`~model.errors.SchemaMismatchError`), as :func:`model.artifact.load_artifact`
refuses a spec that does not match its own hash. Column names that the form or the API use for
themselves are refused too, naming the column.

>>> from model.spec import FeatureSpec
>>> takes_events(FeatureSpec("customer_id", numeric=("recency_days", "frequency"),
...                          heavy_tailed=("frequency",)))
True
>>> takes_events(FeatureSpec("member_id", numeric=("age",), categorical=("channel",)))
False
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask_wtf import FlaskForm

from model.artifact import MANIFEST_FILE, load_artifact
from model.errors import SchemaMismatchError
from model.features import EVENT_FEATURE_SPEC, features, initialize
from model.scoring import SegmentModel
from model.signing import ModelKey
from model.spec import FeatureSpec

__all__ = ["RESERVED_NAMES", "ServedModel", "load_served", "served", "takes_events"]

# Attributes of a form, the form's own inputs, and the batch envelope of the API.
RESERVED_NAMES = frozenset(n for n in dir(FlaskForm) if not n.startswith("__")) | {
    "submit",
    "csrf_token",
    "customers",
}


@dataclass(frozen=True)
class ServedModel:
    """A loaded model, the spec its fields come from, and the columns that may be unknown."""

    model: SegmentModel
    spec: FeatureSpec  # the spec trained from: the model's columns and the ones training dropped
    events: bool  # the model takes event features (dates may stand in for days)
    nullable: frozenset[str]  # columns a client may send as null (unknown)


def takes_events(spec: FeatureSpec) -> bool:
    """Whether ``spec`` is the event feature spec or that spec restricted to some of its columns."""
    names = set(spec.feature_names)
    if not names <= set(EVENT_FEATURE_SPEC.feature_names):
        return False
    return EVENT_FEATURE_SPEC.restricted_to(names) == spec  # names, kinds, order, transforms, id


def load_served(model_dir: str | os.PathLike, key: ModelKey | None = None) -> ServedModel:
    """Load and verify the artifact in ``model_dir`` (signature first, with ``key``) and its fields."""
    return served(load_artifact(model_dir, key=key), Path(model_dir) / MANIFEST_FILE)


def served(model: SegmentModel, manifest_path: str | os.PathLike = MANIFEST_FILE) -> ServedModel:
    """The fields of ``model``; :class:`SchemaMismatchError` when its manifest contradicts itself."""
    events = takes_events(model.spec)
    spec = _source_spec(model, manifest_path, EVENT_FEATURE_SPEC if events else model.spec)
    if events and spec == EVENT_FEATURE_SPEC:  # same columns: units and help as the feature code says
        spec = EVENT_FEATURE_SPEC
    clash = sorted(RESERVED_NAMES & {spec.id_column, *spec.feature_names})
    if clash:
        raise SchemaMismatchError(
            f"cannot serve {manifest_path}: the spec names columns {clash}, which the web form and API "
            "use for themselves; rename them in the spec and train again"
        )
    if events:
        unknown_when_new = {name for name, value in features(initialize(), 0).items() if value is None}
        nullable = (unknown_when_new | set(spec.categorical)) & set(spec.feature_names)
    else:
        nullable = set(model.manifest.get("imputed") or {}) & set(spec.feature_names)
    return ServedModel(model, spec, events, frozenset(nullable))


def _source_spec(model: SegmentModel, path: str | os.PathLike, default: FeatureSpec) -> FeatureSpec:
    recorded = model.manifest.get("source_spec")
    if recorded is None:
        return default
    try:
        source = FeatureSpec.from_dict(recorded)
    except (TypeError, ValueError, AttributeError) as exc:
        raise SchemaMismatchError(f"manifest {path} has no valid source_spec: {exc}") from exc
    expected = model.manifest.get("source_schema_hash")
    if source.schema_hash() != expected:
        raise SchemaMismatchError(
            f"manifest {path}: source_spec hashes to {source.schema_hash()} but its source_schema_hash "
            f"says {expected} (edited by hand?)"
        )
    used = set(model.spec.feature_names)
    if not used <= set(source.feature_names) or source.restricted_to(used) != model.spec:
        raise SchemaMismatchError(
            f"manifest {path}: the model's features {list(model.spec.feature_names)} are not columns of "
            f"its source_spec {list(source.feature_names)} as declared there (edited by hand?)"
        )
    return source
