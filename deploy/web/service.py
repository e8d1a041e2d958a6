"""The web app's view of a model: fields to ask for, scoring validated rows, explaining a result.

No Flask here: the form, the API and the tests all call :class:`SegmentService`. Any trained model is
served: its fields are the columns of the spec it was trained from (``deploy.web.schema``), the event
features for an event model, a table's columns for a table model. Scoring is exactly the stream's and
training's: the validated feature rows go to ``SegmentModel.score`` in one call, as the streaming
processor does with the rows ``model.features.features`` computes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from deploy.web.dates import AS_OF, attribute_errors, offered_dates, resolve_dates, today_utc
from deploy.web.explain import pushes, runner_up
from deploy.web.fields import CustomerField, FieldError, customer_fields, validate_customer
from deploy.web.schema import ServedModel, load_served, served
from model.scoring import Assignment, SegmentModel
from model.signing import ModelKey

log = logging.getLogger(__name__)

__all__ = ["PROJECTION_FILE", "SegmentService"]

PROJECTION_FILE = "projection.json"  # written by training next to the artifact


@dataclass(frozen=True)
class Push:
    """One feature's share of the margin between the chosen and the runner-up segment."""

    feature: str
    amount: float  # > 0 pulled towards the chosen segment
    value: Any  # the customer's value
    chosen_median: float | None
    other_median: float | None


class SegmentService:
    """A loaded model plus everything the pages and the API derive from it."""

    def __init__(
        self,
        model: SegmentModel,
        projection: dict | None = None,
        today: Callable[[], date] = today_utc,
        *,
        schema: ServedModel | None = None,
    ) -> None:
        schema = schema or served(model)
        self.model = model
        self.projection = projection
        self.today = today  # as_of when dates are given without one
        self.spec = schema.spec  # the spec the model was trained from (its columns and dropped ones)
        self.events = schema.events  # an event model: dates may stand in for days
        self.id_column = schema.spec.id_column  # an optional id, echoed and never scored
        self.fields: dict[str, CustomerField] = customer_fields(
            schema.spec, set(model.spec.feature_names), nullable=schema.nullable, categories=model.categories
        )
        # last_purchase / first_seen when an event spec has recency_days / tenure_days (as the features,
        # a date whose feature the model dropped is checked and reported ignored)
        self.date_fields: dict[str, str] = offered_dates(self.fields) if self.events else {}
        self.dropped: dict[str, str] = dict(model.manifest.get("dropped_features") or {})

    @classmethod
    def from_directory(
        cls, model_dir: str | os.PathLike, model_key: ModelKey | None = None
    ) -> SegmentService:
        """Load and verify the artifact (and the training projection, when training wrote one).

        With ``model_key`` the artifact's signature is checked before it is unpickled; a manifest that
        contradicts itself is refused (``SchemaMismatchError``).
        """
        schema = load_served(model_dir, model_key)
        return cls(schema.model, _read_projection(Path(model_dir) / PROJECTION_FILE), schema=schema)

    def validate(self, data: Any, prefix: str = "") -> tuple[dict[str, Any], list[FieldError]]:
        """The clean row and every error; dates (``deploy.web.dates``) become the features they give.

        When dates were given, the row carries ``as_of`` (ISO date), echoed and never scored. A table
        model takes no dates: ``last_purchase`` or ``as_of`` are then unknown fields like any other.
        """
        if not self.events:
            return validate_customer(data, self.fields, prefix=prefix, id_field=self.id_column)
        features, as_of, date_errors = resolve_dates(
            data, self.date_fields, today=self.today(), prefix=prefix
        )
        row, errors = validate_customer(features, self.fields, prefix=prefix, id_field=self.id_column)
        if as_of is not None:
            row[AS_OF] = as_of.isoformat()
        return row, date_errors + attribute_errors(errors, data, self.date_fields, prefix)

    def title(self, name: str) -> str:
        """The readable name of a column (its label in the spec), for pages and charts."""
        field = self.fields.get(name)
        return (field.title if field else "") or name.replace("_", " ")

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Assignment]:
        """Validated rows -> assignments, one vectorised call (fields the model dropped are ignored)."""
        return self.model.score(rows)

    def ignored(self, row: Mapping[str, Any]) -> list[str]:
        """Fields given a value that the model does not use."""
        return [n for n, f in self.fields.items() if not f.used and row.get(n) is not None]

    def explain(self, row: Mapping[str, Any], assignment: Assignment) -> list[Push]:
        """Features ordered by how hard they pushed towards the chosen segment over the runner-up."""
        other = self.runner_up(assignment)
        if other is None:
            return []
        point = self.model.transform([row])[0]
        shares = pushes(  # centroids and distances are by cluster index
            point,
            self.model.centroids_scaled,
            self.model.index_of(assignment.segment_id),
            self.model.index_of(other),
            self.model.transformed_feature_names,
            list(self.model.spec.feature_names),
        )
        chosen_p, other_p = self.profile(assignment.segment_id), self.profile(other)
        return [
            Push(name, amount, row.get(name), _median(chosen_p, name), _median(other_p, name))
            for name, amount in shares
        ]

    def runner_up(self, assignment: Assignment) -> int | None:
        """The id of the nearest segment other than the assigned one (None with a single segment)."""
        other = runner_up(assignment.distances, self.model.index_of(assignment.segment_id))
        return None if other is None else self.model.segment_ids[other]

    def profile(self, segment_id: int) -> dict[str, Any]:
        """The training profile of a segment id (``{}`` if the manifest has none)."""
        return self.model.profile(segment_id)

    def result_dict(self, assignment: Assignment, row: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON form of one result."""
        out = {
            "segment_id": assignment.segment_id,
            "segment_name": assignment.segment_name,
            "distance": assignment.distance,
            "confidence": assignment.confidence,
            "distances": list(assignment.distances),
            "ignored_fields": self.ignored(row),
        }
        if row.get(AS_OF) is not None:
            out[AS_OF] = row[AS_OF]
        customer_id = row.get(self.id_column)
        return out if customer_id is None else {self.id_column: customer_id, **out}

    def segments(self) -> list[dict[str, Any]]:
        """Id, name, size, share and profile of every segment (for ``GET /api/v1/segments``), in the
        model's order: the order of every result's ``distances``."""
        shares = self.model.manifest.get("segment_distribution") or []  # by cluster index
        out = []
        pairs = zip(self.model.segment_ids, self.model.segment_names, strict=True)
        for index, (segment, name) in enumerate(pairs):
            profile = self.profile(segment)
            share = shares[index] if index < len(shares) else profile.get("share")
            out.append(
                {
                    "segment_id": segment,
                    "name": name,
                    "size": profile.get("size"),
                    "share": share,
                    "median": profile.get("median", {}),
                    "mode": profile.get("mode", {}),
                    "top_features": profile.get("top_features", []),
                }
            )
        return out


def _median(profile: Mapping[str, Any], name: str) -> float | None:
    return (profile.get("median") or {}).get(name)


def _read_projection(path: Path) -> dict | None:
    """The 2-D projection training saved, or None (an older artifact, or a broken file: logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable projection %s: %s", path, exc)
        return None
    keys = ("x", "y", "segment")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in keys):
        log.warning("ignoring projection %s: it lacks the lists %s", path, keys)
        return None
    return data
