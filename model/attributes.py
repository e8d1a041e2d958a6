"""Table columns in the stream: a model's columns that ``profile`` events carry as ``attributes``.

A model trained from a customer table declares columns the aggregator does not compute (``plan``,
``household_size``, ``policy_count``, ...). In the stream they arrive as ``attributes`` of ``profile``
events, from a profile system or a CDC feed: an event may carry any of them, and **the latest value
per column by event time wins** (one event may update only the income, another only the plan). A
``null`` clears a column (it is unknown from then on, until a later value). Columns the aggregator
computes (``recency_days``, ``frequency``, the demographics ``age``/``gender``/``income``/``country``,
...) keep the aggregator's rules (``model.features``); everything else in a spec is a table column.

Each value is checked against the spec (a number inside the declared range for a numeric column, text
of at most 64 characters or an integer for a categorical one); a bad value raises :class:`InvalidEvent`
naming the column, so the event becomes a dead letter. An attribute that is neither a table column
nor a demographic is not an error (profile systems add fields): the caller counts it
(:meth:`TableColumns.unknown`).

The values live in the customer's state record, after the aggregator's texts, as one block::

    0   B    block version (1)
    1   I    layout fingerprint: crc32 of the columns' names and kinds (a block written for another
             model's columns reads as empty: its positions would mean other columns)
    5   B    n, the number of columns
    6   ...  per column, in the spec's order: a tag byte, 0 = never set, 1 = number, 2 = text,
             3 = cleared (null); for 1..3 the event time in whole seconds (I), then for 1 a float64,
             for 2 a length byte and that many bytes of UTF-8

Times are kept to the second to keep a 12-column table state small; within one second the later
record of the partition wins (its order is fixed, so the outcome is too, whatever the batching).

>>> from model.spec import FeatureRange, FeatureSpec
>>> spec = FeatureSpec("id", numeric=("children",), categorical=("plan",),
...                    ranges={"children": FeatureRange("children", 0, 20)})
>>> table = TableColumns.from_spec(spec, computed=())
>>> block = table.merge(b"", 1_000, {"plan": "pro", "children": 2})
>>> block = table.merge(block, 500, {"plan": "basic"})        # older: the newer "pro" stays
>>> table.values(block)
{'children': 2.0, 'plan': 'pro'}
>>> table.values(table.merge(block, 2_000, {"children": None}))
{'children': None, 'plan': 'pro'}
>>> table.merge(block, 3_000, {"children": -1})
Traceback (most recent call last):
...
model.errors.InvalidEvent: invalid event field 'attributes.children': must be a number >= 0 (got -1)
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from model.errors import InvalidEvent
from model.spec import FeatureRange, FeatureSpec

__all__ = ["BLOCK_VERSION", "MAX_TEXT_CHARS", "TableColumns"]

BLOCK_VERSION = 1
MAX_TEXT_CHARS = 64  # as the event decoder's other text fields
_HEAD = struct.Struct("<BIB")  # version, fingerprint, n
_STAMP = struct.Struct("<BI")  # tag, seconds
_NUMBER = struct.Struct("<d")
_UNSET, _NUMBER_TAG, _TEXT_TAG, _CLEARED = 0, 1, 2, 3
_MAX_SECONDS = 2**32 - 1


@dataclass(frozen=True)
class TableColumns:
    """The table columns of one spec: names in spec order, which are numeric, and their ranges."""

    names: tuple[str, ...]
    numeric: frozenset[str]
    ranges: Mapping[str, FeatureRange]

    @classmethod
    def from_spec(cls, spec: FeatureSpec, computed: Collection[str]) -> TableColumns | None:
        """The spec's columns not in ``computed`` (the aggregator's features); ``None`` if there are none."""
        names = tuple(name for name in spec.feature_names if name not in computed)
        if not names:
            return None
        return cls(
            names,
            frozenset(spec.numeric) & set(names),
            {n: spec.ranges[n] for n in names if n in spec.ranges},
        )

    @property
    def fingerprint(self) -> int:
        layout = "\n".join(f"{name}:{'n' if name in self.numeric else 'c'}" for name in self.names)
        return zlib.crc32(layout.encode("utf-8"))

    def unknown(self, attributes: Mapping[str, Any], known: Collection[str]) -> int:
        """How many of ``attributes`` are neither table columns nor in ``known`` (ignored, counted)."""
        return sum(1 for name in attributes if name not in known and name not in self.names)

    def merge(self, block: bytes, ts_ms: int, attributes: Mapping[str, Any]) -> bytes:
        """The block after an event at ``ts_ms`` with ``attributes``; raises ``InvalidEvent`` for a bad
        value (checked before anything changes: the caller's state is never half-updated)."""
        given = {name: self._checked(name, attributes[name]) for name in self.names if name in attributes}
        if not given:
            return block
        cells = self._cells(block)
        seconds = min(max(ts_ms // 1000, 0), _MAX_SECONDS)
        for position, name in enumerate(self.names):
            if name in given and (cells[position] is None or seconds >= cells[position][0]):
                cells[position] = (seconds, given[name])
        return self._pack(cells)

    def values(self, block: bytes) -> dict[str, float | str | None]:
        """Every table column's current value (``None``: unknown)."""
        return {
            name: None if cell is None else cell[1]
            for name, cell in zip(self.names, self._cells(block), strict=True)
        }

    def _checked(self, name: str, value: Any) -> float | str | None:
        field = f"attributes.{name}"
        if value is None:
            return None
        if name in self.numeric:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidEvent(field, "must be a number", value, reason="wrong_type")
            number = float(value)
            bounds = self.ranges.get(name)
            if not math.isfinite(number):
                raise InvalidEvent(field, "must be a finite number", value)
            if bounds is not None and bounds.minimum is not None and number < bounds.minimum:
                raise InvalidEvent(field, f"must be a number >= {bounds.minimum:g}", value)
            if bounds is not None and bounds.maximum is not None and number > bounds.maximum:
                raise InvalidEvent(field, f"must be a number <= {bounds.maximum:g}", value)
            return number
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a table read from CSV holds "3", as text, for a numbered category
        if not isinstance(value, str):
            raise InvalidEvent(field, "must be text (or an integer code)", value, reason="wrong_type")
        if not value.strip() or len(value) > MAX_TEXT_CHARS or not value.isprintable():
            raise InvalidEvent(field, f"must be 1 to {MAX_TEXT_CHARS} printable characters", value)
        return value

    def _cells(self, block: bytes) -> list[tuple[int, float | str | None] | None]:
        """``(seconds, value)`` per column, ``None`` where never set; a foreign or empty block is empty."""
        cells: list[tuple[int, float | str | None] | None] = [None] * len(self.names)
        if not block:
            return cells
        version, fingerprint, n = _HEAD.unpack_from(block)
        if version != BLOCK_VERSION or fingerprint != self.fingerprint or n != len(self.names):
            return cells
        pos = _HEAD.size
        for position in range(n):
            tag = block[pos]
            if tag == _UNSET:
                pos += 1
                continue
            seconds = _STAMP.unpack_from(block, pos)[1]
            pos += _STAMP.size
            if tag == _NUMBER_TAG:
                value: float | str | None = _NUMBER.unpack_from(block, pos)[0]
                pos += _NUMBER.size
            elif tag == _TEXT_TAG:
                length = block[pos]
                value = block[pos + 1 : pos + 1 + length].decode("utf-8")
                pos += 1 + length
            else:
                value = None
            cells[position] = (seconds, value)
        return cells

    def _pack(self, cells: list[tuple[int, float | str | None] | None]) -> bytes:
        parts = [_HEAD.pack(BLOCK_VERSION, self.fingerprint, len(self.names))]
        for cell in cells:
            if cell is None:
                parts.append(b"\x00")
                continue
            seconds, value = cell
            if value is None:
                parts.append(_STAMP.pack(_CLEARED, seconds))
            elif isinstance(value, str):
                # 64 characters may take 256 bytes: cut at 255 without splitting a character
                data = value.encode("utf-8")[:255].decode("utf-8", "ignore").encode("utf-8")
                parts.append(_STAMP.pack(_TEXT_TAG, seconds) + bytes((len(data),)) + data)
            else:
                parts.append(_STAMP.pack(_NUMBER_TAG, seconds) + _NUMBER.pack(value))
        return b"".join(parts)


def check_block(block: bytes) -> None:
    """Check a block's structure without knowing its columns; ``ValueError`` says what is wrong."""
    if len(block) < _HEAD.size or block[0] != BLOCK_VERSION:
        raise ValueError(f"table-column block of {len(block)} bytes has no valid header")
    pos = _HEAD.size
    for _ in range(block[_HEAD.size - 1]):
        if pos >= len(block):
            raise ValueError("table-column block is truncated")
        tag = block[pos]
        if tag > _CLEARED:
            raise ValueError(f"table-column block has unknown tag {tag}")
        pos += 1 if tag == _UNSET else _STAMP.size
        if tag == _NUMBER_TAG:
            pos += _NUMBER.size
        elif tag == _TEXT_TAG:
            if pos >= len(block):
                raise ValueError("table-column block is truncated")
            block[pos + 1 : pos + 1 + block[pos]].decode("utf-8")
            pos += 1 + block[pos]
    if pos != len(block):
        raise ValueError(f"table-column block has {len(block)} bytes, its layout says {pos}")
