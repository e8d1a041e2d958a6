"""The stream drift reference: its sample (whole customers, capped, seeded, independent of event
order), its event rows (as of each moment) and its ageing rows (as of each month start and the end)."""

import random
from collections import Counter

import pytest

from model.events import Event
from model.features import features, initialize, update
from model.synthetic import synthetic_events
from training.stream_reference import CustomerSample, ageing_rows, per_event_rows


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


def test_event_rows_are_the_scorers_rows_after_each_moment_as_of_it():
    day = 86_400_000
    events = [
        Event("p", "c", "profile", 0, attributes={"age": 30}),
        Event("b1", "c", "purchase", 0, amount=10.0),  # same moment as the profile: one row
        Event("v", "c", "visit", 5 * day),
        Event("b2", "c", "purchase", 9 * day, amount=20.0),
    ]
    rows = per_event_rows({"c": events[::-1]})
    expected, state = [], initialize()
    for n, event in enumerate(events):
        state = update(state, event)
        if n != 0:
            expected.append(features(state, event.ts_ms))  # stream time of a time-ordered replay
    assert rows == expected
    assert [row["tenure_days"] for row in rows] == [0.0, 5.0, 9.0]
    assert [row["recency_days"] for row in rows] == [0.0, 5.0, 0.0]


def test_ageing_rows_are_each_customer_as_of_each_month_start_after_its_first_event_and_the_end():
    day, feb_1, mar_1 = 86_400_000, 854_755_200_000, 857_174_400_000  # 1997-02-01, 1997-03-01
    start = feb_1 - 20 * day
    customers = {
        "early": [Event("a", "early", "purchase", start, amount=10.0)],
        "late": [Event("b", "late", "purchase", feb_1 + 3 * day, amount=5.0)],
    }
    end = mar_1 + 9 * day
    rows = ageing_rows(customers, (start, end))
    assert rows.index.tolist() == [
        ("early", feb_1),
        ("early", mar_1),
        ("late", mar_1),
        ("early", end),
        ("late", end),
    ]
    assert rows["recency_days"].tolist() == [20.0, 48.0, 25.0, 57.0, 34.0]
