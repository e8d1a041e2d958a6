"""The rules a feature spec must follow: the keys and types of its JSON file, and its columns' consistency.

A spec file is written by hand, so a typo must stop training instead of training another model: a
misspelled ``"categoricals"`` would otherwise drop the categorical columns without a word. Every key is
known (:data:`SPEC_KEYS`, :data:`RANGE_KEYS`), an unknown one is named with the closest valid one,
and a wrong type names the key and the value. ``FeatureSpec.from_dict`` reads JSON through
:func:`parse_fields`; every ``FeatureSpec`` (from JSON or built in code) passes :func:`check_columns`.
The JSON Schema :data:`SCHEMA_FILE` says the same for editors and other tools; a test keeps its keys
equal to these.

>>> parse_fields({"id_column": "id", "numeric": ["spend"], "categoricals": ["plan"]})
Traceback (most recent call last):
...
ValueError: feature spec: unknown key "categoricals" (did you mean "categorical"?)
>>> parse_fields({"id_column": "id", "numeric": "spend"})
Traceback (most recent call last):
...
ValueError: feature spec: numeric must be a list of column names, got 'spend'
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from model.errors import shown

__all__ = ["RANGE_KEYS", "SCHEMA_FILE", "SPEC_KEYS", "check_columns", "parse_fields"]

SPEC_KEYS = ("id_column", "numeric", "categorical", "heavy_tailed", "ranges", "labels", "groups")
"""Every key of a spec file (and of ``FeatureSpec.to_dict``); only ``id_column`` is required."""
RANGE_KEYS = ("unit", "minimum", "maximum", "help")
"""Every key of one entry of ``ranges`` (``minimum``/``maximum`` may be ``null``: no bound)."""
SCHEMA_FILE = Path(__file__).with_name("feature_spec.schema.json")
"""The JSON Schema of a spec file, shipped with the package."""

_WHERE = "feature spec"


def _quoted(text: str) -> str:
    """A key or column as it is written in JSON, cut short: the message must stay one readable line."""
    return json.dumps(text if len(text) <= 60 else text[:57] + "...")


def _closest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {_quoted(close[0])}?)" if close else ""


def _known_keys(data: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = _closest(str(key), allowed) or f" (valid keys: {', '.join(allowed)})"
            raise ValueError(f"{where}: unknown key {_quoted(str(key))}{hint}")


def _mapping(value: Any, key: str, what: str) -> Mapping:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ValueError(f"{_WHERE}: {key} must be an object of {what}, got {shown(value)}")
    return value


def _name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{_WHERE}: {key} must be a column name (a non-empty string), got {shown(value)}")
    return value


def _names(value: Any, key: str) -> tuple[str, ...]:
    """A list of distinct column names (a bare string is refused: ``tuple("spend")`` is five columns)."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{_WHERE}: {key} must be a list of column names, got {shown(value)}")
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        raise ValueError(f"{_WHERE}: {key} lists {', '.join(map(_quoted, twice))} more than once")
    return tuple(value)


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_WHERE}: {key} must be a string, got {shown(value)}")
    return value


def _bound(value: Any, key: str) -> float | None:
    # bool is an int in Python, but `"minimum": true` is a mistake, not 1.
    if value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ):
        return value
    raise ValueError(f"{_WHERE}: {key} must be a finite number or null, got {shown(value)}")


def _range(column: str, entry: Any) -> dict[str, Any]:
    where = f"ranges[{_quoted(column)}]"
    if not isinstance(entry, Mapping):
        keys = ", ".join(RANGE_KEYS)
        raise ValueError(f"{_WHERE}: {where} must be an object with {keys}, got {shown(entry)}")
    _known_keys(entry, RANGE_KEYS, f"{_WHERE}: {where}")
    fields = {"unit": _text(entry.get("unit", ""), f"{where}.unit")}
    fields |= {key: _bound(entry.get(key), f"{where}.{key}") for key in ("minimum", "maximum")}
    return fields | {"help": _text(entry.get("help", ""), f"{where}.help")}


def parse_fields(data: Any) -> dict[str, Any]:
    """The ``FeatureSpec`` fields of a spec's JSON object, each checked (``ranges`` as keyword dicts).

    Raises ``ValueError`` naming the offending key and value; the columns' consistency is
    :func:`check_columns`'s job.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{_WHERE} must be a JSON object, got {shown(data)}")
    _known_keys(data, SPEC_KEYS, _WHERE)
    if "id_column" not in data:
        raise ValueError(f'{_WHERE}: missing key "id_column" (the column naming the customer)')
    fields: dict[str, Any] = {"id_column": _name(data["id_column"], "id_column")}
    fields |= {key: _names(data.get(key, []), key) for key in ("numeric", "categorical", "heavy_tailed")}
    ranges = _mapping(data.get("ranges", {}), "ranges", "column: {unit, minimum, maximum, help}")
    fields["ranges"] = {column: _range(column, entry) for column, entry in ranges.items()}
    labels = _mapping(data.get("labels", {}), "labels", "column: label")
    fields["labels"] = {column: _text(text, f"labels[{_quoted(column)}]") for column, text in labels.items()}
    groups = _mapping(data.get("groups", {}), "groups", "group: [columns]")
    fields["groups"] = {name: _names(members, f"groups[{_quoted(name)}]") for name, members in groups.items()}
    return fields


def check_columns(spec: Any) -> None:
    """Raise ``ValueError`` unless ``spec``'s column lists, ranges, labels and groups agree.

    Every declared column once; at least one feature; ``heavy_tailed`` and ``ranges`` only for numeric
    columns; no range with ``minimum > maximum``; ``labels`` and ``groups`` only for feature columns,
    each column in at most one non-empty group, and no group named after a column outside it.
    """
    names = spec.numeric + spec.categorical
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{_WHERE} lists {duplicated} more than once (numeric and categorical)")
    if not names:
        raise ValueError(f"{_WHERE} declares no feature columns (numeric and categorical are empty)")
    stray = sorted(set(spec.heavy_tailed) - set(spec.numeric))
    if stray:
        raise ValueError(f"{_WHERE}: heavy_tailed names {stray}, which are not numeric columns")
    for column, bounds in spec.ranges.items():
        if column in spec.categorical:
            raise ValueError(
                f"{_WHERE}: ranges names {_quoted(column)}, a categorical column: ranges are for numeric ones"
            )
        _declared(column, "ranges", spec.numeric, "numeric column")
        if bounds.minimum is not None and bounds.maximum is not None and bounds.minimum > bounds.maximum:
            raise ValueError(
                f"{_WHERE}: ranges[{_quoted(column)}] has minimum {bounds.minimum} > maximum {bounds.maximum}"
            )
    for column in spec.labels:  # a readable name for a column, or for a group of them
        _declared(column, "labels", (*names, *spec.groups), "declared feature column or group")
    _check_groups(spec.groups, names)


def _declared(column: str, key: str, columns: tuple[str, ...], what: str) -> None:
    if column not in columns:
        hint = _closest(column, columns)
        raise ValueError(f"{_WHERE}: {key} names {_quoted(column)}, which is not a {what}{hint}")


def _check_groups(groups: Mapping[str, tuple[str, ...]], names: tuple[str, ...]) -> None:
    seen: dict[str, str] = {}
    for group, members in groups.items():
        if not members:
            raise ValueError(f"{_WHERE}: group {_quoted(group)} has no columns")
        if group in names and group not in members:
            # group_of() would then count that column and this group as one.
            raise ValueError(f"{_WHERE}: group {_quoted(group)} is named after a column it does not hold")
        for column in members:
            _declared(column, f"groups[{_quoted(group)}]", names, "declared feature column")
            if column in seen:
                raise ValueError(
                    f"{_WHERE}: column {_quoted(column)} is in two groups, {_quoted(seen[column])} and "
                    f"{_quoted(group)}"
                )
            seen[column] = group
