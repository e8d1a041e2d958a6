"""Where histories come from: the seeded synthetic generator, the real CDNOW log, JSON-lines files."""

import collections
from datetime import UTC, datetime

import pytest

from model.errors import ConfigError, InvalidEvent
from model.events import decode_event, encode_event
from model.features import batch_features
from model.synthetic import PERSONAS, synthetic_events, synthetic_personas
from training.datasets import (
    BadLine,
    cdnow_events,
    cdnow_holdout_ids,
    cdnow_path,
    read_events_jsonl,
    write_events_jsonl,
)

DAY = 86_400_000


@pytest.fixture(scope="module")
def synthetic():
    return list(synthetic_events(2_000, seed=3))


def test_synthetic_is_seeded_and_labelled_synthetic(synthetic):
    assert list(synthetic_events(50, seed=3)) == list(synthetic_events(50, seed=3))
    assert list(synthetic_events(50, seed=3)) != list(synthetic_events(50, seed=4))
    assert all(e.event_id.startswith("syn-") and e.customer_id.startswith("syn-c") for e in synthetic)
    assert len({e.event_id for e in synthetic}) == len(synthetic)


def test_synthetic_events_obey_the_event_contract(synthetic):
    for event in synthetic:
        assert decode_event(encode_event(event), max_future_ms=None) == event


def test_synthetic_customers_have_one_profile_and_a_persona(synthetic):
    profiles = collections.Counter(e.customer_id for e in synthetic if e.type == "profile")
    personas = synthetic_personas(2_000, seed=3)
    assert set(profiles) == set(personas) == {e.customer_id for e in synthetic}
    assert set(profiles.values()) == {1}
    assert set(personas.values()) == {p.name for p in PERSONAS}
    assert {e.type for e in synthetic} == {"profile", "purchase", "refund", "visit"}


def test_personas_behave_differently(synthetic):
    frame = batch_features(synthetic)
    frame["persona"] = frame.index.map(synthetic_personas(2_000, seed=3))
    medians = frame.groupby("persona").median(numeric_only=True)
    assert (
        medians.loc["loyal_high_value", "monetary_total"]
        > 3 * medians.loc["lapsed_one_timer", "monetary_total"]
    )
    assert medians.loc["lapsed_one_timer", "frequency"] == 1
    assert medians.loc["bargain_hunter", "avg_order_value"] < medians.loc["regular", "avg_order_value"]
    assert frame.groupby("persona")["refund_share"].mean().idxmax() == "refund_heavy"


@pytest.fixture(scope="module")
def cdnow():
    return list(cdnow_events())


def test_cdnow_has_the_published_counts(cdnow):
    assert len(cdnow) == 69_659
    customers = {e.customer_id for e in cdnow}
    assert len(customers) == 23_570
    holdout = cdnow_holdout_ids()
    assert len(holdout) == 2_357
    assert holdout <= customers
    assert len({e.event_id for e in cdnow}) == len(cdnow)


def test_cdnow_events_are_midnight_utc_purchases_in_1997_and_1998(cdnow):
    assert {e.type for e in cdnow} == {"purchase"}
    first, last = min(e.ts_ms for e in cdnow), max(e.ts_ms for e in cdnow)
    assert datetime.fromtimestamp(first / 1000, UTC) == datetime(1997, 1, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(last / 1000, UTC) == datetime(1998, 6, 30, tzinfo=UTC)
    assert all(e.ts_ms % DAY == 0 for e in cdnow)
    free = [e for e in cdnow if e.amount == 0]
    assert free
    assert all(e.quantity >= 1 for e in free)
    assert all(decode_event(encode_event(e)) == e for e in cdnow[:500] + free)


def test_event_time_on_1997_data_is_days_not_decades(cdnow):
    frame = batch_features(cdnow)
    span_days = 545  # 1997-01-01 .. 1998-06-30
    assert frame["tenure_days"].between(0, span_days).all()
    assert frame["tenure_days"].max() > 365  # some customers bought across the whole history
    # As of each customer's own latest event, which in purchase-only CDNOW is always a purchase.
    assert (frame["recency_days"] == 0).all()
    as_of_end = batch_features(cdnow, now_ms=max(e.ts_ms for e in cdnow))
    assert as_of_end["recency_days"].between(0, span_days).all()
    assert as_of_end["recency_days"].median() > 30


def test_missing_lifetimes_file_is_a_clear_config_error():
    with pytest.raises(ConfigError, match=r"no_such_file\.txt"):
        cdnow_path("no_such_file.txt")


def test_jsonl_round_trip(tmp_path, synthetic):
    path = tmp_path / "events.jsonl"
    assert write_events_jsonl(path, synthetic[:300]) == 300
    assert list(read_events_jsonl(path)) == synthetic[:300]


BAD_FILE = (
    b'{"event_id": "a", "customer_id": "c", "type": "visit", "ts": 1704067200000}\n'
    b"\xff\n"
    b"\n"
    b'{"event_id": "b", "customer_id": "c", "type": "purchase", "ts": 1704067200000}\n'
    b"not json\n"
    b'{"event_id": "c", "customer_id": "c", "type": "visit", "ts": "1997-01-01"}\n'
)


def test_bad_lines_are_reported_with_their_numbers(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(BAD_FILE)
    with pytest.raises(InvalidEvent, match="line 2 of") as info:
        list(read_events_jsonl(path))
    assert info.value.reason == "bad_utf8"
    errors: list[BadLine] = []
    good = list(read_events_jsonl(path, errors=errors))
    assert [e.event_id for e in good] == ["a", "c"]
    assert [(b.line_number, b.error.field, b.error.reason) for b in errors] == [
        (2, "$", "bad_utf8"),
        (4, "amount", "missing_field"),
        (5, "$", "not_json"),
    ]


def test_absent_lifetimes_package_says_how_to_install_it(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ConfigError, match="pip install --no-deps lifetimes"):
        cdnow_path()
