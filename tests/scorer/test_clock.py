"""The one clock in the stream: stream time per partition, ageing ticks, state TTL, wall-clock mode.

Plain data through the processor (no broker): a model in which recency matters, and event streams
built by hand or from the synthetic generator. Determinism is checked on whole outputs, record for
record (every field but ``scored_at``, the one wall-clock field).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from scorer_fixtures import as_records, changelog_records

from consumer.processor import DEFAULT_TIME, Processor, TimeSettings, Topics
from consumer.state_restore import judge
from consumer.state_store import CLOCK_KEY, StateStore
from model.clock import DAY_MS
from model.events import Event, encode_event, format_ts
from model.features import EVENT_FEATURE_SPEC, aggregate_history, features, last_event_ms
from model.pipeline import build_pipeline
from model.scoring import SegmentModel
from model.synthetic import synthetic_events

T0 = 852_076_800_000  # 1997-01-01T00:00:00Z
TOPICS = Topics()


@pytest.fixture(scope="module")
def ageing_model():
    """A KMeans fitted on customers seen fresh and up to a year later, so recency separates segments:
    synthetic customers with demographics plus purchase-only ones like the tests' own."""
    rng = random.Random(0)
    events = list(synthetic_events(150, seed=21))
    for c in range(300):
        start = rng.randrange(0, 200)
        for j in range(rng.choice([1, 1, 1, 2, 3, 5, 8])):
            ts = T0 + (start + rng.randrange(0, 150)) * DAY_MS
            events.append(Event(f"c{c}-{j}", f"c{c}", "purchase", ts, amount=round(rng.uniform(5, 80), 2)))
    states = list(aggregate_history(events).values())
    rows = [features(s, last_event_ms(s) + lag * DAY_MS) for s in states for lag in (0, 3, 30, 100, 200, 400)]
    frame = pd.DataFrame(rows, columns=list(EVENT_FEATURE_SPEC.feature_names))
    pipe = build_pipeline(EVENT_FEATURE_SPEC, k=3, seed=0).fit(frame)
    model = SegmentModel(pipe, EVENT_FEATURE_SPEC, {"model_id": "ageing-test"})
    return lambda: model


def purchase(customer: str, day: float, n: int, amount: float = 20.0) -> tuple[bytes, bytes]:
    event = Event(f"{customer}-{n}", customer, "purchase", T0 + int(day * DAY_MS), amount=amount)
    return customer.encode(), encode_event(event)


def run(model, pairs, batch_size=10_000, clock=DEFAULT_TIME, store=None, **kwargs):
    """Every output of a run over one partition, in order; scored_at dropped (wall clock)."""
    store = StateStore() if store is None else store
    store.assign(0)
    processor = Processor(store, model, TOPICS, clock=clock, **kwargs)
    records = as_records(pairs)
    outputs = []
    for start in range(0, len(records), batch_size):
        result = processor.process(records[start : start + batch_size])
        processor.commit_entries(result)
        outputs += [_comparable(o) for o in result.outputs if o.topic == TOPICS.output]
    return outputs, processor


def _comparable(output):
    if output.value is None:
        return (output.key.decode(), None)
    body = json.loads(output.value)
    body.pop("scored_at")
    return (output.key.decode(), body)


def updates(outputs, reason=None):
    return [body for _, body in outputs if body is not None and (reason is None or body["reason"] == reason)]


def quiet_then_heartbeat(quiet=12, days=400):
    """``quiet`` customers buy once on day 0; a heartbeat customer buys every day for ``days``."""
    pairs = [purchase(f"q{i:02d}", 0.25, 0) for i in range(quiet)]
    pairs += [purchase("heartbeat", day + 0.5, day) for day in range(1, days)]
    return pairs


def test_quiet_customers_age_at_midnight_ticks(ageing_model):
    outputs, processor = run(ageing_model, quiet_then_heartbeat())
    ageing = updates(outputs, "ageing")
    aged_quiet = [u for u in ageing if u["customer_id"].startswith("q")]
    assert aged_quiet, "a customer who never comes back must change segment as it ages"
    for update in ageing:
        assert update["as_of"].endswith("T00:00:00.000Z"), "ticks are at UTC midnight"
        assert update["previous_segment_id"] != update["segment_id"]
        assert update["changed"] is True
    # one tick's updates are sorted by customer id, whatever order the store holds them in
    by_tick: dict[str, list[str]] = {}
    for update in ageing:
        by_tick.setdefault(update["as_of"], []).append(update["customer_id"])
    assert all(ids == sorted(ids) for ids in by_tick.values())
    # every quiet customer ends in the segment its features as of the last tick give
    model = ageing_model()
    last_tick = T0 + 399 * DAY_MS
    for i in range(12):
        entry = processor.store.get(0, f"q{i:02d}")
        assert entry.last_segment == model.score([features(entry.state, last_tick)])[0].segment_id
    event_updates = updates(outputs, "event")
    assert len(event_updates) == 12 + 399
    assert all(u["as_of"] >= u["event_time"] for u in event_updates)


def test_ticks_off_publishes_only_event_updates(ageing_model):
    outputs, _ = run(ageing_model, quiet_then_heartbeat(days=60), clock=TimeSettings(tick_ms=0))
    assert updates(outputs, "ageing") == []
    assert len(updates(outputs)) == 12 + 59


def test_a_gap_in_the_data_ages_once_to_the_last_boundary(ageing_model):
    store = StateStore()
    run(ageing_model, [purchase("a", 0.5, 0)], store=store)
    processor = Processor(store, ageing_model, TOPICS)
    result = processor.process(as_records([purchase("b", 300.5, 0)], partition=0)[:1])
    assert result.ticks == 1
    for body in (json.loads(o.value) for o in result.outputs if o.topic == TOPICS.output and o.value):
        if body["reason"] == "ageing":
            assert body["as_of"] == format_ts(T0 + 300 * DAY_MS)
    assert result.clocks[0].last_tick_ms == T0 + 300 * DAY_MS


def test_late_events_fold_in_and_are_scored_as_of_stream_time(ageing_model):
    pairs = [purchase("a", 10.5, 0), purchase("b", 2.5, 0), purchase("a", 3.0, 1)]
    outputs, processor = run(ageing_model, pairs)
    as_of = [u["as_of"] for u in updates(outputs, "event")]
    assert as_of == [format_ts(T0 + int(10.5 * DAY_MS))] * 3, "a late event does not move the clock back"
    assert processor.store.clock(0).stream_ms == T0 + int(10.5 * DAY_MS)
    entry = processor.store.get(0, "a")
    assert features(entry.state, 0)["frequency"] == 2.0, "the late event still folds into the state"


def test_a_future_event_is_a_dead_letter_and_does_not_move_stream_time(ageing_model):
    now_s = (T0 + 20 * DAY_MS) / 1000
    pairs = [purchase("a", 10.5, 0), purchase("b", 22.0, 0), purchase("c", 11.0, 0)]
    outputs, processor = run(ageing_model, pairs, wall_clock=lambda: now_s)
    assert processor.store.clock(0).stream_ms == T0 + 11 * DAY_MS
    assert [u["customer_id"] for u in updates(outputs)] == ["a", "c"] or "b" not in {
        u["customer_id"] for u in updates(outputs)
    }


def stream_with_everything(seed=3):
    """Synthetic events in time order with late events, re-sent duplicates, garbage and an erase."""
    rng = random.Random(seed)
    events = sorted(synthetic_events(120, seed=seed), key=lambda e: (e.ts_ms, e.event_id))
    pairs = [(e.customer_id.encode(), encode_event(e)) for e in events]
    for _ in range(40):  # late arrivals: an event moved later in the partition
        i = rng.randrange(len(pairs) - 50)
        pairs.insert(i + rng.randrange(1, 50), pairs.pop(i))
    for _ in range(15):  # duplicates re-sent later
        pairs.insert(rng.randrange(len(pairs)), pairs[rng.randrange(len(pairs))])
    for n in range(10):
        pairs.insert(rng.randrange(len(pairs)), (b"bad", b'{"type": "purchase", "oops": %d}' % n))
    victim = events[len(events) // 2]
    erase = Event("erase-1", victim.customer_id, "erase", victim.ts_ms + 1)
    pairs.insert(len(pairs) * 2 // 3, (victim.customer_id.encode(), encode_event(erase)))
    return pairs


def test_batch_sizes_1_7_and_500_give_the_same_output_record_for_record(ageing_model):
    pairs = stream_with_everything()
    clock = TimeSettings(state_ttl_ms=200 * DAY_MS)
    reference, _ = run(ageing_model, pairs, batch_size=500, clock=clock)
    assert updates(reference, "ageing"), "the stream must exercise ticks"
    assert any(body is None for _, body in reference), "and tombstones (erase, TTL)"
    for batch_size in (1, 7):
        outputs, _ = run(ageing_model, pairs, batch_size=batch_size, clock=clock)
        assert outputs == reference, f"batch size {batch_size}"


def test_a_restart_from_the_changelog_continues_exactly(ageing_model):
    """Stop anywhere, restore from what the changelog holds (clock included), go on: same output."""
    pairs = stream_with_everything(seed=4)
    reference, _ = run(ageing_model, pairs, batch_size=64)
    records = as_records(pairs)
    for cut in (1, 37, len(records) // 2, len(records) - 3):
        store = StateStore()
        store.assign(0)
        first = Processor(store, ageing_model, TOPICS)
        result = first.process(records[:cut])
        first.commit_entries(result)
        outputs = [_comparable(o) for o in result.outputs if o.topic == TOPICS.output]
        changelog = [o for o in result.outputs if o.topic == TOPICS.changelog]
        assert any(o.key == CLOCK_KEY for o in changelog)
        restored = StateStore()
        restored.restore(judge(0, changelog_records(changelog)))
        assert restored.clock(0) == store.clock(0)
        second = Processor(restored, ageing_model, TOPICS)
        for start in range(cut, len(records), 64):
            more = second.process(records[start : start + 64])
            second.commit_entries(more)
            outputs += [_comparable(o) for o in more.outputs if o.topic == TOPICS.output]
        assert outputs == reference, f"restarted after {cut} records"


def test_state_ttl_drops_quiet_customers_with_tombstones(ageing_model):
    pairs = quiet_then_heartbeat(quiet=3, days=40)
    outputs, processor = run(ageing_model, pairs, clock=TimeSettings(state_ttl_ms=30 * DAY_MS))
    tombstones = [key for key, body in outputs if body is None]
    assert tombstones == ["q00", "q01", "q02"]
    assert {cid for cid, _ in processor.store.customers()} == {"heartbeat"}


def test_wall_clock_mode_ages_a_quiet_partition_between_polls(ageing_model):
    now = {"s": (T0 + int(0.5 * DAY_MS)) / 1000}
    store = StateStore()
    store.assign(0)
    processor = Processor(
        store, ageing_model, TOPICS, wall_clock=lambda: now["s"], clock=TimeSettings(wall_clock=True)
    )
    first = processor.process(as_records([purchase("a", 0.25, 0)]))
    processor.commit_entries(first)
    assert json.loads(first.outputs[0].value)["as_of"] == format_ts(T0 + int(0.5 * DAY_MS))
    assert not processor.work_due()
    aged_to = None
    for day in range(1, 400):
        now["s"] = (T0 + day * DAY_MS + 1000) / 1000
        assert processor.work_due()
        result = processor.process([])
        processor.commit_entries(result)
        assert result.ticks == 1
        if any(o.topic == TOPICS.output for o in result.outputs):
            aged_to = json.loads(result.outputs[0].value)
            break
    assert aged_to is not None
    assert aged_to["reason"] == "ageing"
    assert aged_to["source"] is None
    assert aged_to["as_of"] == format_ts(T0 + day * DAY_MS)


def test_columnar_and_row_scores_agree_for_the_ageing_model(ageing_model):
    """The tick path (columns) and the event path (rows) give one customer the same segment."""
    from model.changelog import NO_RECENT_IDS, encode_entry
    from model.feature_columns import entry_feature_columns

    model = ageing_model()
    states = list(aggregate_history(synthetic_events(50, seed=2)).values())
    now = max(last_event_ms(s) for s in states) + 90 * DAY_MS
    columns = entry_feature_columns([encode_entry(s, 0, -1, NO_RECENT_IDS) for s in states], now)
    labels, _, _ = model.score_columns(columns, len(states), None)
    assert np.array_equal(labels, [a.segment_id for a in model.score([features(s, now) for s in states])])
