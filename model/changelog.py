"""The state changelog format: every record kind, key, layout and version, encoded and decoded here.

The scorer keeps its per-customer state in a compacted changelog topic, one partition per input
partition. Changing a layout means editing this file only: the aggregator (``model.features``), the
store (``consumer.state_store``), restore (``consumer.state_restore``) and the online model
(``model.online``) use the functions below and never a struct of their own.

Record kinds
------------
=============================  =====================================  ===================================
key                            value                                  tombstone (``None`` value)
=============================  =====================================  ===================================
customer id (UTF-8)            customer entry, version 2 (1 is read)  the customer was erased, or the
                                                                      partition reset (``--reset-state``)
``b"\\x00online-model"``        online-model checkpoint, version 1      the partition was reset
``b"\\x00clock"``               partition clock, version 1              the partition was reset
=============================  =====================================  ===================================

The checkpoint and clock keys start with NUL, which a customer id never holds (ids are printable text:
``model.events``). Every integer is little-endian; offsets below are in bytes.

Customer entry, version 2 (``ENTRY_VERSION``; the value is the in-memory form too, so writing the
changelog costs no encoding)::

    0   B    entry version (2)
    1   q    input offset of the last event applied (-1: none); replays at or below it are skipped
    9   h    last segment published (-1: none yet)
    11  6I   ring of the crc32 of the customer's last ``RECENT_IDS`` event ids, newest last (0: empty
             slot; a hash of 0 is stored as 1), so a re-sent event (same ``event_id``) counts once
    35  ...  aggregator state record (below)

Version 1 is the same without the ring: the state record starts at 11. It is read with an empty ring
and restore keeps it in the current layout (:func:`entry_is_current`).

Aggregator state record, version 1 (``STATE_VERSION``; the ``model.features`` state *is* this record,
so ``pack_state`` is free and ``unpack_state`` only validates)::

    0   B    state version (1)
    1   q    first event ts (ms; -1: no event yet)      57  Q  category set: 64-bit hashed bitmask
    9   q    last event ts (ms; -1)                      65  d  income (NaN: unknown)
    17  q    last purchase ts (ms; -1)                   73  q  ts of the latest profile (ms; -1)
    25  I    purchases (saturating)                      81  I  crc32 of that profile's event id
    29  I    visits (saturating)                         85  B  age (255: unknown)
    33  q    spend (integer cents, saturating)           86  gender, then country: each a length byte
    41  q    refunds (integer cents, saturating)             and that many bytes of UTF-8 (0: unknown)
    49  d    spend decayed to the last purchase ts
    ...      then, only for a model with table columns, their values: the block that
             ``model.attributes`` defines (version 1, layout fingerprint, one tagged cell per column)

Partition clock, version 2 (``CLOCK_VERSION``; ``model.clock``: written in the same commit as the
state it was computed with, so a restored partition resumes with its own stream time, and knows which
model its segments come from)::

    0   B    clock version (2; version 1 is the first 17 bytes, read with the model unknown)
    1   q    stream time (ms; -1: no event yet): the largest event time applied in the partition
    9   q    the last tick boundary aged to (ms; -1: none)
    17  8s   fingerprint of the model the stored segments were scored with (zeros: unknown); another
             live model re-scores the partition first (``consumer.sweep``)

Online-model checkpoint, version 1 (``CHECKPOINT_VERSION``; never a pickle, the changelog is data)::

    0   B    checkpoint version (1)
    1   8s   first 8 bytes of sha256(base model id): a checkpoint fits only the model it was seeded from
    9   I    k (centres)
    13  I    d (dimensions)
    17  Q    rows learned
    25  ...  k x d float64 centres, row by row

The sizes above are the structs'; a layout change that forgets the table fails here:

>>> _ENTRY_HEADER.size, _ENTRY_HEADER.size + _RING.size, _STATE_FIXED.size, _CHECKPOINT_HEADER.size
(11, 35, 86, 25)
>>> _CLOCK.size, ENTRY_FIXED_DTYPE.itemsize == _STATE_AT + _STATE_FIXED.size
(25, True)
>>> state = empty_state()
>>> entry = encode_entry(state, 41, NO_SEGMENT, ring_push(NO_RECENT_IDS, "e-7"))
>>> decode_entry(entry) == decode_trusted_entry(entry), ring_holds(decode_entry(entry)[3], "e-7")
(True, True)
>>> decode_entry(b"xx")
Traceback (most recent call last):
...
ValueError: changelog entry of 2 bytes is shorter than its 11-byte header
"""

from __future__ import annotations

import hashlib
import math
import operator
import struct
import zlib
from typing import NamedTuple

import numpy as np

from model.attributes import check_block

__all__ = [
    "CENTS_MAX",
    "CHECKPOINT_VERSION",
    "CLOCK_KEY",
    "CLOCK_VERSION",
    "COUNT_MAX",
    "ENTRY_FIXED_DTYPE",
    "ENTRY_VERSION",
    "NO_AGE",
    "NO_RECENT_IDS",
    "NO_SEGMENT",
    "NO_TIME",
    "ONLINE_MODEL_KEY",
    "RECENT_IDS",
    "STATE_VERSION",
    "Checkpoint",
    "StateFields",
    "check_state",
    "checkpoint_rows_learned",
    "decode_checkpoint",
    "decode_clock",
    "decode_entry",
    "decode_trusted_entry",
    "empty_state",
    "encode_checkpoint",
    "encode_clock",
    "encode_entry",
    "entry_columns",
    "entry_is_current",
    "model_fingerprint",
    "pack_state_fields",
    "pack_texts",
    "ring_holds",
    "ring_push",
    "screen_entries",
    "split_tail",
    "state_tail",
    "unpack_state_fields",
    "unpack_texts",
]

# ---- keys -------------------------------------------------------------------------------------------

ONLINE_MODEL_KEY = b"\x00online-model"
CLOCK_KEY = b"\x00clock"

# ---- customer entry ---------------------------------------------------------------------------------

ENTRY_VERSION = 2
_RING_SINCE_VERSION = 2
_ENTRY_HEADER = struct.Struct("<Bqh")  # entry version, last applied offset, last segment
RECENT_IDS = 6
_RING = struct.Struct(f"<{RECENT_IDS}I")
_STATE_AT = _ENTRY_HEADER.size + _RING.size  # where the state record starts in a current entry
NO_RECENT_IDS = bytes(_RING.size)
NO_SEGMENT = -1


def encode_entry(state: bytes, last_offset: int, last_segment: int, recent_ids: bytes) -> bytes:
    """A customer entry in the current layout (``recent_ids`` is a ring from :func:`ring_push`)."""
    return _ENTRY_HEADER.pack(ENTRY_VERSION, last_offset, last_segment) + recent_ids + state


def decode_entry(data: bytes) -> tuple[bytes, int, int, bytes]:
    """``(state, last_offset, last_segment, recent_ids)`` of any readable version, all validated.

    ``ValueError`` names what is wrong (its message is what restore reports for a quarantined entry).
    """
    if len(data) < _ENTRY_HEADER.size:
        raise ValueError(
            f"changelog entry of {len(data)} bytes is shorter than its {_ENTRY_HEADER.size}-byte header"
        )
    version, offset, segment = _ENTRY_HEADER.unpack_from(data)
    if version not in (1, ENTRY_VERSION):
        raise ValueError(f"changelog entry version {version} is not {ENTRY_VERSION}")
    has_ring = version >= _RING_SINCE_VERSION
    state_at = _STATE_AT if has_ring else _ENTRY_HEADER.size
    if len(data) < state_at:
        raise ValueError(f"changelog entry of {len(data)} bytes is shorter than its {state_at}-byte header")
    recent = data[_ENTRY_HEADER.size : state_at] if has_ring else NO_RECENT_IDS
    return check_state(data[state_at:]), offset, segment, recent


def decode_trusted_entry(data: bytes) -> tuple[bytes, int, int, bytes]:
    """:func:`decode_entry` without checks, for an entry already validated in the current layout."""
    _, offset, segment = _ENTRY_HEADER.unpack_from(data)
    return data[_STATE_AT:], offset, segment, data[_ENTRY_HEADER.size : _STATE_AT]


def entry_is_current(data: bytes) -> bool:
    """Whether a valid entry is already in the current layout (else re-encode what it decodes to)."""
    return data[0] == ENTRY_VERSION


def _id_hash(event_id: str) -> int:
    return zlib.crc32(event_id.encode("utf-8")) or 1  # 0 marks an empty slot


def ring_holds(recent_ids: bytes, event_id: str) -> bool:
    """Whether ``event_id`` is among the ids of the ring (six 32-bit hashes: a genuine event is
    mistaken for a repeat about once in 700 million)."""
    return _id_hash(event_id) in _RING.unpack(recent_ids)


def ring_push(recent_ids: bytes, event_id: str) -> bytes:
    """The ring with ``event_id`` added as the newest, the oldest dropped."""
    return recent_ids[4:] + _id_hash(event_id).to_bytes(4, "little")


# ---- aggregator state record ------------------------------------------------------------------------

STATE_VERSION = 1
NO_TIME = -1  # "no such event yet" in the timestamp fields
NO_AGE = 255
COUNT_MAX = 2**32 - 1  # purchases and visits saturate here (``I`` fields)
CENTS_MAX = 2**63 - 1  # spend and refunds saturate here (``q`` fields)
_TEXT_MAX = 255  # bytes of a text field (one length byte)


class StateFields(NamedTuple):
    """The fixed part of the state record, in layout order; the defaults are a customer with no events.

    Money is in integer cents so sums are exact in any order.
    """

    version: int = STATE_VERSION
    first_ms: int = NO_TIME
    last_ms: int = NO_TIME
    last_purchase_ms: int = NO_TIME
    purchases: int = 0
    visits: int = 0
    spend_cents: int = 0
    refund_cents: int = 0
    decayed: float = 0.0  # spend decayed to last_purchase_ms
    category_mask: int = 0  # 64-bit hashed set: an estimate, two categories may rarely share a bit
    income: float = math.nan  # NaN = unknown
    profile_ms: int = NO_TIME
    profile_rank: int = 0  # crc32(event_id): the stable tie-break between profiles with the same ts
    age: int = NO_AGE


_STATE_FIXED = struct.Struct("<BqqqIIqqdQdqIB")  # StateFields, in order
_NO_TEXTS = b"\x00\x00"

unpack_state_fields = _STATE_FIXED.unpack_from  # (state) -> tuple in StateFields order; no checks


def pack_state_fields(fields: tuple | list, tail: bytes) -> bytes:
    """A state record of the fixed ``fields`` (``StateFields`` order) and a text tail (:func:`pack_texts`)."""
    return _STATE_FIXED.pack(*fields) + tail


def state_tail(state: bytes) -> bytes:
    """The tail of a state record (texts and table-column block), to carry over unchanged."""
    return state[_STATE_FIXED.size :]


def _texts_end(state: bytes) -> int:
    """Where the two texts end: the table-column block, if any, starts there."""
    pos = _STATE_FIXED.size
    for _ in range(2):
        if pos >= len(state):
            return len(state) + 1
        pos += 1 + state[pos]
    return pos


def split_tail(state: bytes) -> tuple[bytes, bytes]:
    """``(texts, table-column block)`` of a state record; the block is ``b""`` when there is none."""
    end = _texts_end(state)
    return state[_STATE_FIXED.size : end], state[end:]


def empty_state() -> bytes:
    """The state record of a customer with no events."""
    return pack_state_fields(StateFields(), _NO_TEXTS)


def _text(value: str | None) -> bytes:
    # cut at 255 bytes without splitting a character (model.events allows 64 characters, up to 256 bytes)
    if value is None:
        return b"\x00"
    data = value.encode("utf-8")[:_TEXT_MAX].decode("utf-8", "ignore").encode("utf-8")
    return bytes((len(data),)) + data


def pack_texts(gender: str | None, country: str | None) -> bytes:
    """The text tail of a state record (``None`` and ``""`` are both stored as unknown)."""
    return _text(gender) + _text(country)


def unpack_texts(state: bytes) -> tuple[str | None, str | None]:
    """``(gender, country)`` of a state record, ``None`` when unknown."""
    out: list[str | None] = []
    pos = _STATE_FIXED.size
    for _ in range(2):
        n = state[pos]
        out.append(state[pos + 1 : pos + 1 + n].decode("utf-8") if n else None)
        pos += 1 + n
    return out[0], out[1]


def check_state(data: bytes) -> bytes:
    """Check a state record and return it; ``ValueError`` names what is wrong with it."""
    data = bytes(data)
    if not data:
        raise ValueError("customer state record is empty")
    if data[0] != STATE_VERSION:
        raise ValueError(
            f"customer state record has unknown version {data[0]} (this code reads {STATE_VERSION})"
        )
    pos = _texts_end(data)
    if pos > len(data):
        raise ValueError(f"customer state record is truncated ({len(data)} bytes)")
    if pos < len(data):
        check_block(data[pos:])  # the model's table columns (``model.attributes``)
    unpack_texts(data)  # UnicodeDecodeError is a ValueError
    _check_invariants(StateFields._make(_STATE_FIXED.unpack_from(data)))
    return data


# The state record's invariants, each written with operators that work on one record's fields (a dict)
# and on a column of many (a structured array), so one table serves :func:`check_state` and
# :func:`screen_entries`. A NaN fails every comparison: ``decayed`` must be a number, ``income`` may be
# NaN (unknown).
_INVARIANTS = (
    ("first_ms <= last_ms", lambda f: (f["first_ms"] >= NO_TIME) & (f["first_ms"] <= f["last_ms"])),
    ("last_purchase_ms <= last_ms",
     lambda f: (f["last_purchase_ms"] >= NO_TIME) & (f["last_purchase_ms"] <= f["last_ms"])),
    ("purchases iff last_purchase_ms", lambda f: (f["purchases"] == 0) == (f["last_purchase_ms"] == NO_TIME)),
    ("amounts >= 0", lambda f: (f["spend_cents"] >= 0) & (f["refund_cents"] >= 0)
     & (f["decayed"] >= 0) & (f["decayed"] < math.inf)),
    ("profile fields",
     lambda f: ((f["age"] <= 120) | (f["age"] == NO_AGE)) & np.logical_not(f["income"] < 0)),
)  # fmt: skip


def _check_invariants(f: StateFields) -> None:
    fields = f._asdict()
    broken = [name for name, holds in _INVARIANTS if not holds(fields)]
    if broken:
        raise ValueError(f"customer state record is corrupt: {', '.join(broken)} does not hold")


# ---- columns of many entries at once (ageing ticks) -------------------------------------------------

# The fixed part of a current entry (header, ring, fixed state) as one numpy record: a tick reads a
# million entries into columns with one join and one ``frombuffer``, never a Python loop per field.
ENTRY_FIXED_DTYPE = np.dtype(
    [("entry_version", "u1"), ("last_offset", "<i8"), ("last_segment", "<i2"),
     ("recent_ids", "V24"), *zip(StateFields._fields,
     ("u1", "<i8", "<i8", "<i8", "<u4", "<u4", "<i8", "<i8", "<f8", "<u8", "<f8", "<i8", "<u4", "u1"),
     strict=True)]
)  # fmt: skip


_FIXED_PART = operator.itemgetter(slice(None, ENTRY_FIXED_DTYPE.itemsize))  # entry -> its fixed part
_TEXT_TAIL = operator.itemgetter(slice(ENTRY_FIXED_DTYPE.itemsize, None))  # entry -> gender, country


def entry_columns(entries: list[bytes]) -> tuple[np.ndarray, list[bytes]]:
    """The fixed fields of current-layout ``entries`` as a structured array, and their text tails.

    >>> fields, tails = entry_columns([encode_entry(empty_state(), 7, 2, NO_RECENT_IDS)])
    >>> int(fields["last_offset"][0]), int(fields["last_segment"][0]), tails
    (7, 2, [b'\\x00\\x00'])
    """
    fixed = b"".join(map(_FIXED_PART, entries))
    return np.frombuffer(fixed, dtype=ENTRY_FIXED_DTYPE), list(map(_TEXT_TAIL, entries))


def screen_entries(entries: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``entries`` :func:`decode_entry` accepts unchanged, checked as columns; and their
    ``last_offset``. Restore judges a million entries this way instead of one by one.

    ``True``: a current-layout entry whose fixed fields hold every invariant and whose tail (texts and
    table-column block) :func:`check_state` accepts; each distinct tail is checked once (an event
    model's tails are a few gender/country pairs). ``False`` is not a verdict, only "decode this one
    alone": it may be an older layout :func:`decode_entry` still reads, or its ``ValueError`` names
    what is wrong. (``last_offset`` is 0 where the entry did not pass.)

    >>> good = encode_entry(empty_state(), 7, 2, NO_RECENT_IDS)
    >>> broken = good[:_STATE_AT] + bytes([7]) + good[_STATE_AT + 1 :]  # state version 7
    >>> passed, offsets = screen_entries([good, good[:-1], b"", broken])
    >>> passed.tolist(), offsets.tolist()
    ([True, False, False, False], [7, 0, 0, 0])
    """
    passed = np.zeros(len(entries), dtype=bool)
    offsets = np.zeros(len(entries), dtype=np.int64)
    size = ENTRY_FIXED_DTYPE.itemsize
    at = [i for i, entry in enumerate(entries) if len(entry) >= size and entry[0] == ENTRY_VERSION]
    if not at:
        return passed, offsets
    fields, tails = entry_columns([entries[i] for i in at])
    holds = fields["version"] == STATE_VERSION
    for _, invariant in _INVARIANTS:
        holds &= invariant(fields)
    tail_ok: dict[bytes, bool] = {}
    for j in np.flatnonzero(holds).tolist():
        tail = tails[j]
        ok = tail_ok.get(tail)
        if ok is None:
            ok = _tail_is_valid(tail)
            if len(tail_ok) < _TAILS_REMEMBERED:
                tail_ok[tail] = ok
        holds[j] = ok
    passed[at] = holds
    offsets[at] = np.where(holds, fields["last_offset"], 0)
    return passed, offsets


_TAILS_REMEMBERED = 4096  # distinct tails a screen remembers (a table model's tails rarely repeat)
_FIXED_OF_EMPTY_STATE = _STATE_FIXED.pack(*StateFields())


def _tail_is_valid(tail: bytes) -> bool:
    """Whether :func:`check_state` accepts ``tail`` (its checks of the tail never read the fixed part)."""
    try:
        check_state(_FIXED_OF_EMPTY_STATE + tail)
    except ValueError:
        return False
    return True


# ---- partition clock --------------------------------------------------------------------------------

CLOCK_VERSION = 2
_CLOCK = struct.Struct("<Bqq8s")  # version, stream time, last tick, model fingerprint
_CLOCK_V1 = struct.Struct("<Bqq")  # version 1: no model fingerprint (read as unknown)


def encode_clock(stream_ms: int, last_tick_ms: int, model: bytes = b"") -> bytes:
    """The changelog value of a partition clock (``model.clock.PartitionClock``); ``model`` is the
    fingerprint (:func:`model_fingerprint`) of the model the partition's state was scored with."""
    return _CLOCK.pack(CLOCK_VERSION, stream_ms, last_tick_ms, model)


def decode_clock(data: bytes) -> tuple[int, int, bytes]:
    """``(stream_ms, last_tick_ms, model)`` of a clock record (``model`` is ``b""`` when unknown: a
    version 1 record); ``ValueError`` says what is wrong.

    >>> decode_clock(encode_clock(86_400_000, 0, model_fingerprint("m-1"))) == (
    ...     86_400_000, 0, model_fingerprint("m-1"))
    True
    >>> decode_clock(bytes([1]) + bytes(16))
    (0, 0, b'')
    >>> decode_clock(b"\x02")
    Traceback (most recent call last):
    ...
    ValueError: partition clock record of 1 bytes is not the 25 bytes of version 2 (or 17 of version 1)
    """
    if len(data) == _CLOCK_V1.size and data[0] == 1:
        _, stream_ms, last_tick_ms = _CLOCK_V1.unpack(data)
        model = b""
    elif len(data) == _CLOCK.size and data[0] == CLOCK_VERSION:
        _, stream_ms, last_tick_ms, model = _CLOCK.unpack(data)
        model = b"" if model == bytes(8) else model
    else:
        raise ValueError(
            f"partition clock record of {len(data)} bytes is not the {_CLOCK.size} bytes of version "
            f"{CLOCK_VERSION} (or {_CLOCK_V1.size} of version 1)"
        )
    if stream_ms < -1 or last_tick_ms < -1:
        raise ValueError(f"partition clock record is corrupt: stream {stream_ms}, last tick {last_tick_ms}")
    return stream_ms, last_tick_ms, model


# ---- online-model checkpoint ------------------------------------------------------------------------

CHECKPOINT_VERSION = 1
_CHECKPOINT_HEADER = struct.Struct("<B8sIIQ")  # version, base model fingerprint, k, d, rows learned


class Checkpoint(NamedTuple):
    fingerprint: bytes  # :func:`model_fingerprint` of the base model
    centres: np.ndarray  # k x d, finite, a writable copy
    learned: int  # rows learned since the centres were seeded


def model_fingerprint(model_id: str) -> bytes:
    return hashlib.sha256(model_id.encode()).digest()[:8]


def encode_checkpoint(model_id: str, centres: np.ndarray, learned: int) -> bytes:
    """The checkpoint of ``centres`` (k x d) learned from the base model ``model_id``."""
    k, d = centres.shape
    header = _CHECKPOINT_HEADER.pack(CHECKPOINT_VERSION, model_fingerprint(model_id), k, d, learned)
    return header + centres.astype("<f8").tobytes()


def decode_checkpoint(data: bytes) -> Checkpoint:
    """A checkpoint of this layout, its size matching its k x d and every centre finite (a NaN centre
    would put NaN distances into every update); ``ValueError`` says what is wrong. Whether it fits a
    given model (fingerprint, k and d) is that model's check (``model.online``)."""
    if len(data) < _CHECKPOINT_HEADER.size:
        raise ValueError(f"checkpoint of {len(data)} bytes is shorter than its header")
    version, fingerprint, k, d, learned = _CHECKPOINT_HEADER.unpack_from(data)
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint version {version} is not {CHECKPOINT_VERSION}")
    if len(data) != _CHECKPOINT_HEADER.size + 8 * k * d:
        raise ValueError(f"checkpoint of {k}x{d} centres in {len(data)} bytes does not fit its layout")
    centres = np.frombuffer(data, dtype="<f8", offset=_CHECKPOINT_HEADER.size).reshape(k, d)
    if not np.isfinite(centres).all():
        raise ValueError("checkpoint centres are not all finite")
    return Checkpoint(fingerprint, centres.copy(), learned)


def checkpoint_rows_learned(data: bytes) -> int:
    """Rows learned of a checkpoint (header only, unvalidated)."""
    return _CHECKPOINT_HEADER.unpack_from(data)[4]
