"""The ONE per-customer aggregator: training, the stream and the form all compute features with it.

``initialize() -> state``, ``update(state, event) -> state``, ``features(state, now_ms) -> dict``.
Time is event time: ``now_ms`` is an event-time clock, never the wall clock, so replayed 1997 history is
days old, not decades. A ``now_ms`` earlier than the customer's own last event is raised to it, so late
or out-of-order events never turn the clock back or make recency negative.

Features are computed as of a clock time (``model.clock``): in the stream, the partition's stream
time, with ageing ticks re-scoring quiet customers; in training, reference times, the end of the history
and periodic snapshot dates (``snapshot_features``), so training sees customers at every stage of their
lives, recent and lapsed, the mix an ageing stream scores. (Scored as of each customer's own latest
event instead, CDNOW's recency was always 0 and nobody ever lapsed.)

Order does not matter (except for ``erase``, which empties the state): every field is a sum, count,
min, max or bitwise or, so any order of the same events gives the same state (the decayed spend only
up to float rounding, about 1e-15 relative). The latest demographics are chosen by (ts, crc32 of
event_id), so they too ignore arrival order. A profile event that carries any of them is a snapshot of
the four: those it leaves out become unknown (one that carries none leaves them as they were). A
model trained from a customer table has further columns, which profile events carry one by one
(``model.attributes``: the latest value per column wins) and which :func:`update` and
:func:`features` handle when given the model's :func:`table_columns`. The aggregator does not
remember event ids: the stream drops re-sent events before they reach it
(``consumer/state_store.py`` keeps a ring of recent event ids beside the applied offset).

The state is compact because the stream keeps millions of them: an immutable ``bytes`` record (about
90 bytes) that is also its own versioned changelog value, so ``pack_state`` is free and
``unpack_state`` only validates. Its layout, version and checks are in ``model.changelog`` with the
changelog's other records. ``update`` returns a new state: always use the returned value.

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
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from model.attributes import TableColumns
from model.changelog import (
    CENTS_MAX,
    COUNT_MAX,
    NO_AGE,
    NO_TIME,
    StateFields,
    check_state,
    empty_state,
    pack_state_fields,
    pack_texts,
    split_tail,
    state_tail,
    unpack_state_fields,
    unpack_texts,
)
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
    "snapshot_features",
    "table_columns",
    "unpack_state",
    "update",
]

CustomerState = bytes  # a ``model.changelog`` state record
DAY_MS = 86_400_000
HALF_LIFE_DAYS = 90.0
RATE_WINDOW_DAYS = 30.0
MIN_TENURE_DAYS = 30.0  # purchase_rate floor: a one-day customer is not "30 purchases a month"

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


DEMOGRAPHICS = ("age", "gender", "income", "country")  # the profile attributes the aggregator keeps
TIME_DEPENDENT = frozenset({"recency_days", "tenure_days", "purchase_rate", "decayed_spend"})
"""Features that change with the clock alone: a model using none of them has nothing to age."""


def table_columns(spec: FeatureSpec) -> TableColumns | None:
    """The columns of ``spec`` that profile events carry (``model.attributes``): every column the
    aggregator does not compute; ``None`` for a spec of aggregator features only (the event model)."""
    return TableColumns.from_spec(spec, computed=EVENT_FEATURE_SPEC.feature_names)


_EMPTY = empty_state()


def initialize() -> CustomerState:
    """The state of a customer with no events."""
    return _EMPTY


def last_event_ms(state: CustomerState) -> int:
    """The customer's own event-time clock: the latest ``ts_ms`` seen, or -1 before any event."""
    return unpack_state_fields(state)[_LAST]


# Positions in the unpacked record, for the hot path (``update`` runs for every event in the stream).
_FIRST, _LAST, _LAST_PURCHASE, _PURCHASES, _VISITS, _SPEND, _REFUND, _DECAYED, _MASK = (
    StateFields._fields.index(name)
    for name in (
        "first_ms",
        "last_ms",
        "last_purchase_ms",
        "purchases",
        "visits",
        "spend_cents",
        "refund_cents",
        "decayed",
        "category_mask",
    )
)
_INCOME, _PROFILE_MS, _PROFILE_RANK, _AGE = (
    StateFields._fields.index(name) for name in ("income", "profile_ms", "profile_rank", "age")
)


def update(state: CustomerState, event: Event, table: TableColumns | None = None) -> CustomerState:
    """The state after ``event`` (a new record; the argument is left unchanged).

    ``table``: the model's table columns (:func:`table_columns`), which profile events update; a bad
    value for one of them raises ``InvalidEvent`` and nothing changes.
    """
    f = list(unpack_state_fields(state))
    t = event.ts_ms
    f[_FIRST] = t if f[_FIRST] == NO_TIME else min(f[_FIRST], t)
    f[_LAST] = max(f[_LAST], t)
    tail = state_tail(state)
    kind = event.type
    if kind == "purchase":
        _add_purchase(f, t, event.amount or 0.0, event.category)
    elif kind == "refund":
        f[_REFUND] = min(f[_REFUND] + _cents(event.amount), CENTS_MAX)
    elif kind == "visit":
        f[_VISITS] = min(f[_VISITS] + 1, COUNT_MAX)
    elif kind == "profile":
        attributes = event.attributes or {}
        texts, block = split_tail(state)
        if table is not None:
            block = table.merge(block, t, attributes)
        rank = zlib.crc32(event.event_id.encode("utf-8"))
        if any(name in attributes for name in DEMOGRAPHICS) and (t, rank) > (
            f[_PROFILE_MS],
            f[_PROFILE_RANK],
        ):
            texts = _set_profile(f, t, rank, attributes)
        tail = texts + block
    elif kind == "erase":
        return initialize()
    return pack_state_fields(f, tail)


def _add_purchase(f: list, t: int, amount: float, category: str | None) -> None:
    if category is not None:
        f[_MASK] |= 1 << (zlib.crc32(category.encode("utf-8")) & 63)
    anchor = f[_LAST_PURCHASE]
    if anchor == NO_TIME:
        f[_DECAYED], f[_LAST_PURCHASE] = amount, t
    elif t >= anchor:
        f[_DECAYED], f[_LAST_PURCHASE] = f[_DECAYED] * _decay(t - anchor) + amount, t
    else:
        f[_DECAYED] += amount * _decay(anchor - t)
    f[_PURCHASES] = min(f[_PURCHASES] + 1, COUNT_MAX)
    f[_SPEND] = min(f[_SPEND] + _cents(amount), CENTS_MAX)


def _set_profile(f: list, t: int, rank: int, attrs: Any) -> bytes:
    """Replace the demographics with this (newer) profile snapshot; returns the new text tail."""
    age, income = attrs.get("age"), attrs.get("income")
    f[_PROFILE_MS], f[_PROFILE_RANK] = t, rank
    f[_AGE] = NO_AGE if age is None else age
    f[_INCOME] = math.nan if income is None else float(income)
    return pack_texts(attrs.get("gender"), attrs.get("country"))


def _decay(elapsed_ms: int) -> float:
    return 0.5 ** (elapsed_ms / (HALF_LIFE_DAYS * DAY_MS))


def _cents(amount: float | None) -> int:
    return round((amount or 0.0) * 100)


def features(
    state: CustomerState, now_ms: int, table: TableColumns | None = None
) -> dict[str, float | str | None]:
    """The feature row at ``now_ms``: ``EVENT_FEATURE_SPEC.feature_names``, then ``table``'s columns
    (``None`` = unknown)."""
    f = StateFields._make(unpack_state_fields(state))
    now = max(now_ms, f.last_ms)
    bought = f.purchases > 0
    spend = f.spend_cents / 100
    tenure = (now - f.first_ms) / DAY_MS if f.first_ms != NO_TIME else 0.0
    gender, country = unpack_texts(state)
    row = {
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
        "age": None if f.age == NO_AGE else float(f.age),
        "income": None if math.isnan(f.income) else f.income,
        "gender": gender,
        "country": country,
    }
    if table is not None:
        row.update(table.values(split_tail(state)[1]))
    return row


def _refund_share(spend_cents: int, refund_cents: int) -> float:
    if spend_cents <= 0:
        return 1.0 if refund_cents > 0 else 0.0  # refunds of purchases made before the history began
    return min(refund_cents / spend_cents, 1.0)


def pack_state(state: CustomerState) -> bytes:
    """The changelog value of ``state``: the state record itself (it carries its version byte)."""
    return bytes(state)


def unpack_state(data: bytes) -> CustomerState:
    """Check a changelog value and return the state; ``ValueError`` names what is wrong with it."""
    return check_state(data)


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
        ``None`` (the default): each customer's features are as of ITS OWN latest event,
        ``features(state, last_event_ms(state))``. An explicit event time gives everyone "as of one
        date" (training uses :func:`snapshot_features`, which does that at several dates). Never the
        wall clock.

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
    return _frame(rows, pd.Index(list(states), name=EVENT_FEATURE_SPEC.id_column, dtype=object))


def snapshot_features(events: Iterable[Event], as_of_times: Iterable[int]) -> pd.DataFrame:
    """Everyone's feature rows as of each of several dates: the training rows of an event history.

    At each time ``t`` of ``as_of_times``, every customer with an event at or before ``t`` gets one row,
    ``features(state, t)``, from its events up to ``t`` only (an ``erase`` at or before ``t`` forgets
    the events before it). The events are sorted by time once and folded forward with :func:`update`,
    so the cost is one fold of the history plus one :func:`features` call per row.

    Returns
    -------
    pandas.DataFrame
        Columns ``EVENT_FEATURE_SPEC.feature_names`` as in :func:`batch_features`, indexed by
        (``customer_id``, ``as_of_ms``), rows in time order, then in the order the customers first
        appeared.

    >>> from model.events import Event
    >>> day = 86_400_000
    >>> history = [Event("a", "early", "purchase", 0, amount=5.0),
    ...            Event("b", "late", "purchase", 100 * day, amount=5.0),
    ...            Event("c", "early", "purchase", 110 * day, amount=5.0)]
    >>> rows = snapshot_features(history, [50 * day, 120 * day])
    >>> rows[["recency_days", "frequency"]].reset_index().values.tolist()
    [['early', 4320000000, 50.0, 1.0], ['early', 10368000000, 10.0, 2.0], ['late', 10368000000, 20.0, 1.0]]
    """
    ordered = sorted(events, key=lambda e: e.ts_ms)  # stable: same-time events keep their order
    states: dict[str, CustomerState] = {}
    rows, ids, times = [], [], []
    position, empty = 0, initialize()
    for t in sorted(set(as_of_times)):
        while position < len(ordered) and ordered[position].ts_ms <= t:
            event = ordered[position]
            position += 1
            if event.type == "erase":
                states.pop(event.customer_id, None)
            else:
                states[event.customer_id] = update(states.get(event.customer_id, empty), event)
        rows += [features(state, t) for state in states.values()]
        ids += states.keys()
        times += [t] * len(states)
    index = pd.MultiIndex.from_arrays(
        [pd.Index(ids, dtype=object), pd.Index(times, dtype="int64")],
        names=[EVENT_FEATURE_SPEC.id_column, "as_of_ms"],
    )
    return _frame(rows, index)


def _frame(rows: list[dict], index: pd.Index) -> pd.DataFrame:
    columns = {
        name: np.array([np.nan if r[name] is None else r[name] for r in rows], dtype=float)
        for name in EVENT_FEATURE_SPEC.numeric
    }
    for name in EVENT_FEATURE_SPEC.categorical:  # object dtype on pandas 2 and 3 alike, NaN when unknown
        values = [np.nan if r[name] is None else r[name] for r in rows]
        columns[name] = pd.Series(values, index=index, dtype=object)
    return pd.DataFrame(columns, index=index, columns=list(EVENT_FEATURE_SPEC.feature_names))
