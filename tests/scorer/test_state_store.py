"""The state store validates what comes in from the changelog and trusts what it holds."""

from __future__ import annotations

import pytest

from consumer.state_store import ONLINE_MODEL_KEY, Entry, StateStore
from model.events import Event
from model.features import initialize, update


def _entry(amount: float) -> bytes:
    state = update(initialize(), Event("e1", "c1", "purchase", 86_400_000, amount=amount))
    return Entry(state, last_offset=7, last_segment=1).to_bytes()


def test_restore_keeps_the_latest_value_per_customer_and_honours_tombstones():
    store = StateStore()
    count = store.restore(
        0, [(b"c1", _entry(5.0)), (b"c2", _entry(1.0)), (b"c1", _entry(9.0)), (b"c2", None)]
    )
    assert count == 4
    (customer, entry), *rest = list(store.customers(0))
    assert (customer, rest) == ("c1", [])
    assert entry == Entry.from_bytes(_entry(9.0))
    assert store.get(0, "c1") == entry


def test_a_corrupt_changelog_record_is_refused_with_where_it_was():
    store = StateStore()
    corrupt = _entry(5.0)[:-3]
    with pytest.raises(ValueError, match=r"changelog partition 2, customer 'c9'"):
        store.restore(2, [(b"c9", corrupt)])


def test_online_checkpoints_travel_with_their_partition():
    store = StateStore()
    store.restore(1, [(ONLINE_MODEL_KEY, b"centres")])
    assert store.checkpoint(1) == b"centres"
    assert list(store.customers(1)) == []
    store.drop(1)
    assert store.checkpoint(1) is None
    assert not store.owns(1)
