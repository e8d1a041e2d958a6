"""Restore judges the changelog's LAST value per key: one bad record never stops a start.

A partition's changelog is read to its end first, keeping only the last (offset, value) per key;
only then is each surviving value decoded and validated, once. So a later good value or a tombstone
repairs an earlier bad one, exactly as compaction would. A last value that is still invalid (or a key
that is not UTF-8) is *quarantined*: left out of the state, reported with its partition, offset and
key, and the customer starts fresh from its next event. ``strict=True`` refuses the start instead.

Exceptions::

    RestoreRefusedError            a start refused because of the stored state (the CLI exits 2)
    ├── CorruptStateError          --strict-restore and an invalid last value
    └── StateAheadOfInputError     stored applied offsets beyond the input partition's end

>>> from consumer.backends.abstract import Record
>>> from consumer.state_store import NEW_ENTRY
>>> good = NEW_ENTRY.to_bytes()
>>> judged = judge(0, [Record("state", 0, 0, b"c1", b"garbage"), Record("state", 0, 1, b"c1", good),
...                    Record("state", 0, 2, b"c2", b"garbage")])
>>> sorted(judged.entries), [(q.offset, q.key) for q in judged.quarantined]
(['c1'], [(2, "'c2'")])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from consumer.state_store import Entry
from model.changelog import CLOCK_KEY, ONLINE_MODEL_KEY, decode_clock, entry_is_current, screen_entries
from model.clock import PartitionClock

KEY_SHOWN = 80  # characters of an unprintable key shown in a log line


class ChangelogRecord(Protocol):
    offset: int
    key: bytes | None
    value: bytes | None


class RestoreRefusedError(Exception):
    """The stored state stops the start: the message names the partition and the way out."""


class CorruptStateError(RestoreRefusedError):
    """``--strict-restore`` found an invalid last value in the changelog."""


class StateAheadOfInputError(RestoreRefusedError):
    """The state has applied offsets the input partition does not have (the topic was recreated)."""


@dataclass(frozen=True)
class Quarantined:
    """An invalid last value: left out of the state, reported where it is."""

    partition: int
    offset: int
    key: str  # printable: the customer id quoted, or the escaped bytes of a non-UTF-8 key
    reason: str

    def __str__(self) -> str:
        return f"changelog partition {self.partition}, offset {self.offset}, key {self.key}: {self.reason}"


@dataclass
class JudgedPartition:
    """What a changelog partition restores to."""

    partition: int
    records: int = 0  # changelog records read
    entries: dict[str, bytes] = field(default_factory=dict)  # customer id -> validated entry
    checkpoint: bytes | None = None  # online model, unvalidated (its model judges it: model.online)
    clock: PartitionClock = field(
        default_factory=PartitionClock
    )  # stream time and last tick the state was computed with
    quarantined: list[Quarantined] = field(default_factory=list)
    live_keys: list[bytes] = field(default_factory=list)  # every key whose last value is not a tombstone
    max_applied_offset: int = -1  # the largest input offset any entry has applied


def shown_key(key: bytes) -> str:
    """A key as a log line shows it: quoted text, or escaped bytes, cut to ``KEY_SHOWN`` characters."""
    try:
        text = repr(key.decode("utf-8"))
    except UnicodeDecodeError:
        text = repr(key)
    return text if len(text) <= KEY_SHOWN else text[: KEY_SHOWN - 3] + "..."


def judge(partition: int, records: Iterable[ChangelogRecord]) -> JudgedPartition:
    """Keep the last value per key of ``records`` (in offset order), then validate each once.

    The customers' entries are screened as columns first (:func:`model.changelog.screen_entries`);
    only an entry the screen does not pass is decoded alone, which names what is wrong with it. The
    result is the same as judging every entry alone, in the same order.
    """
    judged = JudgedPartition(partition)
    last: dict[bytes | None, ChangelogRecord] = {}
    for judged.records, record in enumerate(records, 1):
        last[record.key] = record  # the record itself: no tuple per record on a million-record read
    last.pop(None, None)  # a keyless record names no customer
    live: list[ChangelogRecord] = []  # the clock and the customers, in key order
    for record in last.values():
        if record.value is None:  # a tombstone: the customer was forgotten
            continue
        judged.live_keys.append(record.key)
        if record.key == ONLINE_MODEL_KEY:
            judged.checkpoint = record.value
        else:
            live.append(record)
    for start in range(0, len(live), SCREEN_CHUNK):
        _judge_live(judged, live[start : start + SCREEN_CHUNK])
    return judged


SCREEN_CHUNK = 65_536  # entries screened at once: bounds the columns' transient memory (about 10 MB)


def _judge_live(judged: JudgedPartition, live: list[ChangelogRecord]) -> None:
    """Judge the live last values of some customers (and the clock): screened, the rest alone."""
    screened, last_offsets = screen_entries([record.value for record in live])
    accepted = screened.tolist()  # entries the screen passed and whose key is UTF-8
    for i, record in enumerate(live):
        offset, key, value = record.offset, record.key, record.value
        if key == CLOCK_KEY:
            _judge_clock(judged, offset, value)  # never passes the screen (too short for an entry)
        elif not accepted[i]:
            _judge_entry(judged, key, offset, value)
        else:
            try:
                judged.entries[key.decode("utf-8")] = value
            except UnicodeDecodeError:
                accepted[i] = False  # its offset does not count
                _judge_entry(judged, key, offset, value)  # quarantines it, with the usual reason
    if any(accepted):
        newest = int(last_offsets[np.array(accepted, dtype=bool)].max())
        judged.max_applied_offset = max(judged.max_applied_offset, newest)


def _judge_entry(judged: JudgedPartition, key: bytes, offset: int, value: bytes) -> None:
    try:
        customer_id = key.decode("utf-8")
        entry = Entry.from_bytes(value)
    except (UnicodeDecodeError, ValueError) as error:
        reason = "the key is not UTF-8" if isinstance(error, UnicodeDecodeError) else str(error)
        judged.quarantined.append(Quarantined(judged.partition, offset, shown_key(key), reason))
        return
    # Older layouts (an entry without the event-id ring) are kept in the current one, which the hot
    # path reads without checks.
    judged.entries[customer_id] = value if entry_is_current(value) else entry.to_bytes()
    judged.max_applied_offset = max(judged.max_applied_offset, entry.last_offset)


def _judge_clock(judged: JudgedPartition, offset: int, value: bytes) -> None:
    """An unreadable clock is quarantined like an entry: the partition's clock restarts from its next
    event (ticks resume from there; nothing already published is published again)."""
    try:
        judged.clock = PartitionClock(*decode_clock(value))
    except ValueError as error:
        judged.quarantined.append(Quarantined(judged.partition, offset, shown_key(CLOCK_KEY), str(error)))


def refuse_corrupt(quarantined: list[Quarantined]) -> CorruptStateError:
    """The ``--strict-restore`` error: the first invalid entry, and how many more."""
    more = f" (and {len(quarantined) - 1} more invalid entries)" if len(quarantined) > 1 else ""
    return CorruptStateError(
        f"{quarantined[0]}{more}; --strict-restore refuses to start. Without it the entry is "
        "quarantined (skipped, the customer starts fresh); a later valid value or a tombstone for the "
        "key repairs it"
    )
