"""The event contract: valid events decode to typed Events, every bad input is an InvalidEvent naming it."""

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.errors import InvalidEvent, SegmenterError
from model.events import DEFAULT_MIN_EVENT_MS, EVENT_TYPES, Event, decode_event, encode_event, event_to_dict

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the wall clock the tests pretend it is
DAY = 86_400_000


def raw(**fields):
    base = {"event_id": "e-1", "customer_id": "c-1", "type": "purchase", "ts": 10**12, "amount": 9.5}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def test_purchase_decodes_from_bytes_text_and_dict_alike():
    message = raw(quantity=2, category="books", channel="web", ts="2024-05-01T12:00:00Z")
    events = {
        decode_event(json.dumps(message).encode()),
        decode_event(json.dumps(message)),
        decode_event(message),
    }
    assert len(events) == 1
    event = events.pop()
    assert (event.type, event.amount, event.quantity, event.category, event.channel) == (
        "purchase", 9.5, 2, "books", "web",
    )  # fmt: skip
    assert event.ts_ms == 1_714_564_800_000


@pytest.mark.parametrize(
    "ts",
    [
        "2024-05-01T14:00:00+02:00",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00.000Z",
        1_714_564_800_000,
        1_714_564_800_000.7,
    ],
)
def test_timestamp_forms_agree(ts):
    assert decode_event(raw(ts=ts)).ts_ms == 1_714_564_800_000


def test_old_history_is_accepted_and_far_future_rejected():
    assert decode_event(raw(ts="1997-01-01"), now_ms=NOW).ts_ms == 852_076_800_000
    assert decode_event(raw(ts=NOW + DAY - 1), now_ms=NOW).ts_ms == NOW + DAY - 1
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw(ts=NOW + 2 * DAY), now_ms=NOW)
    assert (info.value.field, info.value.reason) == ("ts", "future_timestamp")
    assert decode_event(raw(ts=NOW + 400 * DAY), now_ms=NOW, max_future_ms=None).ts_ms == NOW + 400 * DAY


@pytest.mark.parametrize("ts", [0, 1_714_564_800, "1970-01-02T00:00:00Z", "1989-12-31T23:59:59Z"])
def test_times_before_the_floor_are_implausible(ts):
    """Epoch seconds read as milliseconds, a zero, a default date: not a customer's real history."""
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw(ts=ts), now_ms=NOW)
    assert (info.value.field, info.value.reason) == ("ts", "implausible_timestamp")
    assert "1990-01-01" in str(info.value)
    assert decode_event(raw(ts=ts), now_ms=NOW, min_event_ms=None).type == "purchase"


def test_erase_carries_nothing_but_who_and_when():
    event = decode_event(raw(type="erase", amount=...), now_ms=NOW)
    assert (event.type, event.customer_id, event.amount) == ("erase", "c-1", None)
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw(type="erase"), now_ms=NOW)  # keeps the purchase's amount
    assert info.value.field == "amount"


def test_integer_ids_become_strings_and_unknown_keys_are_ignored():
    event = decode_event(raw(customer_id=42, event_id=7, source="pos-17"))
    assert (event.customer_id, event.event_id) == ("42", "7")


def test_profile_checks_demographics_and_passes_other_attributes_on_for_the_model():
    event = decode_event(
        raw(type="profile", amount=..., attributes={"age": 30, "gender": "f", "country": "de", "shoe": 44})
    )
    # The demographics are the aggregator's and checked here; "shoe" may be a table model's column,
    # which only the scorer (with the model's spec) can check, or an unknown one it counts.
    assert event.attributes == {"age": 30, "gender": "f", "country": "DE", "shoe": 44}


BAD = [
    (b"\xff\xfe{}", "$", "bad_utf8"),
    (b"{not json", "$", "not_json"),
    (b'{"event_id": NaN}', "$", "not_json"),
    (b"[" * 100_000, "$", "too_large"),
    ("[" * 5_000 + "]" * 5_000, "$", "not_json"),
    (b"[1, 2]", "$", "wrong_type"),
    (raw(customer_id=...), "customer_id", "missing_field"),
    (raw(customer_id=True), "customer_id", "wrong_type"),
    (raw(customer_id="  "), "customer_id", "bad_value"),
    (raw(customer_id="x" * 129), "customer_id", "bad_value"),
    (raw(event_id="a\nb"), "event_id", "bad_value"),
    (raw(type="buy"), "type", "unknown_type"),
    (raw(type=3), "type", "wrong_type"),
    (raw(ts=...), "ts", "missing_field"),
    (raw(ts=True), "ts", "wrong_type"),
    (raw(ts=float("nan")), "ts", "bad_value"),
    (raw(ts=-5), "ts", "bad_value"),
    (raw(ts="yesterday"), "ts", "bad_value"),
    (raw(ts="0001-01-01T00:00:00"), "ts", "bad_value"),
    (raw(amount=...), "amount", "missing_field"),
    (raw(amount="12"), "amount", "wrong_type"),
    (raw(amount=-0.01), "amount", "bad_value"),
    (raw(amount=float("inf")), "amount", "bad_value"),
    (raw(amount=1e12), "amount", "bad_value"),
    (raw(quantity=1.5), "quantity", "wrong_type"),
    (raw(quantity=-1), "quantity", "bad_value"),
    (raw(category=""), "category", "bad_value"),
    (raw(channel=["web"]), "channel", "wrong_type"),
    (raw(type="visit"), "amount", "bad_value"),
    (raw(type="profile", amount=...), "attributes", "missing_field"),
    (raw(type="profile", amount=..., attributes=[30]), "attributes", "wrong_type"),
    (raw(type="profile", amount=..., attributes={}), "attributes", "bad_value"),
    (raw(type="profile", amount=..., attributes={"age": 130}), "attributes.age", "bad_value"),
    (raw(type="profile", amount=..., attributes={"age": "old"}), "attributes.age", "wrong_type"),
    (raw(type="profile", amount=..., attributes={"income": -1}), "attributes.income", "bad_value"),
]


@pytest.mark.parametrize(("message", "field", "reason"), BAD)
def test_bad_input_names_field_reason_and_value(message, field, reason):
    with pytest.raises(InvalidEvent) as info:
        decode_event(message, now_ms=NOW)
    error = info.value
    assert (error.field, error.reason) == (field, reason)
    assert repr(field) in str(error)
    if field != "$":
        assert repr(error.value)[:20] in str(error)
        offending = message
        for part in field.split("."):
            offending = offending.get(part)
        assert error.value == offending or error.value != error.value


def test_invalid_event_is_a_segmenter_error_and_pickles():
    error = InvalidEvent("amount", "must be a number", "12", reason="wrong_type")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, SegmenterError)
    assert (copy.field, copy.problem, copy.value, copy.reason, str(copy)) == (
        "amount", "must be a number", "12", "wrong_type", str(error),
    )  # fmt: skip


text = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=20)
events = st.builds(
    lambda type_, ids, ts, amount, quantity, category, channel, attributes: Event(
        event_id=ids[0],
        customer_id=ids[1],
        type=type_,
        ts_ms=ts,
        amount=amount if type_ in ("purchase", "refund") else None,
        quantity=quantity if type_ in ("purchase", "refund") else None,
        category=category if type_ not in ("profile", "erase") else None,
        channel=channel if type_ not in ("profile", "erase") else None,
        attributes=attributes if type_ == "profile" else None,
    ),
    st.sampled_from(EVENT_TYPES),
    st.tuples(text, text),
    st.integers(DEFAULT_MIN_EVENT_MS, NOW),
    st.floats(0, 1e9),
    st.none() | st.integers(0, 1_000_000),
    st.none() | text,
    st.none() | text,
    st.fixed_dictionaries(
        {"age": st.integers(0, 120)}, optional={"gender": text, "income": st.floats(0, 1e9), "country": text}
    ),
)


@given(events)
@settings(max_examples=200, deadline=None)
def test_encode_decode_round_trip(event):
    event = decode_event(event_to_dict(event), now_ms=NOW)  # normalises e.g. country case
    assert decode_event(encode_event(event), now_ms=NOW) == event
    assert json.loads(encode_event(event)) == event_to_dict(event)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(["event_id", "customer_id", "type", "ts", "amount", "quantity", "category",
                               "channel", "attributes", "age", "x"])  # fmt: skip
garbage = (
    st.binary(max_size=200)
    | st.text(max_size=200)
    | json_values
    | st.dictionaries(field_names, json_values | st.sampled_from(EVENT_TYPES), max_size=9)
    | st.builds(lambda changes: {**raw(), **changes}, st.dictionaries(field_names, json_values, max_size=2))
)


@given(garbage)
@settings(max_examples=500, deadline=None)
def test_garbage_never_raises_anything_but_invalid_event(message):
    outcome = _decode_or_error(message)
    if isinstance(outcome, InvalidEvent):
        assert outcome.reason
        assert repr(outcome.field) in str(outcome)
    else:
        assert decode_event(encode_event(outcome), now_ms=NOW) == outcome


def _decode_or_error(message):
    try:
        return decode_event(message, now_ms=NOW)
    except InvalidEvent as error:
        return error
