"""The aggregator's features for many stored customers at once, as columns: what an ageing tick scores.

:func:`model.features.features` computes one customer's row; a tick re-scores every customer of a
partition as of one boundary, which row by row would cost microseconds a customer. Here the same
formulas run on numpy columns read straight from the changelog entries
(:func:`model.changelog.entry_columns`), and the two text fields become categorical columns decoded
once per distinct value. ``tests/test_feature_columns.py`` checks that both give the same numbers.

Numeric columns are float arrays (NaN: unknown); categorical ones are :class:`CodedColumn` (codes
into the distinct values, -1: unknown), so a preprocessor maps each distinct category once, not once
per customer, with no pandas overhead (a tick of a small partition is many small calls).

>>> from model.changelog import encode_entry, NO_RECENT_IDS
>>> from model.events import Event
>>> from model.features import DAY_MS, initialize, update
>>> state = update(initialize(), Event("e1", "c1", "purchase", 0, amount=10.0))
>>> columns = entry_feature_columns([encode_entry(state, 0, -1, NO_RECENT_IDS)], now_ms=3 * DAY_MS)
>>> columns["recency_days"].tolist(), columns["frequency"].tolist(), columns["gender"].to_objects().tolist()
([3.0], [1.0], [None])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.attributes import TableColumns
from model.changelog import NO_AGE, NO_TIME, entry_columns, unpack_texts
from model.features import (
    DAY_MS,
    EVENT_FEATURE_SPEC,
    HALF_LIFE_DAYS,
    MIN_TENURE_DAYS,
    RATE_WINDOW_DAYS,
)

__all__ = ["CodedColumn", "at_times", "entry_feature_columns", "features_as_of", "time_columns"]

_NO_TEXT_STATE = b"\x01" + bytes(85)  # unpack_texts reads the tail after the fixed part


@dataclass(frozen=True, slots=True)
class CodedColumn:
    """A categorical column: ``codes`` index ``values`` (-1: unknown)."""

    codes: np.ndarray
    values: list[str]

    def __len__(self) -> int:
        return len(self.codes)

    def to_objects(self) -> np.ndarray:
        """The column as an object array, ``None`` where unknown."""
        return np.array([*self.values, None], dtype=object)[self.codes]


def entry_feature_columns(
    entries: list[bytes], now_ms: int, table: TableColumns | None = None
) -> dict[str, np.ndarray | CodedColumn]:
    """Every feature of ``EVENT_FEATURE_SPEC`` (and ``table``'s columns) for current-layout changelog
    ``entries``, as of ``now_ms``."""
    fields, tails = entry_columns(entries)
    return features_as_of(fields, tails, now_ms, table)


def features_as_of(
    fields: np.ndarray, tails: list[bytes], now_ms: int, table: TableColumns | None = None
) -> dict:
    """The feature columns of entries already split by :func:`model.changelog.entry_columns`."""
    purchases = fields["purchases"].astype(float)
    bought = purchases > 0
    spend = fields["spend_cents"] / 100
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = {
            "frequency": purchases,
            "monetary_total": spend,
            "avg_order_value": np.where(bought, spend / np.where(bought, purchases, 1.0), np.nan),
            "refund_share": _refund_share(fields["spend_cents"], fields["refund_cents"]),
            "category_diversity": _bit_count(fields["category_mask"]),
            "visits": fields["visits"].astype(float),
            "age": np.where(fields["age"] == NO_AGE, np.nan, fields["age"].astype(float)),
            "income": fields["income"].astype(float),
            **time_columns(fields, now_ms),
        }
    if table is not None:
        tails, blocks = _split(tails)
        columns.update(_table_columns(table, blocks))
    columns.update(_text_columns(tails))
    return {
        name: columns[name] for name in (*EVENT_FEATURE_SPEC.feature_names, *(table.names if table else ()))
    }


def time_columns(fields: np.ndarray, now_ms: int) -> dict[str, np.ndarray]:
    """The columns that move with the clock alone (``model.features.TIME_DEPENDENT``) as of ``now_ms``.

    Each is monotone in ``now_ms`` while the customer sends nothing: recency and tenure grow, the
    purchase rate and the decayed spend shrink. Ageing relies on that (``model.horizon``): a customer
    whose features at two times both lie well inside its segment stays in it in between.
    """
    now = np.maximum(np.int64(now_ms), fields["last_ms"])
    bought = fields["purchases"] > 0
    first = fields["first_ms"]
    tenure = np.where(first != NO_TIME, (now - first) / DAY_MS, 0.0)
    since_purchase = (now - fields["last_purchase_ms"]) / DAY_MS
    return {
        "recency_days": np.where(bought, since_purchase, np.nan),
        "tenure_days": tenure,
        "purchase_rate": fields["purchases"] * RATE_WINDOW_DAYS / np.maximum(tenure, MIN_TENURE_DAYS),
        "decayed_spend": np.where(bought, fields["decayed"] * 0.5 ** (since_purchase / HALF_LIFE_DAYS), 0.0),
    }


def at_times(columns: dict, fields: np.ndarray, times_ms: list[int]) -> dict:
    """``columns`` (as of some time) moved to each of ``times_ms``, stacked: ``len(times_ms) * n`` rows,
    the rows of the first time first. Only the time-dependent columns are recomputed."""
    moved = [time_columns(fields, t) for t in times_ms]
    stacked: dict = {}
    for name, column in columns.items():
        if name in moved[0]:
            stacked[name] = np.concatenate([m[name] for m in moved])
        elif isinstance(column, CodedColumn):
            stacked[name] = CodedColumn(np.tile(column.codes, len(times_ms)), column.values)
        else:
            stacked[name] = np.tile(column, len(times_ms))
    return stacked


def _split(tails: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Each tail cut into its two texts and its table-column block."""
    texts, blocks = [], []
    for tail in tails:
        end = 2 + tail[0]
        end += tail[end - 1]
        texts.append(tail[:end])
        blocks.append(tail[end:])
    return texts, blocks


def _table_columns(table: TableColumns, blocks: list[bytes]) -> dict[str, np.ndarray | CodedColumn]:
    """The table columns of every block: numbers as float arrays, text as coded columns."""
    rows = [table.values(block) for block in blocks]
    out: dict[str, np.ndarray | CodedColumn] = {}
    for name in table.names:
        values = [row[name] for row in rows]
        if name in table.numeric:
            out[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
            continue
        categories = sorted({v for v in values if v is not None})
        lookup = {v: i for i, v in enumerate(categories)}
        out[name] = CodedColumn(np.array([lookup.get(v, -1) for v in values], dtype=np.int64), categories)
    return out


def _refund_share(spend_cents: np.ndarray, refund_cents: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.minimum(refund_cents / np.where(spend_cents > 0, spend_cents, 1), 1.0)
    return np.where(spend_cents > 0, share, np.where(refund_cents > 0, 1.0, 0.0))


def _bit_count(masks: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (the hashed category set)."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(masks).astype(float)
    as_bytes = masks.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1).astype(float)


def _text_columns(tails: list[bytes]) -> dict[str, CodedColumn]:
    """Gender and country as coded columns, each distinct text tail decoded once."""
    distinct: dict[bytes, int] = {}
    codes = np.fromiter((distinct.setdefault(t, len(distinct)) for t in tails), np.int64, len(tails))
    decoded = [unpack_texts(_NO_TEXT_STATE + tail) for tail in distinct]
    out = {}
    for position, name in enumerate(("gender", "country")):
        values = [d[position] for d in decoded]
        categories = sorted({v for v in values if v is not None})
        lookup = {v: i for i, v in enumerate(categories)}
        per_tail = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
        out[name] = CodedColumn(per_tail[codes], categories)
    return out
