"""The fields a person or a client enters: FEATURES of one customer, checked against the feature spec.

The form and the API take the same thing the stream hands to ``model.score``: one feature row
(recency in days, number of purchases, amount spent, ...), not events. Every field of the FULL event
feature spec is listed, so the form can show all of them; the ones the model dropped in training are
accepted as optional and ignored when scoring (the page says so).

Rules, shared by the form and the API:

- a feature the model uses must be given; ``null`` (API) means "unknown" and is allowed only where the
  stream itself can say unknown (the features a customer with no events has as ``None``: recency
  before a first purchase, demographics before a profile), and the model imputes it as in the stream;
- numbers must be finite and inside the spec's range; text at most :data:`MAX_TEXT` characters;
- unknown field names are errors (a typo must not silently become "unknown").

>>> from model.features import EVENT_FEATURE_SPEC
>>> fields = customer_fields(EVENT_FEATURE_SPEC, used={"frequency", "recency_days"})
>>> row, errors = validate_customer({"frequency": -1, "recency_days": None, "colour": "red"}, fields)
>>> [(e.field, e.problem) for e in errors]
[('frequency', 'must be >= 0 purchases'), ('colour', 'is not a customer feature')]
>>> validate_customer({"frequency": 3, "recency_days": None}, fields)[0]["recency_days"] is None
True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from model.features import features, initialize
from model.spec import FeatureSpec

__all__ = ["MAX_TEXT", "CustomerField", "FieldError", "customer_fields", "plain", "validate_customer"]

MAX_TEXT = 64  # the event decoder's limit for category, channel and profile text


def plain(number: float) -> str:
    """A bound as people write it: ``1,000,000`` not ``1e+06``, ``0.5`` not ``0.500000``."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


@dataclass(frozen=True)
class FieldError:
    """One bad field: its name (``customers[2].frequency`` in a batch), the problem, the value given."""

    field: str
    problem: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "problem": self.problem, "value": _json_safe(self.value)}


@dataclass(frozen=True)
class CustomerField:
    """One feature as an input field: kind, unit, range, and whether the model uses it."""

    name: str
    kind: str  # "number" or "text"
    unit: str
    minimum: float | None
    maximum: float | None
    help: str
    used: bool
    nullable: bool

    @property
    def label(self) -> str:
        words = self.name.replace("_", " ")
        return f"{words} ({self.unit})" if self.unit else words

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(clean value, None)`` or ``(None, problem)``."""
        if value is None:
            if self.used and not self.nullable:
                return None, "must not be null: the model needs a value"
            return None, None
        if self.kind == "text":
            return _check_text(value)
        return self._check_number(value)

    def _check_number(self, value: Any) -> tuple[float | None, str | None]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "must be a number"
        try:
            number = float(value)
        except OverflowError:  # a JSON integer with hundreds of digits
            number = math.inf
        if not math.isfinite(number):
            return None, "must be a finite number"
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and number < self.minimum:
            return None, f"must be >= {plain(self.minimum)}{unit}"
        if self.maximum is not None and number > self.maximum:
            return None, f"must be <= {plain(self.maximum)}{unit}"
        return number, None


def _check_text(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, "must be a string"
    text = value.strip()
    if len(text) > MAX_TEXT:
        return None, f"must be at most {MAX_TEXT} characters"
    return (text or None), None


def customer_fields(spec: FeatureSpec, used: Collection[str]) -> dict[str, CustomerField]:
    """Every feature of ``spec`` as a :class:`CustomerField`; ``used`` = the features the model takes."""
    unknown_when_new = {name for name, value in features(initialize(), 0).items() if value is None}
    out = {}
    for name in spec.feature_names:
        spec_range = spec.ranges.get(name)
        out[name] = CustomerField(
            name=name,
            kind="number" if name in spec.numeric else "text",
            unit=spec_range.unit if spec_range else "",
            minimum=spec_range.minimum if spec_range else None,
            maximum=spec_range.maximum if spec_range else None,
            help=spec_range.help if spec_range else "",
            used=name in used,
            nullable=name in unknown_when_new or name in spec.categorical,
        )
    return out


def validate_customer(
    data: Any, fields: Mapping[str, CustomerField], *, prefix: str = "", id_field: str = "customer_id"
) -> tuple[dict[str, Any], list[FieldError]]:
    """Check one customer's fields; return the clean row (every field, ``None`` when absent) and errors.

    ``id_field`` may carry an optional customer id (a string), echoed back and never scored.
    """
    if not isinstance(data, Mapping):
        return {}, [FieldError(prefix.rstrip(".") or "$", "must be a JSON object of features", data)]
    row: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, spec_field in fields.items():
        if name not in data:
            if spec_field.used:
                errors.append(FieldError(prefix + name, "is required"))
            row[name] = None
            continue
        row[name], problem = spec_field.check(data[name])
        if problem:
            errors.append(FieldError(prefix + name, problem, data[name]))
    for name in data:
        if name == id_field:
            if isinstance(data[name], str) and len(data[name]) <= 256:
                row[name] = data[name]
            else:
                problem = "must be a string of at most 256 characters"
                errors.append(FieldError(prefix + name, problem, data[name]))
        elif name not in fields:
            errors.append(FieldError(prefix + str(name), "is not a customer feature", data[name]))
    return row, errors


def _json_safe(value: Any) -> Any:
    """The offending value as JSON can carry it (NaN/inf and large objects become short strings)."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and len(value) <= 80):
        return value
    if (isinstance(value, float) and math.isfinite(value)) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
