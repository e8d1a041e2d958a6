"""Dates instead of the time-dependent features: ``last_purchase``, ``first_seen`` and ``as_of``.

People know when a customer last bought and when it was first seen more readily than "days since".
When the feature spec has ``recency_days`` (``tenure_days``), the form and the API also take
``last_purchase`` (``first_seen``) as a date ``YYYY-MM-DD``, and ``as_of`` (default: today, UTC):

- ``recency_days = as_of - last_purchase`` and ``tenure_days = as_of - first_seen``, in whole days;
- a feature **or** its date, never both: giving both is an error on the date field (silently
  preferring one would hide a mistake);
- a date after ``as_of``, a last purchase before the first event, a date that is not ``YYYY-MM-DD``
  are field errors; the derived number is then checked like a typed one (range), and its error is
  reported on the date field it came from;
- ``as_of`` is echoed with the result when any of the three was given.

A spec without either feature (a customer table's, say) is offered none of these fields, and they
are "not taken by this model" if sent. Like the features themselves, a date whose feature the model
dropped in training is still checked, and the feature it gives is reported ignored.

>>> from datetime import date
>>> offered = offered_dates(["recency_days", "frequency"])
>>> offered
{'last_purchase': 'recency_days'}
>>> features, as_of, errors = resolve_dates({"last_purchase": "2024-04-21", "frequency": 3},
...                                         offered, today=date(2024, 5, 1))
>>> features, as_of, errors
({'frequency': 3, 'recency_days': 10}, datetime.date(2024, 5, 1), [])
>>> [(e.field, e.problem) for e in resolve_dates({"last_purchase": "2024-05-02"}, offered,
...                                               today=date(2024, 5, 1))[2]]
[('last_purchase', 'is after as_of (2024-05-01)')]
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any

from deploy.web.fields import FieldError

__all__ = [
    "AS_OF",
    "DATE_FOR",
    "attribute_errors",
    "offered_dates",
    "parse_date",
    "resolve_dates",
    "today_utc",
]

AS_OF = "as_of"
DATE_FOR = {"last_purchase": "recency_days", "first_seen": "tenure_days"}  # date field -> feature
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def today_utc() -> date:
    return datetime.now(UTC).date()


def offered_dates(features: Collection[str]) -> dict[str, str]:
    """The date fields a spec with ``features`` takes, each mapped to the feature it gives."""
    return {name: feature for name, feature in DATE_FOR.items() if feature in features}


def parse_date(value: Any) -> tuple[date | None, str | None]:
    """``(date, None)`` for a ``YYYY-MM-DD`` string, else ``(None, problem)``."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _ISO_DATE.fullmatch(text):
        return None, "must be a date YYYY-MM-DD"
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, f"is not a calendar date ({text})"


def resolve_dates(
    data: Any, offered: Mapping[str, str], *, today: date, prefix: str = ""
) -> tuple[Any, date | None, list[FieldError]]:
    """``(data with dates replaced by the features they give, as_of or None, errors)``.

    ``as_of`` is None when no date field was given; ``data`` that is not a mapping passes through.
    """
    given = [n for n in (*DATE_FOR, AS_OF) if isinstance(data, Mapping) and n in data]
    if not given:
        return data, None, []
    errors: list[FieldError] = []
    rest = {k: v for k, v in data.items() if k not in given}
    dates: dict[str, date] = {}
    for name in given:
        if name != AS_OF and name not in offered:
            problem = f"is not taken by this model (its features have no {DATE_FOR[name]})"
            errors.append(FieldError(prefix + name, problem, data[name]))
            continue
        parsed, problem = parse_date(data[name])
        if problem:
            errors.append(FieldError(prefix + name, problem, data[name]))
        elif name != AS_OF and DATE_FOR[name] in data:
            both = f"give {name} or {DATE_FOR[name]}, not both"
            errors.append(FieldError(prefix + name, both, data[name]))
        else:
            dates[name] = parsed
    as_of = dates.pop(AS_OF, None)
    if AS_OF in given and as_of is None:  # a bad as_of: nothing can be derived from it
        return rest, None, errors
    as_of = today if as_of is None else as_of
    order = _order_errors(dates, as_of, prefix)
    errors += order
    if not order:
        for name, day in dates.items():
            rest[DATE_FOR[name]] = (as_of - day).days
    return rest, as_of, errors


def attribute_errors(
    errors: list[FieldError], data: Any, offered: Mapping[str, str], prefix: str = ""
) -> list[FieldError]:
    """Feature errors said in terms of the dates: a derived value's error goes on its date field, and a
    missing feature that a date could give says so."""
    out = []
    date_of = {feature: name for name, feature in offered.items()}
    for error in errors:
        feature = error.field.removeprefix(prefix)
        name = date_of.get(feature) if error.field.startswith(prefix) else None
        from_date = name is not None and isinstance(data, Mapping) and name in data and feature not in data
        if from_date and error.problem == "is required":
            continue  # the date was given but was wrong: its own error says why
        if from_date:
            problem = f"gives {feature} = {error.value}, which {error.problem}"
            out.append(FieldError(prefix + name, problem, data[name]))
        elif name is not None and error.problem == "is required":
            out.append(FieldError(error.field, f"is required (or give {name})", error.value))
        else:
            out.append(error)
    return out


def _order_errors(dates: Mapping[str, date], as_of: date, prefix: str) -> list[FieldError]:
    errors = [
        FieldError(prefix + name, f"is after as_of ({as_of.isoformat()})", day.isoformat())
        for name, day in dates.items()
        if day > as_of
    ]
    first, last = dates.get("first_seen"), dates.get("last_purchase")
    if not errors and first is not None and last is not None and last < first:
        problem = f"is before first_seen ({first.isoformat()}): a purchase is an event"
        errors.append(FieldError(prefix + "last_purchase", problem, last.isoformat()))
    return errors
