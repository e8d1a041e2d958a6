"""A model trained from a customer table, scored in the stream from ``profile`` events (no broker).

The table's columns arrive as profile ``attributes``; each column's latest value by event time wins;
bad values are dead letters naming the column; unknown attributes are counted, not dead-lettered.
A spec may mix table columns with the aggregator's features (here ``frequency`` and ``recency_days``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scorer_fixtures import EXAMPLES, as_records, changelog_records, reference_outputs, updates_by_customer

from consumer.model_source import ModelSource
from consumer.outputs import DLQ_ERROR, DLQ_REASON
from consumer.processor import Processor, TimeSettings, Topics
from consumer.state_restore import judge
from consumer.state_store import StateStore
from model.features import DAY_MS, features, table_columns
from training.sources import load_table
from training.train import TrainOptions, train

T0 = 1_700_000_000_000  # 2023-11-14


@pytest.fixture(scope="module")
def table_model(table_model_dir):
    """The README's table example (4 numeric, 2 categorical columns: all of them table columns)."""
    return ModelSource(table_model_dir)


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    """Table columns (``plan``, ``seats``) beside aggregator features (``frequency``, ``recency_days``)."""
    out = tmp_path_factory.mktemp("mixed-model")
    rng = np.random.default_rng(3)
    n = 600
    busy = rng.random(n) < 0.5
    table = pd.DataFrame({
        "account": [f"a{i}" for i in range(n)],
        "frequency": np.where(busy, rng.integers(20, 60, n), rng.integers(1, 4, n)),
        "recency_days": np.where(busy, rng.uniform(0, 10, n), rng.uniform(200, 400, n)),
        "seats": np.where(busy, rng.integers(20, 50, n), rng.integers(1, 5, n)),
        "plan": np.where(busy, "pro", "basic"),
    })  # fmt: skip
    spec = {
        "id_column": "account",
        "numeric": ["frequency", "recency_days", "seats"],
        "categorical": ["plan"],
        "heavy_tailed": ["frequency", "seats"],
        "ranges": {"seats": {"unit": "seats", "minimum": 1, "maximum": 500}},
    }
    (out / "t.csv").write_text(table.to_csv(index=False))
    (out / "t.spec.json").write_text(json.dumps(spec))
    train(load_table(out / "t.csv", out / "t.spec.json", 0.2, seed=0), out / "model",
          TrainOptions(k_max=2, k_min=2, stability_rounds=2, report=False))  # fmt: skip
    return ModelSource(out / "model")


def profile(customer: str, n: int, ts_ms: int, **attributes) -> tuple[bytes, bytes]:
    event = {"event_id": f"{customer}-p{n}", "customer_id": customer, "type": "profile", "ts": ts_ms,
             "attributes": attributes}  # fmt: skip
    return customer.encode(), json.dumps(event).encode()


def purchase(customer: str, n: int, ts_ms: int, amount: float = 20.0) -> tuple[bytes, bytes]:
    event = {"event_id": f"{customer}-b{n}", "customer_id": customer, "type": "purchase", "ts": ts_ms,
             "amount": amount}  # fmt: skip
    return customer.encode(), json.dumps(event).encode()


NO_TICKS = TimeSettings(tick_ms=0)


def run(model, pairs, batch_size: int = 10_000, clock: TimeSettings = NO_TICKS):
    store = StateStore()
    store.assign(0)
    processor = Processor(store, model, Topics(), wall_clock=lambda: T0 / 1000 + 1000 * 86_400, clock=clock)
    results = []
    records = as_records(pairs)
    for start in range(0, len(records), batch_size):
        result = processor.process(records[start : start + batch_size])
        processor.commit_entries(result)
        results.append(result)
    return store, results


def updates(results) -> list[dict]:
    return [json.loads(o.value) for r in results for o in r.outputs if o.topic == Topics().output and o.value]


def dead_letters(results) -> list:
    return [o for r in results for o in r.outputs if o.topic == Topics().dead_letter]


def test_profile_rows_score_as_the_model_scores_the_same_table_rows(table_model):
    table = pd.read_csv(EXAMPLES / "customers.csv", dtype={"plan": str, "region": str}).head(200)
    pairs = [  # a gap in the table is an attribute the profile system leaves out
        profile(row.pop("account_id"), 0, T0 + i, **{k: v for k, v in row.items() if not pd.isna(v)})
        for i, row in enumerate(table.to_dict(orient="records"))
    ]
    _, results = run(table_model, pairs, batch_size=37)
    published = {u["customer_id"]: u["segment_id"] for u in updates(results)}
    rows = table.drop(columns="account_id").to_dict(orient="records")
    expected = [a.segment_id for a in table_model().score(rows)]
    assert [published[cid] for cid in table["account_id"]] == expected
    assert len(set(expected)) > 1  # the example's segments, not one cluster
    assert not dead_letters(results)


def test_each_column_keeps_its_latest_value_by_event_time(table_model):
    table = table_columns(table_model().spec)
    pairs = [
        profile("c1", 1, T0 + 2000, plan="pro", spend_12m=900.0, orders_12m=12),
        profile("c1", 2, T0 + 1000, plan="basic", region="east"),  # older: plan stays "pro"
        profile("c1", 3, T0 + 3000, spend_12m=50.0),  # newer, only the spend changes
        profile("c1", 4, T0 + 4000, orders_12m=None),  # a null clears a column
    ]
    store, results = run(table_model, pairs, batch_size=1)
    row = features(store.get(0, "c1").state, T0 + 4000, table)
    assert {k: row[k] for k in table.names} == {
        "orders_12m": None,
        "spend_12m": 50.0,
        "days_since_last_order": None,
        "support_tickets": None,
        "plan": "pro",
        "region": "east",
    }
    assert len(updates(results)) == 4  # every valid event is scored


def test_a_bad_value_is_a_dead_letter_naming_the_column_and_nothing_changes(table_model):
    pairs = [
        profile("c1", 1, T0, plan="pro", spend_12m=100.0),
        profile("c1", 2, T0 + 1, spend_12m=250_000.0),  # above the spec's maximum of 100,000
        profile("c1", 3, T0 + 2, orders_12m="many"),
        profile("c1", 4, T0 + 3, plan=["pro"]),
        profile("c2", 1, T0 + 4, plan="basic"),
    ]
    store, results = run(table_model, pairs)
    dead = dead_letters(results)
    assert [dict(d.headers)[DLQ_REASON] for d in dead] == [b"bad_value", b"wrong_type", b"wrong_type"]
    messages = [dict(d.headers)[DLQ_ERROR].decode() for d in dead]
    for column, message in zip(("spend_12m", "orders_12m", "plan"), messages, strict=True):
        assert f"'attributes.{column}'" in message
    assert "<= 100000" in messages[0]
    state = store.get(0, "c1").state
    assert features(state, T0, table_columns(table_model().spec))["spend_12m"] == 100.0
    assert store.get(0, "c2") is not None
    assert len(updates(results)) == 2


def test_unknown_attributes_are_counted_not_dead_lettered(table_model):
    pairs = [profile("c1", 1, T0, plan="pro", loyalty_tier="gold", Plan="typo")]
    _, results = run(table_model, pairs)
    assert not dead_letters(results)
    assert results[0].attributes_unknown == 2
    assert len(updates(results)) == 1


def test_table_state_survives_the_changelog_and_any_batch_size(table_model):
    pairs = [profile(f"c{i % 7}", i, T0 + i * 1000, plan=["pro", "basic"][i % 2], spend_12m=float(i * 40),
                     orders_12m=i % 9, region="west") for i in range(60)]  # fmt: skip
    outputs = {
        size: updates_by_customer(reference_outputs(table_model, pairs, size)[0]) for size in (1, 7, 500)
    }
    assert outputs[1] == outputs[7] == outputs[500]
    # Restore mid-way from the changelog the first half wrote, then go on: the same outputs.
    first_store, first = run(table_model, pairs[:30])
    restored = StateStore()
    judged = judge(0, changelog_records(first[0].outputs))  # restore's checks, the table block's too
    assert not judged.quarantined
    restored.restore(judged)
    assert dict(restored.customers()) == dict(first_store.customers())
    processor = Processor(restored, table_model, Topics(), wall_clock=lambda: T0 / 1000 + 1000 * 86_400,
                          clock=TimeSettings(tick_ms=0))  # fmt: skip
    second = processor.process(as_records(pairs)[30:])
    resumed = [(o.key, o.value) for r in (*first, second) for o in r.outputs if o.topic == Topics().output]
    assert updates_by_customer(resumed) == outputs[500]


def test_a_block_written_for_other_columns_reads_as_unknown(table_model, mixed_model):
    store, _ = run(table_model, [profile("c1", 1, T0, plan="pro", spend_12m=10.0)])
    state = store.get(0, "c1").state
    assert features(state, T0, table_columns(mixed_model().spec))["plan"] is None
    assert features(state, T0, table_columns(table_model().spec))["plan"] == "pro"


def test_a_mixed_spec_takes_behaviour_from_events_and_columns_from_profiles(mixed_model):
    busy = [purchase("busy", i, T0 + i * DAY_MS) for i in range(40)] + [
        profile("busy", 0, T0, plan="pro", seats=30)
    ]
    quiet = [purchase("quiet", 0, T0), profile("quiet", 0, T0, plan="basic", seats=2)]
    store, results = run(mixed_model, sorted(busy + quiet, key=lambda p: json.loads(p[1])["ts"]))
    latest = {u["customer_id"]: u for u in updates(results)}
    row = features(store.get(0, "busy").state, T0 + 39 * DAY_MS, table_columns(mixed_model().spec))
    assert (row["frequency"], row["plan"], row["seats"]) == (40.0, "pro", 30.0)
    assert latest["busy"]["segment_id"] != latest["quiet"]["segment_id"]


def test_ticks_age_a_mixed_model_and_leave_a_table_model_alone(table_model, mixed_model):
    early = [purchase("a", 0, T0), profile("a", 0, T0, plan="pro", seats=10)]
    early += [purchase("a", i, T0 + i * 3_600_000) for i in range(1, 10)]  # ten purchases in a morning
    later = [purchase("z", 0, T0 + 400 * DAY_MS)]  # stream time moves 400 days on: "a" lapses
    clock = TimeSettings(tick_ms=DAY_MS)
    _, results = run(mixed_model, early + later, clock=clock)
    aged = [u for u in updates(results) if u["reason"] == "ageing"]
    assert [u["customer_id"] for u in aged] == ["a"]
    table_pairs = [profile("t", 0, T0, plan="pro"), profile("u", 0, T0 + 400 * DAY_MS, plan="basic")]
    _, table_results = run(table_model, table_pairs, clock=clock)
    assert sum(r.ticks for r in table_results) > 0
    assert not [u for u in updates(table_results) if u["reason"] == "ageing"]


def test_the_longest_text_value_is_stored_without_splitting_a_character(table_model):
    """64 four-byte characters are 256 bytes, one more than a cell holds: the cut keeps whole ones."""
    store, results = run(table_model, [profile("c1", 1, T0, plan="\U0001f600" * 64)])
    assert not dead_letters(results)
    value = features(store.get(0, "c1").state, T0, table_columns(table_model().spec))["plan"]
    assert value == "\U0001f600" * 63
