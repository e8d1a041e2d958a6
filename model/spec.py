"""What a model's input looks like: the declared feature spec shared by training, stream and form.

A spec names the id column, the numeric and categorical feature columns, which numeric columns are
heavy-tailed (money and counts: log-transformed before scaling), and optional units and sensible
ranges that the web form shows. Its ``schema_hash`` is stored in every artifact, so a model is never
fed features it was not trained on. A spec file is JSON and is read strictly: an unknown key, a wrong
type or columns that contradict each other is an error (``model.spec_checks``; its JSON Schema is
``model/feature_spec.schema.json``).

>>> spec = FeatureSpec(id_column="customer_id", numeric=("spend",), categorical=("country",),
...                    heavy_tailed=("spend",))
>>> spec.feature_names
('spend', 'country')
>>> FeatureSpec.from_dict(spec.to_dict()) == spec
True

In a feature row, ``None`` or NaN is an unknown value; :func:`number_or_nan` and :func:`is_missing` are
the one way the code reads a value that way:

>>> number_or_nan(3), number_or_nan("2.5"), number_or_nan(None), number_or_nan("n/a")
(3.0, 2.5, nan, nan)
>>> is_missing(None), is_missing(float("nan")), is_missing(0.0)
(True, True, False)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from model.spec_checks import check_columns, parse_fields


def number_or_nan(value: Any) -> float:
    """``value`` as a float; NaN (unknown) for ``None`` and for anything that is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_missing(value: Any) -> bool:
    """Whether a feature value is unknown: ``None`` or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class FeatureRange:
    """Unit and sensible input range of one numeric feature, for people (the form) not the model."""

    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    id_column: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    heavy_tailed: tuple[str, ...] = ()
    ranges: dict[str, FeatureRange] = field(default_factory=dict, compare=False, hash=False)
    # For people only (names, the form, the report); they never change the model's input or hash.
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_columns(self)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def label(self, name: str) -> str:
        """The readable name of a column: its ``label`` in the spec, else the column name."""
        return self.labels.get(name) or name

    def group_of(self, name: str) -> str:
        """The group a column belongs to (related columns, e.g. a policy's count and amount), else
        the column itself: names and explanations count a group once."""
        for group, members in self.groups.items():
            if name in members:
                return group
        return name

    def schema_hash(self) -> str:
        """sha256 over the columns, their kinds and transforms: changes when the model's input does."""
        payload = json.dumps(
            {"numeric": self.numeric, "categorical": self.categorical, "heavy_tailed": self.heavy_tailed},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def restricted_to(self, columns: set[str]) -> FeatureSpec:
        """The same spec without the features not in ``columns`` (e.g. demographics absent from data)."""
        groups = {g: kept for g, m in self.groups.items() if (kept := tuple(c for c in m if c in columns))}
        return FeatureSpec(
            id_column=self.id_column,
            numeric=tuple(c for c in self.numeric if c in columns),
            categorical=tuple(c for c in self.categorical if c in columns),
            heavy_tailed=tuple(c for c in self.heavy_tailed if c in columns),
            ranges={k: v for k, v in self.ranges.items() if k in columns},
            labels={k: v for k, v in self.labels.items() if k in columns or k in groups},
            groups=groups,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "heavy_tailed": list(self.heavy_tailed),
            "ranges": {k: vars(v) for k, v in self.ranges.items()},
            "labels": dict(self.labels),
            "groups": {g: list(m) for g, m in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """The spec a JSON object declares; ``ValueError`` naming the key for an unknown key (with the
        closest valid one), a wrong type, or columns that do not agree (``model.spec_checks``)."""
        fields = parse_fields(data)
        ranges = {column: FeatureRange(**bounds) for column, bounds in fields.pop("ranges").items()}
        return cls(**fields, ranges=ranges)
