"""Restore screens entries as columns (``model.changelog.screen_entries``); the result must be exactly
what judging every entry alone gives: the same entries, quarantined values and reasons, in the same
order, and the same largest applied offset. Plain data, no broker."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

import consumer.state_restore as state_restore
from consumer.backends.abstract import Record
from consumer.state_restore import judge
from consumer.state_store import CLOCK_KEY, ONLINE_MODEL_KEY, Entry
from model.changelog import (
    NO_AGE,
    StateFields,
    encode_clock,
    pack_state_fields,
    screen_entries,
    state_tail,
    unpack_state_fields,
)
from model.events import Event
from model.features import initialize, table_columns, update
from model.spec import FeatureSpec

DAY = 86_400_000
TABLE = table_columns(FeatureSpec("member_id", numeric=("household_size",), categorical=("plan",)))


def _state(rng: random.Random, n: int) -> bytes:
    """A customer's state after a random mix of ``n`` events (profiles with texts and table columns)."""
    state, ts = initialize(), DAY * rng.randint(1, 1000)
    for i in range(n):
        ts += rng.randint(0, 5 * DAY)
        kind = rng.choice(["purchase", "purchase", "refund", "visit", "profile"])
        if kind == "profile":
            attributes = {
                "age": rng.choice([None, 18, 67, 120]),
                "income": rng.choice([None, 0.0, 52_000.5]),
                "gender": rng.choice([None, "f", "m", "x"]),
                "country": rng.choice([None, "DE", "ÉIRE", "JP"]),
                "household_size": rng.choice([1.0, 4.0]),
                "plan": rng.choice(["basic", "plus"]),
            }
            event = Event(
                f"e{i}", "c", kind, ts, attributes={k: v for k, v in attributes.items() if v is not None}
            )
        elif kind == "visit":
            event = Event(f"e{i}", "c", kind, ts)
        else:
            event = Event(
                f"e{i}", "c", kind, ts, amount=rng.uniform(0.5, 500), category=rng.choice(["a", "b", None])
            )
        state = update(state, event, TABLE if rng.random() < 0.5 else None)
    return state


def _with_fields(entry: bytes, **changes) -> bytes:
    """``entry`` with some of its state's fixed fields replaced (an invariant broken on purpose)."""
    old = Entry.from_bytes(entry)
    fields = StateFields._make(unpack_state_fields(old.state))._replace(**changes)
    state = pack_state_fields(fields, state_tail(old.state))
    return Entry(state, old.last_offset, old.last_segment, old.recent_ids).to_bytes()


def _mutants(rng: random.Random, good: bytes) -> list[bytes]:
    """Broken and odd variants of one good entry: flipped bytes, cuts, extra bytes, an older layout,
    each invariant broken."""
    flipped = []
    for _ in range(6):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        flipped.append(bytes(data))
    version_1 = struct.pack("<Bqh", 1, 5, 2) + Entry.from_bytes(good).state  # before the event-id ring
    return [
        *flipped,
        good[: rng.randrange(len(good))],
        good + bytes([rng.randrange(256)]),
        version_1,
        _with_fields(good, first_ms=-2),
        _with_fields(good, last_ms=-1, first_ms=0),
        _with_fields(good, purchases=0, last_purchase_ms=DAY),
        _with_fields(good, refund_cents=-1),
        _with_fields(good, decayed=math.nan),
        _with_fields(good, decayed=math.inf),
        _with_fields(good, income=-0.5),
        _with_fields(good, income=math.nan),  # unknown income: valid
        _with_fields(good, age=121),
        _with_fields(good, age=NO_AGE),  # unknown age: valid
    ]


def _changelog(seed: int) -> list[Record]:
    rng = random.Random(seed)
    values: list[tuple[bytes, bytes | None]] = []
    for c in range(60):
        utf8 = rng.random() < 0.9
        key = f"cust-{c}".encode() if utf8 else b"\xff\xfe" + bytes([c])
        # a non-UTF-8 key's entry has the largest applied offset, which the offsets check must not see
        offset = rng.randrange(10_000) if utf8 else 20_000 + c
        good = Entry(_state(rng, rng.randint(0, 12)), offset, rng.randrange(-1, 8)).to_bytes()
        for value in [*rng.sample(_mutants(rng, good), 3), good]:
            values.append((key, value))
        if rng.random() < 0.3:  # the last value is another mutant, a tombstone or the good one again
            values.append((key, rng.choice([None, good, *_mutants(rng, good)])))
    rng.shuffle(values)
    values.append((CLOCK_KEY, encode_clock(DAY, 0) if seed % 2 else b"\x02bad"))
    values.append((ONLINE_MODEL_KEY, b"checkpoint"))
    rng.shuffle(values)
    return [Record("state", 3, offset, key, value) for offset, (key, value) in enumerate(values)]


def _every_entry_alone(monkeypatch) -> None:
    """Make ``judge`` decode every entry alone (the screen passes none): the reference result."""
    monkeypatch.setattr(
        state_restore,
        "screen_entries",
        lambda values: (np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.int64)),
    )


@pytest.mark.parametrize("seed", range(12))
def test_screened_restore_judges_exactly_as_every_entry_alone(seed, monkeypatch):
    records = _changelog(seed)
    if seed % 3 == 0:  # screened in several chunks, a clock or a bad value at a chunk's edge
        monkeypatch.setattr(state_restore, "SCREEN_CHUNK", 7)
    screened = judge(3, records)
    with monkeypatch.context() as patch:
        _every_entry_alone(patch)
        alone = judge(3, records)
    assert list(screened.entries.items()) == list(alone.entries.items())
    assert screened.quarantined == alone.quarantined
    assert screened.max_applied_offset == alone.max_applied_offset
    assert (screened.clock, screened.checkpoint, screened.live_keys, screened.records) == (
        alone.clock, alone.checkpoint, alone.live_keys, alone.records,
    )  # fmt: skip
    assert screened.entries, "the corpus has valid last values"
    assert screened.quarantined, "and invalid ones"


def test_the_screen_passes_valid_current_entries_and_only_those():
    rng = random.Random(5)
    goods = [Entry(_state(rng, n), n, 1).to_bytes() for n in range(40)]
    passed, offsets = screen_entries(goods)
    assert passed.all()
    assert offsets.tolist() == list(range(40))
    broken = [_with_fields(good, age=200) for good in goods] + [b"\x01" + good[1:] for good in goods]
    passed, offsets = screen_entries(broken)
    assert not passed.any()
    assert not offsets.any()
    for value in broken[:40]:
        with pytest.raises(ValueError, match="profile fields does not hold"):
            Entry.from_bytes(value)
