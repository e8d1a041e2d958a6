"""The fields a person or a client enters: FEATURES of one customer, checked against the feature spec.

The form and the API take the same thing the model scores: one feature row. For an event model that
is what the stream computes from events (recency in days, number of purchases, amount spent, ...),
not events; for a table model, the columns of the training table. Every column of the spec the model
was trained from is listed (``deploy.web.schema``), so the form can show all of them; the ones the
model dropped in training are accepted as optional and ignored when scoring (the page says so).

Rules, shared by the form and the API:

- a feature the model uses must be given; ``null`` (API) means "unknown" and is allowed only for the
  ``nullable`` columns (``deploy.web.schema`` says which), and the model imputes it as in training;
- numbers must be finite and inside the spec's range; text at most :data:`MAX_TEXT` characters;
- a categorical column the model uses takes only the values seen in training (an unseen one would be
  scored as none of them without a word): the error lists the allowed values;
- unknown field names are errors (a typo must not silently become "unknown").

>>> from model.spec import FeatureRange, FeatureSpec
>>> spec = FeatureSpec("member_id", numeric=("orders", "age"), categorical=("channel",),
...                    ranges={"orders": FeatureRange("orders", 0, 500)},
...                    labels={"orders": "Orders in the last 12 months"})
>>> fields = customer_fields(spec, used={"orders", "channel"}, nullable={"age", "channel"},
...                          categories={"channel": ["online", "store"]})
>>> fields["orders"].label, fields["age"].label, fields["channel"].choices
('Orders in the last 12 months', 'age', ('online', 'store'))
>>> row, errors = validate_customer({"orders": -1, "channel": "phone", "colour": "red"}, fields)
>>> for error in errors:
...     print(f"{error.field}: {error.problem}")
orders: must be >= 0 orders
channel: 'phone' was not seen in training: choose one of online, store
colour: is not a customer feature
>>> validate_customer({"orders": 3, "channel": None}, fields)[0]["channel"] is None
True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    """One feature as an input field: kind, unit, range, whether the model uses it, its readable name
    and, for a categorical column the model uses, the values seen in training."""

    name: str
    kind: str  # "number" or "text"
    unit: str
    minimum: float | None
    maximum: float | None
    help: str
    used: bool
    nullable: bool
    title: str = ""  # the spec's label; empty: the name with spaces for underscores
    choices: tuple[str, ...] = ()  # empty: any text

    @property
    def label(self) -> str:
        """The readable name with the unit, unless a spec label already says it ("Orders in the last
        12 months", not "... (orders)")."""
        words = self.title or self.name.replace("_", " ")
        said = self.title and self.unit.lower() in self.title.lower()
        return f"{words} ({self.unit})" if self.unit and not said else words

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(clean value, None)`` or ``(None, problem)``."""
        if value is None:
            if self.used and not self.nullable:
                return None, "must not be null: the model needs a value"
            return None, None
        if self.kind == "text":
            return self._check_choice(*_check_text(value))
        return self._check_number(value)

    def _check_choice(self, text: str | None, problem: str | None) -> tuple[str | None, str | None]:
        if problem:
            return None, problem
        if text is None:  # blanks are unknown, as null is
            return (
                None,
                "must not be empty: the model needs a value" if self.used and not self.nullable else None,
            )
        if self.choices and text not in self.choices:
            return None, f"{_shown(text)} was not seen in training: choose one of {', '.join(self.choices)}"
        return text, None

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


def customer_fields(
    spec: FeatureSpec,
    used: Collection[str],
    *,
    nullable: Collection[str] = (),
    categories: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, CustomerField]:
    """Every feature of ``spec`` as a :class:`CustomerField`: ``used`` = the features the model takes,
    ``nullable`` = those that may be unknown, ``categories`` = the values a used categorical column
    takes (``SegmentModel.categories``)."""
    out = {}
    for name in spec.feature_names:
        spec_range = spec.ranges.get(name)
        label = spec.label(name)
        choices = (categories or {}).get(name, ()) if name in used else ()
        out[name] = CustomerField(
            name=name,
            kind="number" if name in spec.numeric else "text",
            unit=spec_range.unit if spec_range else "",
            minimum=spec_range.minimum if spec_range else None,
            maximum=spec_range.maximum if spec_range else None,
            help=spec_range.help if spec_range else "",
            used=name in used,
            nullable=name in nullable,
            title="" if label == name else label,
            choices=tuple(choices),
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


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _json_safe(value: Any) -> Any:
    """The offending value as JSON can carry it (NaN/inf and large objects become short strings)."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and len(value) <= 80):
        return value
    if (isinstance(value, float) and math.isfinite(value)) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."
