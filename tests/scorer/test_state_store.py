"""Restore judges the last value per key (consumer/state_restore.py); the store trusts what it holds."""

from __future__ import annotations

import struct

import pytest

from consumer.backends.abstract import Record
from consumer.state_restore import KEY_SHOWN, judge
from consumer.state_store import ONLINE_MODEL_KEY, Entry, StateStore
from model.changelog import ENTRY_VERSION
from model.events import Event
from model.features import initialize, update


def _entry(amount: float, last_offset: int = 7) -> bytes:
    state = update(initialize(), Event("e1", "c1", "purchase", 86_400_000, amount=amount))
    return Entry(state, last_offset=last_offset, last_segment=1).to_bytes()


def _records(pairs, partition: int = 0) -> list[Record]:
    return [Record("state", partition, offset, key, value) for offset, (key, value) in enumerate(pairs)]


def test_restore_keeps_the_latest_value_per_customer_and_honours_tombstones():
    store = StateStore()
    pairs = [(b"c1", _entry(5.0)), (b"c2", _entry(1.0)), (b"c1", _entry(9.0)), (b"c2", None)]
    assert store.restore(judge(0, _records(pairs))) == 4
    (customer, entry), *rest = list(store.customers(0))
    assert (customer, rest) == ("c1", [])
    assert entry == Entry.from_bytes(_entry(9.0))
    assert store.get(0, "c1") == entry


def test_a_corrupt_last_value_is_quarantined_with_partition_offset_and_key():
    corrupt = _entry(5.0)[:-3]
    judged = judge(2, _records([(b"c1", _entry(1.0)), (b"c9", corrupt)], partition=2))
    assert list(judged.entries) == ["c1"]
    (bad,) = judged.quarantined
    assert (bad.partition, bad.offset, bad.key) == (2, 1, "'c9'")
    assert str(bad).startswith("changelog partition 2, offset 1, key 'c9': customer state record")


def test_a_later_good_value_or_tombstone_repairs_a_bad_one():
    pairs = [(b"cGarbage", b"garbage"), (b"cGone", b"garbage"), (b"cGarbage", _entry(3.0)), (b"cGone", None)]
    judged = judge(0, _records(pairs))
    assert judged.quarantined == []
    assert judged.entries == {"cGarbage": _entry(3.0)}


def test_a_non_utf8_key_is_quarantined_and_shown_escaped_and_capped():
    judged = judge(0, _records([(b"\xff\xfe" + b"x" * 500, _entry(1.0))]))
    (bad,) = judged.quarantined
    assert bad.key.startswith("b'\\xff\\xfe")
    assert len(bad.key) == KEY_SHOWN
    assert bad.reason == "the key is not UTF-8"
    assert judged.entries == {}


def test_the_largest_applied_offset_is_known_for_the_offsets_check():
    pairs = [
        (b"c1", _entry(1.0, last_offset=10**12)),
        (b"c1", _entry(1.0, last_offset=4)),
        (b"c2", _entry(2.0)),
    ]
    assert judge(0, _records(pairs)).max_applied_offset == 7, "only last values count"


def test_online_checkpoints_travel_with_their_partition():
    store = StateStore()
    store.restore(judge(1, _records([(ONLINE_MODEL_KEY, b"centres")], partition=1)))
    assert store.checkpoint(1) == b"centres"
    assert list(store.customers(1)) == []
    store.drop(1)
    assert store.checkpoint(1) is None
    assert not store.owns(1)
    store.restore(judge(1, _records([(ONLINE_MODEL_KEY, b"centres"), (ONLINE_MODEL_KEY, None)], 1)))
    assert store.checkpoint(1) is None, "a tombstone removes the checkpoint too"


def test_a_version_1_entry_is_read_with_an_empty_ring_and_restored_in_the_current_layout():
    state = update(initialize(), Event("e1", "c1", "purchase", 86_400_000, amount=4.0))
    version_1 = struct.pack("<Bqh", 1, 7, 3) + state  # the layout before the event-id ring
    entry = Entry.from_bytes(version_1)
    assert (entry.state, entry.last_offset, entry.last_segment) == (state, 7, 3)
    assert not entry.has_seen("e1")
    judged = judge(0, _records([(b"c1", version_1)]))
    assert judged.entries == {"c1": entry.to_bytes()}
    assert judged.entries["c1"][0] == ENTRY_VERSION
    store = StateStore()
    store.restore(judged)
    assert store.get(0, "c1") == entry, "the hot path reads the upgraded entry without checks"


def test_an_entry_of_an_unknown_version_or_cut_inside_its_ring_is_refused():
    good = _entry(1.0)
    with pytest.raises(ValueError, match="version 3 is not 2"):
        Entry.from_bytes(b"\x03" + good[1:])
    with pytest.raises(ValueError, match="shorter than its 35-byte header"):
        Entry.from_bytes(good[:20])
