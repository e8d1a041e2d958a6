"""The ONE per-customer aggregator: training, the stream and the form all compute features with it.

``initialize() -> state``, ``update(state, event) -> state``, ``features(state, now_ms) -> dict``.
Time is event time: ``now_ms`` is an event-time clock, never the wall clock, so replayed 1997 history is
days old, not decades. A ``now_ms`` earlier than the customer's own last event is raised to it, so late
or out-of-order events never turn the clock back or make recency negative.

The one rule: a customer's features are as of its own latest event (``last_event_ms(state)``), in
training (``batch_features``), in the stream and in the form. The stream must score that way to be
independent of batching, partitions and restarts; training does the same so that recency, tenure and
the decayed spend mean in training what they mean when the model is served. (Scored against the end of
the whole history instead, training saw recencies of up to 545 days on CDNOW while the purchase-driven
stream always sees 0, and nearly every streamed customer landed in one segment.)

Order does not matter (except for ``erase``, which empties the state): every field is a sum, count,
min, max or bitwise or, so any order of the same events gives the same state (the decayed spend only
up to float rounding, about 1e-15 relative). The latest demographics are chosen by (ts, crc32 of
event_id), so they too ignore arrival order. A profile event is a snapshot: attributes it leaves out
become unknown. The aggregator does not remember event ids: the stream drops re-sent events before
they reach it (``consumer/state_store.py`` keeps a ring of recent event ids beside the applied offset).

The state is compact because the stream keeps millions of them: an immutable ``bytes`` record (about
90 bytes) that is also its own versioned changelog value, so ``pack_state`` is free and
``unpack_state`` only validates. ``update`` returns a new state: always use the returned value.

>>> from model.events import Event
>>> day = 86_400_000
>>> s = update(initialize(), Event("e1", "c1", "purchase", 0, amount=10.0, category="books"))
>>> s = update(s, Event("e2", "c1", "purchase", 10 * day, amount=30.0, category="music"))
>>> f = features(s, now_ms=20 * day)
>>> f["recency_days"], f["frequency"], f["avg_order_value"], f["category_diversity"]
(10.0, 2.0, 20.0, 2.0)
>>> unpack_state(pack_state(s)) == s
True
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from model.events import Event
from model.spec import FeatureRange, FeatureSpec

__all__ = [
    "EVENT_FEATURE_SPEC",
    "CustomerState",
    "aggregate_history",
    "batch_features",
    "features",
    "initialize",
    "last_event_ms",
    "pack_state",
    "unpack_state",
    "update",
]

CustomerState = bytes
STATE_VERSION = 1
DAY_MS = 86_400_000
HALF_LIFE_DAYS = 90.0
RATE_WINDOW_DAYS = 30.0
MIN_TENURE_DAYS = 30.0  # purchase_rate floor: a one-day customer is not "30 purchases a month"
_NONE = -1  # "no such event yet" for the timestamps
_NO_AGE = 255
_MAX_INT64 = 2**63 - 1
_MAX_UINT32 = 2**32 - 1

_NUMERIC: dict[str, FeatureRange] = {
    "recency_days": FeatureRange("days", 0, 3650, "days since the last purchase"),
    "frequency": FeatureRange("purchases", 0, 1000, "number of purchases"),
    "monetary_total": FeatureRange("currency", 0, 100_000, "gross amount spent (refunds not deducted)"),
    "avg_order_value": FeatureRange("currency", 0, 10_000, "gross spend per purchase"),
    "tenure_days": FeatureRange("days", 0, 3650, "days since the customer's first event"),
    "purchase_rate": FeatureRange("purchases / 30 days", 0, 100, "purchases per 30 days of tenure"),
    "decayed_spend": FeatureRange(
        "currency", 0, 100_000, f"spend decayed with a {HALF_LIFE_DAYS:g}-day half-life"
    ),
    "refund_share": FeatureRange("fraction", 0, 1, "refunded amount / amount spent"),
    "category_diversity": FeatureRange("categories", 0, 64, "distinct categories bought"),
    "visits": FeatureRange("visits", 0, 10_000, "number of visits"),
    "age": FeatureRange("years", 0, 120, "latest reported age"),
    "income": FeatureRange("currency / year", 0, 1_000_000, "latest reported yearly income"),
}
EVENT_FEATURE_SPEC = FeatureSpec(
    id_column="customer_id",
    numeric=tuple(_NUMERIC),
    categorical=("gender", "country"),
    heavy_tailed=(
        "frequency",
        "monetary_total",
        "avg_order_value",
        "purchase_rate",
        "decayed_spend",
        "visits",
    ),
    ranges=_NUMERIC,
)


class _Fields(NamedTuple):
    """The fixed part of the state record; money in integer cents so sums are exact in any order."""

    version: int
    first_ms: int
    last_ms: int
    last_purchase_ms: int
    purchases: int
    visits: int
    spend_cents: int
    refund_cents: int
    decayed: float  # spend decayed to last_purchase_ms
    category_mask: int  # 64-bit hashed set: an estimate, two categories may rarely share a bit
    income: float  # NaN = unknown
    profile_ms: int
    profile_rank: int  # crc32(event_id): the stable tie-break between profiles with the same ts
    age: int


# version, first, last, last purchase, purchases, visits, spend, refunds, decayed, mask, income,
# profile ts, profile rank, age; then gender and country as length-prefixed UTF-8.
_FIXED = struct.Struct("<BqqqIIqqdQdqIB")


def initialize() -> CustomerState:
    """The state of a customer with no events."""
    fields = _Fields(STATE_VERSION, _NONE, _NONE, _NONE, 0, 0, 0, 0, 0.0, 0, math.nan, _NONE, 0, _NO_AGE)
    return _FIXED.pack(*fields) + b"\x00\x00"


def last_event_ms(state: CustomerState) -> int:
    """The customer's own event-time clock: the latest ``ts_ms`` seen, or -1 before any event."""
    return _FIXED.unpack_from(state)[2]


# Positions in the unpacked record, for the hot path (``update`` runs for every event in the stream).
_FIRST, _LAST, _LAST_PURCHASE, _PURCHASES, _VISITS, _SPEND, _REFUND, _DECAYED, _MASK = range(1, 10)
_INCOME, _PROFILE_MS, _PROFILE_RANK, _AGE = range(10, 14)


def update(state: CustomerState, event: Event) -> CustomerState:
    """The state after ``event`` (a new record; the argument is left unchanged)."""
    f = list(_FIXED.unpack_from(state))
    t = event.ts_ms
    f[_FIRST] = t if f[_FIRST] == _NONE else min(f[_FIRST], t)
    f[_LAST] = max(f[_LAST], t)
    tail = state[_FIXED.size :]
    kind = event.type
    if kind == "purchase":
        _add_purchase(f, t, event.amount or 0.0, event.category)
    elif kind == "refund":
        f[_REFUND] = min(f[_REFUND] + _cents(event.amount), _MAX_INT64)
    elif kind == "visit":
        f[_VISITS] = min(f[_VISITS] + 1, _MAX_UINT32)
    elif kind == "profile":
        rank = zlib.crc32(event.event_id.encode("utf-8"))
        if (t, rank) > (f[_PROFILE_MS], f[_PROFILE_RANK]):
            tail = _set_profile(f, t, rank, event.attributes or {})
    elif kind == "erase":
        return initialize()
    return _FIXED.pack(*f) + tail


def _add_purchase(f: list, t: int, amount: float, category: str | None) -> None:
    if category is not None:
        f[_MASK] |= 1 << (zlib.crc32(category.encode("utf-8")) & 63)
    anchor = f[_LAST_PURCHASE]
    if anchor == _NONE:
        f[_DECAYED], f[_LAST_PURCHASE] = amount, t
    elif t >= anchor:
        f[_DECAYED], f[_LAST_PURCHASE] = f[_DECAYED] * _decay(t - anchor) + amount, t
    else:
        f[_DECAYED] += amount * _decay(anchor - t)
    f[_PURCHASES] = min(f[_PURCHASES] + 1, _MAX_UINT32)
    f[_SPEND] = min(f[_SPEND] + _cents(amount), _MAX_INT64)


def _set_profile(f: list, t: int, rank: int, attrs: Any) -> bytes:
    """Replace the demographics with this (newer) profile snapshot; returns the new text tail."""
    age, income = attrs.get("age"), attrs.get("income")
    f[_PROFILE_MS], f[_PROFILE_RANK] = t, rank
    f[_AGE] = _NO_AGE if age is None else age
    f[_INCOME] = math.nan if income is None else float(income)
    return _text(attrs.get("gender")) + _text(attrs.get("country"))


def _decay(elapsed_ms: int) -> float:
    return 0.5 ** (elapsed_ms / (HALF_LIFE_DAYS * DAY_MS))


def _cents(amount: float | None) -> int:
    return round((amount or 0.0) * 100)


def _text(value: str | None) -> bytes:
    # cut at 255 bytes without splitting a character (the decoder allows 64 characters, up to 256 bytes)
    data = b"" if value is None else value.encode("utf-8")[:255].decode("utf-8", "ignore").encode("utf-8")
    return bytes((len(data),)) + data


def _texts(state: CustomerState) -> tuple[str | None, str | None]:
    out: list[str | None] = []
    pos = _FIXED.size
    for _ in range(2):
        n = state[pos]
        out.append(state[pos + 1 : pos + 1 + n].decode("utf-8") if n else None)
        pos += 1 + n
    return out[0], out[1]


def features(state: CustomerState, now_ms: int) -> dict[str, float | str | None]:
    """The feature row (keys == ``EVENT_FEATURE_SPEC.feature_names``; ``None`` = unknown) at ``now_ms``."""
    f = _Fields._make(_FIXED.unpack_from(state))
    now = max(now_ms, f.last_ms)
    bought = f.purchases > 0
    spend = f.spend_cents / 100
    tenure = (now - f.first_ms) / DAY_MS if f.first_ms != _NONE else 0.0
    gender, country = _texts(state)
    return {
        "recency_days": (now - f.last_purchase_ms) / DAY_MS if bought else None,
        "frequency": float(f.purchases),
        "monetary_total": spend,
        "avg_order_value": spend / f.purchases if bought else None,
        "tenure_days": tenure,
        "purchase_rate": f.purchases * RATE_WINDOW_DAYS / max(tenure, MIN_TENURE_DAYS),
        "decayed_spend": f.decayed * _decay(now - f.last_purchase_ms) if bought else 0.0,
        "refund_share": _refund_share(f.spend_cents, f.refund_cents),
        "category_diversity": float(f.category_mask.bit_count()),
        "visits": float(f.visits),
        "age": None if f.age == _NO_AGE else float(f.age),
        "income": None if math.isnan(f.income) else f.income,
        "gender": gender,
        "country": country,
    }


def _refund_share(spend_cents: int, refund_cents: int) -> float:
    if spend_cents <= 0:
        return 1.0 if refund_cents > 0 else 0.0  # refunds of purchases made before the history began
    return min(refund_cents / spend_cents, 1.0)


def pack_state(state: CustomerState) -> bytes:
    """The changelog value of ``state``: the state record itself (it carries its version byte)."""
    return bytes(state)


def unpack_state(data: bytes) -> CustomerState:
    """Check a changelog value and return the state; ``ValueError`` names what is wrong with it."""
    data = bytes(data)
    if not data:
        raise ValueError("customer state record is empty")
    if data[0] != STATE_VERSION:
        raise ValueError(
            f"customer state record has unknown version {data[0]} (this code reads {STATE_VERSION})"
        )
    pos = _FIXED.size
    for _ in range(2):
        if pos >= len(data):
            raise ValueError(f"customer state record is truncated ({len(data)} bytes)")
        pos += 1 + data[pos]
    if pos != len(data):
        raise ValueError(f"customer state record has {len(data)} bytes, its layout says {pos}")
    _texts(data)
    _check_invariants(_Fields._make(_FIXED.unpack_from(data)))
    return data


def _check_invariants(f: _Fields) -> None:
    broken = [
        name
        for name, ok in (
            ("first_ms <= last_ms", _NONE <= f.first_ms <= f.last_ms),
            ("last_purchase_ms <= last_ms", _NONE <= f.last_purchase_ms <= f.last_ms),
            ("purchases iff last_purchase_ms", (f.purchases == 0) == (f.last_purchase_ms == _NONE)),
            ("amounts >= 0", f.spend_cents >= 0 and f.refund_cents >= 0 and 0 <= f.decayed < math.inf),
            ("profile fields", (f.age <= 120 or f.age == _NO_AGE) and not f.income < 0),
        )
        if not ok
    ]
    if broken:
        raise ValueError(f"customer state record is corrupt: {', '.join(broken)} does not hold")


def aggregate_history(events: Iterable[Event]) -> dict[str, CustomerState]:
    """Every customer's state after its events (in any order, except that an ``erase`` forgets the
    events before it and the customer is left out unless events follow it)."""
    states: dict[str, CustomerState] = {}
    empty = initialize()
    for event in events:
        if event.type == "erase":
            states.pop(event.customer_id, None)
        else:
            states[event.customer_id] = update(states.get(event.customer_id, empty), event)
    return states


def batch_features(events: Iterable[Event], now_ms: int | None = None) -> pd.DataFrame:
    """One feature row per customer, indexed by ``customer_id``, computed by the streaming aggregator.

    Parameters
    ----------
    events : iterable of Event
        The history, in any order.
    now_ms : int, optional
        ``None`` (the default, what training uses): each customer's features are as of ITS OWN latest
        event, ``features(state, last_event_ms(state))``, exactly what the stream scores. An explicit
        event time gives a snapshot of everyone "as of one date" instead (for analysis, e.g. who has
        lapsed by the end of the history; not what the stream computes). Never the wall clock.

    Returns
    -------
    pandas.DataFrame
        Columns ``EVENT_FEATURE_SPEC.feature_names``; unknown values are NaN; categorical columns have
        ``object`` dtype.

    >>> from model.events import Event
    >>> day = 86_400_000
    >>> history = [Event("a", "early", "purchase", 0, amount=5.0),
    ...            Event("b", "late", "purchase", 100 * day, amount=5.0)]
    >>> batch_features(history)["recency_days"].tolist()
    [0.0, 0.0]
    >>> batch_features(history, now_ms=100 * day)["recency_days"].tolist()
    [100.0, 0.0]
    """
    states = aggregate_history(events)
    rows = [features(s, last_event_ms(s) if now_ms is None else now_ms) for s in states.values()]
    index = pd.Index(list(states), name=EVENT_FEATURE_SPEC.id_column, dtype=object)
    columns = {
        name: np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
        for name in EVENT_FEATURE_SPEC.numeric
    }
    for name in EVENT_FEATURE_SPEC.categorical:  # object dtype on pandas 2 and 3 alike, NaN when unknown
        values = [np.nan if r[name] is None else r[name] for r in rows]
        columns[name] = pd.Series(values, index=index, dtype=object)
    return pd.DataFrame(columns, index=index, columns=list(EVENT_FEATURE_SPEC.feature_names))


def state_summary(state: CustomerState) -> dict[str, Any]:
    """The raw state fields, for logs and debugging."""
    gender, country = _texts(state)
    return {**_Fields._make(_FIXED.unpack_from(state))._asdict(), "gender": gender, "country": country}
