"""The stream drift reference: its sample (whole customers, capped, seeded, independent of event
order) and its rows (after each event, as of its time: the stream time of a time-ordered replay)."""

import random
from collections import Counter

import pytest

from model.events import Event
from model.features import features, initialize, update
from model.synthetic import synthetic_events
from training.stream_reference import CustomerSample, per_event_rows


@pytest.fixture(scope="module")
def history():
    return list(synthetic_events(400, seed=8))


def sample_of(events, max_rows, seed=0):
    sample = CustomerSample(max_rows, seed)
    for event in events:
        sample.offer(event)
    return sample.customers()


def test_sample_holds_whole_customers_under_the_cap(history):
    sample = sample_of(history, 1000)
    per_customer = Counter(e.customer_id for e in history)
    assert 0 < sum(len(events) for events in sample.values()) <= 1000
    assert all(len(events) == per_customer[cid] for cid, events in sample.items())
    assert len(sample) < len(per_customer)


def test_sample_ignores_event_order_and_follows_the_seed(history):
    shuffled = history[:]
    random.Random(2).shuffle(shuffled)
    assert set(sample_of(shuffled, 1000)) == set(sample_of(history, 1000))
    assert set(sample_of(history, 1000, seed=1)) != set(sample_of(history, 1000))


def test_a_cap_above_the_history_keeps_everyone(history):
    assert set(sample_of(history, len(history))) == {e.customer_id for e in history}
    with pytest.raises(ValueError, match="max_rows"):
        CustomerSample(0)


def test_event_rows_are_the_scorers_rows_after_each_event_as_of_it():
    day = 86_400_000
    events = [
        Event("p", "c", "profile", 0, attributes={"age": 30}),
        Event("b1", "c", "purchase", 0, amount=10.0),  # same time as the profile: still its own row
        Event("v", "c", "visit", 5 * day),
        Event("b2", "c", "purchase", 9 * day, amount=20.0),
    ]
    rows = per_event_rows({"c": events[::-1]})
    expected, state = [], initialize()
    for event in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        state = update(state, event)
        expected.append(features(state, event.ts_ms))  # the stream time of a time-ordered replay
    assert rows == expected
    assert [row["tenure_days"] for row in rows] == [0.0, 0.0, 5.0, 9.0]
    assert [row["recency_days"] for row in rows] == [0.0, 0.0, 5.0, 0.0]
