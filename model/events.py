"""The event contract: decode and validate once at the edge, trust the typed ``Event`` inside.

An event is a JSON object::

    {"event_id": "e-1", "customer_id": "c-42", "type": "purchase", "ts": "2024-05-01T12:00:00Z",
     "amount": 19.99, "quantity": 2, "category": "books", "channel": "web"}

- ``event_id``, ``customer_id``: non-empty strings of at most 128 characters without control
  characters. Integers (not booleans) are accepted and converted to their decimal string, because
  many source systems number their customers; ``7`` and ``"7"`` are the same customer.
- ``type``: one of ``EVENT_TYPES``.
- ``ts``: event time, ISO-8601 (a naive time is taken as UTC) or epoch milliseconds (a finite
  non-negative number; fractions of a millisecond are dropped). Old history (1997) is fine; a time more
  than ``max_future_ms`` (default one day) past the wall clock is rejected as ``future_timestamp``, one
  before ``min_event_ms`` (default 1990-01-01) as ``implausible_timestamp``: epoch *seconds* read as
  milliseconds land in January 1970, and a ``ts`` of 0 would give a customer 50 years of tenure.
- ``purchase`` / ``refund``: ``amount`` required (0 <= amount <= 1e9); optional ``quantity`` (integer
  0..1e6), ``category`` and ``channel`` (strings of at most 64 characters).
- ``visit``: optional ``category`` and ``channel``.
- ``profile``: a non-empty ``attributes`` object. The demographics the aggregator keeps are checked
  here: ``age`` (integer 0..120), ``gender`` (string), ``income`` (0 <= income <= 1e9) and
  ``country`` (string; two-letter codes are upper-cased). Every other attribute is passed on as it
  came: it may be a column of a model trained from a customer table, which the scorer checks against
  that model's spec (``model.attributes``); one that no column uses is ignored and counted
  (``segmenter_attributes_unknown_total``) and its name logged once, because profile systems add
  fields (a misspelt key shows up there instead of as a dead letter).
- ``erase``: no other field; the customer's state is deleted (right to erasure) and later events
  start a new history.
- ``null`` means absent. Unknown top-level keys are ignored (producers may add metadata), but a known
  field that does not belong to the type (``amount`` on a ``visit``) is rejected.

>>> e = decode_event(b'{"event_id": "e1", "customer_id": 42, "type": "purchase", "ts": 1e12, "amount": 5}')
>>> e.customer_id, e.amount, event_to_dict(e)["ts"]
('42', 5.0, '2001-09-09T01:46:40.000Z')
>>> decode_event(encode_event(e)) == e
True
>>> decode_event('{"event_id": "e2", "customer_id": "c", "type": "purchase", "ts": 1e12, "amount": -1}')
Traceback (most recent call last):
...
model.errors.InvalidEvent: invalid event field 'amount': must be between 0 and 1000000000.0 (got -1)
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from model.errors import InvalidEvent

__all__ = [
    "DEFAULT_MAX_FUTURE_MS",
    "DEFAULT_MIN_EVENT_MS",
    "EVENT_TYPES",
    "Event",
    "decode_event",
    "encode_event",
    "event_to_dict",
]

EVENT_TYPES = ("purchase", "refund", "visit", "profile", "erase")
DEFAULT_MAX_FUTURE_MS = 86_400_000
DEFAULT_MIN_EVENT_MS = 631_152_000_000  # 1990-01-01T00:00:00Z
MAX_MESSAGE_BYTES = 65_536

_OPTIONAL_BY_TYPE = {
    "purchase": ("amount", "quantity", "category", "channel"),
    "refund": ("amount", "quantity", "category", "channel"),
    "visit": ("category", "channel"),
    "profile": ("attributes",),
    "erase": (),
}
_TYPED_FIELDS = ("amount", "quantity", "category", "channel", "attributes")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Event(NamedTuple):
    """One validated customer event; build it with ``decode_event`` unless the source is trusted.

    A named tuple rather than a frozen dataclass: it is as immutable, and building one is a few times
    cheaper, which the scorer does once per event (``event._replace(...)`` derives a changed copy)."""

    event_id: str
    customer_id: str
    type: str
    ts_ms: int
    amount: float | None = None
    quantity: int | None = None
    category: str | None = None
    channel: str | None = None
    attributes: Mapping[str, Any] | None = None


def decode_event(
    raw: bytes | str | Mapping[str, Any],
    *,
    max_future_ms: int | None = DEFAULT_MAX_FUTURE_MS,
    now_ms: int | None = None,
    min_event_ms: int | None = DEFAULT_MIN_EVENT_MS,
) -> Event:
    """Validate one raw event and return it typed.

    Parameters
    ----------
    raw : bytes, str or Mapping
        The JSON message (UTF-8 bytes or text) or an already parsed object.
    max_future_ms : int or None
        How far past ``now_ms`` an event time may lie; ``None`` disables the check.
    now_ms : int, optional
        The wall clock for the future check (defaults to ``time.time()``; tests pass it).
    min_event_ms : int or None
        The earliest plausible event time (epoch milliseconds); ``None`` disables the check.

    Raises
    ------
    InvalidEvent
        For every kind of bad input, naming the field, the problem and the value.
    """
    obj = _parse(raw)
    type_ = _event_type(obj.get("type"))
    extra = [k for k in _TYPED_FIELDS if obj.get(k) is not None and k not in _OPTIONAL_BY_TYPE[type_]]
    if extra:
        raise InvalidEvent(extra[0], f"is not allowed on {type_} events", obj[extra[0]])
    fields = {k: obj.get(k) for k in _OPTIONAL_BY_TYPE[type_]}
    return Event(
        event_id=_identifier("event_id", obj.get("event_id")),
        customer_id=_identifier("customer_id", obj.get("customer_id")),
        type=type_,
        ts_ms=_timestamp(obj.get("ts"), max_future_ms, now_ms, min_event_ms),
        amount=_money("amount", fields["amount"]) if type_ in ("purchase", "refund") else None,
        quantity=_optional(_quantity, "quantity", fields.get("quantity")),
        category=_optional(_short_text, "category", fields.get("category")),
        channel=_optional(_short_text, "channel", fields.get("channel")),
        attributes=_attributes(fields["attributes"]) if type_ == "profile" else None,
    )


def _parse(raw: Any) -> Mapping[str, Any]:
    if type(raw) is bytes and len(raw) <= MAX_MESSAGE_BYTES:
        # The fast path for a well-formed message: orjson validates UTF-8 and rejects NaN/Infinity as
        # the stdlib decoder below is set up to. Anything it refuses (bad UTF-8, not JSON, a lone
        # surrogate escape) takes the stdlib path, which accepts exactly what it accepted before or
        # names the problem as before. So does a message with 19 digits in a row: orjson reads an
        # integer beyond 64 bits as a float, where the stdlib keeps it exact (an id stays an id).
        try:
            parsed = None if _LONG_DIGITS.search(raw) else orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if type(parsed) is dict:
            return parsed
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidEvent(
                "$", f"message is larger than {MAX_MESSAGE_BYTES} bytes", raw, reason="too_large"
            )
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent("$", f"is not valid UTF-8 ({exc.reason})", raw, reason="bad_utf8") from None
    if isinstance(raw, str):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidEvent(
                "$", f"message is larger than {MAX_MESSAGE_BYTES} bytes", raw, reason="too_large"
            )
        try:
            raw = _JSON.decode(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidEvent("$", f"is not JSON ({exc})", raw, reason="not_json") from None
    if not isinstance(raw, Mapping):
        raise InvalidEvent("$", "must be a JSON object", raw, reason="wrong_type")
    return raw


_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: ``json.loads`` with keyword arguments builds a new decoder on every call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _event_type(value: Any) -> str:
    if value is None:
        raise InvalidEvent("type", "is required", value, reason="missing_field")
    if not isinstance(value, str):
        raise InvalidEvent("type", "must be a string", value, reason="wrong_type")
    if value not in EVENT_TYPES:
        raise InvalidEvent("type", f"must be one of {', '.join(EVENT_TYPES)}", value, reason="unknown_type")
    return value


def _timestamp(value: Any, max_future_ms: int | None, now_ms: int | None, min_event_ms: int | None) -> int:
    ts_ms = _timestamp_ms("ts", value)
    if min_event_ms is not None and ts_ms < min_event_ms:
        raise InvalidEvent(
            "ts",
            f"is before {format_ts(min_event_ms)} (--min-event-time)",
            value,
            reason="implausible_timestamp",
        )
    if max_future_ms is not None:
        wall_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ts_ms > wall_ms + max_future_ms:
            limit = f"{max_future_ms / 3_600_000:g} h"
            raise InvalidEvent("ts", f"is more than {limit} in the future", value, reason="future_timestamp")
    return ts_ms


MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 64
MAX_AMOUNT = 1e9
MAX_QUANTITY = 1_000_000
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant datetime can print
_ATTRIBUTES = ("age", "gender", "income", "country")


def _identifier(name: str, value: Any) -> str:
    if value is None:
        raise InvalidEvent(name, "is required", value, reason="missing_field")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidEvent(name, "must be a string or an integer", value, reason="wrong_type")
    return _checked_text(name, value, MAX_ID_CHARS)


def _short_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidEvent(name, "must be a string", value, reason="wrong_type")
    return _checked_text(name, value, MAX_TEXT_CHARS)


def _checked_text(name: str, value: str, max_chars: int) -> str:
    if 0 < len(value) <= max_chars and value.isprintable() and not value.isspace():
        return value  # the common case, checked in one go
    if not value.strip():
        raise InvalidEvent(name, "must not be empty", value)
    if len(value) > max_chars:
        raise InvalidEvent(name, f"must be at most {max_chars} characters", value)
    if not value.isprintable():
        raise InvalidEvent(name, "must contain only printable characters", value)
    return value


def _number(name: str, value: Any, maximum: float) -> float:
    if value is None:
        raise InvalidEvent(name, "is required", value, reason="missing_field")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(name, "must be a number", value, reason="wrong_type")
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= maximum:
        raise InvalidEvent(name, f"must be between 0 and {maximum}", value)
    return value


def _money(name: str, value: Any) -> float:
    return float(_number(name, value, MAX_AMOUNT))


def _quantity(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(name, "must be an integer", value, reason="wrong_type")
    return int(_number(name, value, MAX_QUANTITY))


def _optional(check: Any, name: str, value: Any) -> Any:
    return None if value is None else check(name, value)


def _timestamp_ms(name: str, value: Any) -> int:
    if value is None:
        raise InvalidEvent(name, "is required", value, reason="missing_field")
    if isinstance(value, str):
        return _iso_to_ms(name, value)
    return int(_number(name, value, MAX_TS_MS))


def _iso_to_ms(name: str, value: str) -> int:
    try:
        dt = datetime.fromisoformat(value.strip()) if len(value) <= MAX_TEXT_CHARS else None
    except ValueError:
        dt = None
    if dt is None:
        raise InvalidEvent(name, "must be ISO-8601 text or epoch milliseconds", value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    ts_ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if not 0 <= ts_ms <= MAX_TS_MS:
        raise InvalidEvent(name, "must be between 1970-01-01 and 9999-12-31 UTC", value)
    return ts_ms


def _attributes(value: Any) -> dict[str, Any]:
    if value is None:
        raise InvalidEvent("attributes", "is required on profile events", value, reason="missing_field")
    if not isinstance(value, Mapping):
        raise InvalidEvent("attributes", "must be an object", value, reason="wrong_type")
    if not value:
        raise InvalidEvent("attributes", "must hold at least one attribute", value)
    out: dict[str, Any] = {k: v for k, v in value.items() if k not in _ATTRIBUTES}
    if value.get("age") is not None:
        out["age"] = _age(value["age"])
    if value.get("gender") is not None:
        out["gender"] = _short_text("attributes.gender", value["gender"])
    if value.get("income") is not None:
        out["income"] = _money("attributes.income", value["income"])
    if value.get("country") is not None:
        country = _short_text("attributes.country", value["country"])
        out["country"] = country.upper() if len(country) == 2 else country
    return out


def _age(value: Any) -> int:
    age = _quantity("attributes.age", value)
    if age > 120:
        raise InvalidEvent("attributes.age", "must be between 0 and 120", value)
    return age


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict (``ts`` as ISO-8601 UTC with milliseconds; absent fields left out)."""
    out: dict[str, Any] = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "type": event.type,
        "ts": format_ts(event.ts_ms),
    }
    for name in _TYPED_FIELDS:
        value = getattr(event, name)
        if value is not None:
            out[name] = dict(value) if name == "attributes" else value
    return out


def encode_event(event: Event) -> bytes:
    """Compact UTF-8 JSON that ``decode_event`` turns back into an equal event."""
    return json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_ts(ts_ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds, e.g. ``1970-01-01T00:00:00.000Z``.

    >>> format_ts(1_000_000_000_123), format_ts(-1)
    ('2001-09-09T01:46:40.123Z', '1969-12-31T23:59:59.999Z')
    """
    # Every update carries two of these: the day's text is looked up, the time of day is arithmetic.
    days, ms_of_day = divmod(ts_ms, 86_400_000)
    day = _DAY_TEXT.get(days)
    if day is None:
        day = _day_text(days, ts_ms)
    seconds, ms = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


_DAY_TEXT: dict[int, str] = {}
_DAY_TEXT_MAX = 4096  # days remembered (a replay walks forward through time; a tick reuses its day)


def _day_text(days: int, ts_ms: int) -> str:
    try:
        text = (date(1970, 1, 1) + timedelta(days=days)).isoformat()
    except OverflowError:  # outside years 1..9999: the error datetime raises for such a time
        datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
        raise
    if len(_DAY_TEXT) >= _DAY_TEXT_MAX:
        _DAY_TEXT.clear()
    _DAY_TEXT[days] = text
    return text
