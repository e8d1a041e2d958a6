"""The one aggregator: hand-checked values, stream == batch in any order, compact exact state records."""

import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.events import Event
from model.features import (
    EVENT_FEATURE_SPEC,
    aggregate_history,
    batch_features,
    features,
    initialize,
    last_event_ms,
    pack_state,
    snapshot_features,
    unpack_state,
    update,
)
from model.synthetic import synthetic_events

DAY = 86_400_000
T0 = 852_076_800_000  # 1997-01-01T00:00:00Z


def purchase(day, amount, category=None, eid=None, customer="c"):
    return Event(
        eid or f"p{day}-{amount}", customer, "purchase", T0 + day * DAY, amount=amount, category=category
    )


def profile(day, eid="pr", **attributes):
    return Event(eid, "c", "profile", T0 + day * DAY, attributes=attributes)


def run(events):
    state = initialize()
    for event in events:
        state = update(state, event)
    return state


def same_row(stream_row, batch_row, approx=()):
    """Stream row (None = unknown) equals batch row (NaN = unknown); ``approx``: float-rounded features."""
    for name in EVENT_FEATURE_SPEC.feature_names:
        a, b = stream_row[name], batch_row[name]
        if a is None:
            assert b != b, name  # NaN
        elif name in approx:
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12), name
        else:
            assert a == b, name


def test_tiny_customer_by_hand():
    events = [
        profile(0, age=30, gender="f", income=40_000.0, country="DE"),
        purchase(0, 10.0, "books"),
        purchase(90, 20.0, "music"),
        Event("r1", "c", "refund", T0 + 95 * DAY, amount=5.0),
        Event("v1", "c", "visit", T0 + 100 * DAY, channel="web"),
    ]
    row = features(run(events), now_ms=T0 + 120 * DAY)
    assert row == {
        "recency_days": 30.0,
        "frequency": 2.0,
        "monetary_total": 30.0,
        "avg_order_value": 15.0,
        "tenure_days": 120.0,
        "purchase_rate": 2 * 30 / 120,
        "decayed_spend": pytest.approx(10 * 0.5 ** (120 / 90) + 20 * 0.5 ** (30 / 90), rel=1e-12),
        "refund_share": pytest.approx(5 / 30),
        "category_diversity": 2.0,
        "visits": 1.0,
        "age": 30.0,
        "income": 40_000.0,
        "gender": "f",
        "country": "DE",
    }
    assert list(row) == list(EVENT_FEATURE_SPEC.feature_names)


def test_event_time_clock_never_goes_backwards():
    state = run([purchase(10, 5.0), purchase(3, 5.0)])  # the late event is older
    assert last_event_ms(state) == T0 + 10 * DAY
    early = features(state, now_ms=T0)  # a caller's clock behind the customer's own
    assert early == features(state, now_ms=T0 + 10 * DAY)
    assert early["recency_days"] == 0.0
    assert early["tenure_days"] == 7.0


def test_new_customer_rate_is_floored_and_empty_customer_is_neutral():
    assert features(run([purchase(0, 5.0)]), T0)["purchase_rate"] == 1.0
    empty = features(initialize(), T0)
    assert (empty["recency_days"], empty["avg_order_value"], empty["age"], empty["gender"]) == (None,) * 4
    assert (empty["frequency"], empty["monetary_total"], empty["decayed_spend"], empty["tenure_days"]) == (
        0.0,
    ) * 4
    assert last_event_ms(initialize()) == -1


def test_refund_share_is_clipped_to_one():
    refund = Event("r", "c", "refund", T0, amount=50.0)
    assert features(run([refund]), T0)["refund_share"] == 1.0
    assert features(run([purchase(0, 20.0), refund]), T0)["refund_share"] == 1.0


def test_latest_profile_wins_whatever_the_arrival_order():
    old, new = profile(1, "a", age=30, income=1.0), profile(5, "b", age=31, country="SE")
    for order in ([old, new], [new, old]):
        row = features(run(order), T0 + 9 * DAY)
        assert (row["age"], row["country"], row["income"]) == (31.0, "SE", None)  # a profile is a snapshot
    tie = [profile(5, "x", gender="f"), profile(5, "y", gender="m")]
    assert run(tie) == run(tie[::-1])


def test_category_bits_do_not_depend_on_the_hash_seed():
    code = (
        "from model.events import Event; from model.features import initialize, update, pack_state\n"
        "s = initialize()\n"
        "for c in ['books', 'music', 'film', 'games']:\n"
        "    s = update(s, Event(c, 'c', 'purchase', 0, amount=1.0, category=c))\n"
        "print(pack_state(s).hex())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


@pytest.fixture(scope="module")
def history():
    return list(synthetic_events(300, seed=11))


def test_one_event_at_a_time_equals_batch(history):
    """The stream's row (as of the customer's own latest event) is exactly training's row."""
    batch = batch_features(history)
    states = {}
    for event in history:
        states[event.customer_id] = update(states.get(event.customer_id, initialize()), event)
    assert set(states) == set(batch.index)
    for customer, state in states.items():
        same_row(features(state, last_event_ms(state)), batch.loc[customer])


def test_shuffled_order_gives_the_same_features(history):
    batch = batch_features(history)
    shuffled = history[:]
    random.Random(5).shuffle(shuffled)
    for customer, state in aggregate_history(shuffled).items():
        same_row(features(state, last_event_ms(state)), batch.loc[customer], approx=("decayed_spend",))


def test_batch_frame_shape_and_each_customers_own_clock(history):
    frame = batch_features(history)
    assert frame.index.name == "customer_id"
    assert tuple(frame.columns) == EVENT_FEATURE_SPEC.feature_names
    assert all(frame[c].dtype == object for c in EVENT_FEATURE_SPEC.categorical)
    assert batch_features([]).shape == (0, len(EVENT_FEATURE_SPEC.feature_names))
    first, last = {}, {}
    for e in history:
        first[e.customer_id] = min(first.get(e.customer_id, e.ts_ms), e.ts_ms)
        last[e.customer_id] = max(last.get(e.customer_id, e.ts_ms), e.ts_ms)
    tenure = {c: (last[c] - first[c]) / DAY for c in first}
    assert frame["tenure_days"].to_dict() == tenure  # up to the customer's own latest event
    assert frame["tenure_days"].nunique() > 10, "customers' clocks differ"
    assert frame["recency_days"].min() >= 0
    last_is_purchase = {
        e.customer_id for e in history if e.type == "purchase" and e.ts_ms == last[e.customer_id]
    }
    assert (frame.loc[sorted(last_is_purchase), "recency_days"] == 0).all()
    assert (frame.drop(index=sorted(last_is_purchase))["recency_days"].dropna() > 0).any()


def test_an_explicit_now_is_one_snapshot_date_for_everyone(history):
    end = max(e.ts_ms for e in history)
    snapshot = batch_features(history, now_ms=end)
    for customer, state in aggregate_history(history).items():
        same_row(features(state, end), snapshot.loc[customer])
    start = min(e.ts_ms for e in history)
    assert snapshot["tenure_days"].max() == (end - start) / DAY
    later = (snapshot["recency_days"] - batch_features(history)["recency_days"]).dropna()
    assert (later >= 0).all()
    assert (later > 0).any(), "as of the end, customers who stopped buying are days past their clock"


def test_snapshots_are_each_date_computed_from_the_events_up_to_it(history):
    """Training's rows: at each date, everyone seen by then, from its events up to then, as of then."""
    start, end = min(e.ts_ms for e in history), max(e.ts_ms for e in history)
    dates = [start + (end - start) // 3, start + 2 * (end - start) // 3, end]
    shuffled = history[:]
    random.Random(3).shuffle(shuffled)
    rows = snapshot_features(shuffled, dates)
    assert rows.index.names == ["customer_id", "as_of_ms"]
    assert tuple(rows.columns) == EVENT_FEATURE_SPEC.feature_names
    for date in dates:
        expected = batch_features([e for e in history if e.ts_ms <= date], now_ms=date)
        got = rows.xs(date, level="as_of_ms")
        assert sorted(got.index) == sorted(expected.index)
        for customer in expected.index[:50]:
            row = {name: None if value != value else value for name, value in got.loc[customer].items()}
            same_row(row, expected.loc[customer], approx=("decayed_spend",))
    assert snapshot_features(history, []).shape == (0, len(EVENT_FEATURE_SPEC.feature_names))


def test_an_erase_in_a_snapshot_forgets_the_events_before_it():
    events = [purchase(0, 10.0), Event("x", "c", "erase", T0 + 5 * DAY), purchase(8, 3.0, eid="p2")]
    rows = snapshot_features(events, [T0 + 2 * DAY, T0 + 6 * DAY, T0 + 9 * DAY])
    assert rows.index.get_level_values("as_of_ms").tolist() == [T0 + 2 * DAY, T0 + 9 * DAY]
    assert rows["monetary_total"].tolist() == [10.0, 3.0]


def test_spec_declares_units_and_sane_ranges():
    spec = EVENT_FEATURE_SPEC
    assert set(spec.heavy_tailed) <= set(spec.numeric)
    assert set(spec.ranges) == set(spec.numeric)
    for name, rng in spec.ranges.items():
        assert rng.unit, name
        assert rng.help, name
        assert rng.minimum < rng.maximum, name


customer_events = st.lists(
    st.builds(
        lambda kind, day, amount, n, text: Event(
            f"e{n}",
            "c",
            kind,
            T0 + day,
            amount=amount if kind in ("purchase", "refund") else None,
            category=text if kind == "purchase" else None,
            attributes={"age": n % 121, "gender": text, "income": amount} if kind == "profile" else None,
        ),
        st.sampled_from(["purchase", "refund", "visit", "profile"]),
        st.integers(0, 3000 * DAY),
        st.floats(0, 1e9),
        st.integers(0, 10**6),
        st.text(min_size=1, max_size=64),
    ),
    max_size=30,
    unique_by=lambda event: event.event_id,
)


@given(customer_events, st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_pack_unpack_round_trip_and_order_independence(events, rnd):
    state = run(events)
    packed = pack_state(state)
    assert unpack_state(packed) == state
    assert len(packed) <= 90 + 2 * 255
    now = T0 + 3001 * DAY
    shuffled = events[:]
    rnd.shuffle(shuffled)
    row, other = features(state, now), features(run(shuffled), now)
    assert row.pop("decayed_spend") == pytest.approx(other.pop("decayed_spend"), rel=1e-12, abs=1e-9)
    assert row == other


def test_typical_state_record_is_small():
    state = run(
        [profile(0, age=40, gender="female", income=52_000.0, country="US"), purchase(1, 10.0, "books")]
    )
    assert len(pack_state(state)) <= 96


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x07" + bytes(90), "unknown version 7"),
        (pack_state(initialize())[:40], "truncated"),
    ],
)
def test_unpack_rejects_bad_records_clearly(data, words):
    with pytest.raises(ValueError, match=words):
        unpack_state(data)


@given(st.binary(max_size=120))
def test_unpack_of_random_bytes_raises_only_value_error(data):
    try:
        state = unpack_state(data)
    except ValueError:
        return
    assert features(state, 0).keys() == set(EVENT_FEATURE_SPEC.feature_names)
