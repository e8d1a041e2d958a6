"""The ageing schedule skips customers a tick cannot move, and the output stays exactly the same.

Three things are checked on plain data (no broker): a proved horizon holds day by day (brute force),
a processor that skips gives the output of one that re-scores everyone at every tick (with late
events, duplicates, garbage, an erase and the state TTL, at several batch sizes), and a batch whose
results are thrown away (an aborted transaction) and then redone gives that output too.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_clock
from scorer_fixtures import as_records
from test_clock import TOPICS, _comparable, run, stream_with_everything

from consumer.processor import Processor, TimeSettings
from consumer.state_store import StateStore
from consumer.tick_schedule import HORIZONS_MS, TickSchedule
from model.changelog import NO_RECENT_IDS, encode_entry, entry_columns
from model.clock import DAY_MS
from model.feature_columns import at_times, features_as_of
from model.features import aggregate_history, last_event_ms
from model.synthetic import synthetic_events

TTL = TimeSettings(state_ttl_ms=200 * DAY_MS)
ageing_model = test_clock.ageing_model  # the fixture: a model in which recency matters


def test_a_proved_horizon_holds_at_every_day_in_between(ageing_model):
    """For synthetic customers at several ages, every day of every horizon the model proves scores
    the customer in the segment it started in; and the proofs cover most customers (else the schedule
    would be pointless)."""
    model = ageing_model()
    states = aggregate_history(synthetic_events(200, seed=8))
    raws = [encode_entry(s, 0, -1, NO_RECENT_IDS) for s in states.values()]
    fields, tails = entry_columns(raws)
    last = max(last_event_ms(s) for s in states.values())
    proved = 0
    for start in (last, last + 40 * DAY_MS, last + 300 * DAY_MS):
        columns = features_as_of(fields, tails, start, None)
        labels, _, _ = model.score_columns(columns, len(raws), None)
        spans = list(HORIZONS_MS)
        holds = model.keeps_segments(
            columns, at_times(columns, fields, [start + s for s in spans]), len(raws), labels
        )
        assert holds.shape == (len(spans), len(raws))
        for span, held in zip(spans, holds, strict=True):
            proved += int(held.sum())
            for day in range(0, span // DAY_MS + 1):
                later, _, _ = model.score_columns(
                    features_as_of(fields, tails, start + day * DAY_MS, None), len(raws), None
                )
                assert np.array_equal(later[held], labels[held]), f"day {day} of a {span // DAY_MS}-day proof"
    assert proved > len(raws), "the model proves horizons for many customers"


def _no_schedule(monkeypatch):
    """Every tick re-scores everyone, as before the schedule."""
    monkeypatch.setattr(TickSchedule, "due", lambda self, stored, at_ms, model: (None, []))


@pytest.mark.parametrize("batch_size", [1, 7, 500])
def test_skipping_ticks_publish_exactly_what_re_scoring_everyone_publishes(
    ageing_model, monkeypatch, batch_size
):
    pairs = stream_with_everything(seed=5)
    with monkeypatch.context() as patch:
        _no_schedule(patch)
        everyone, _ = run(ageing_model, pairs, batch_size=batch_size, clock=TTL)
    skipping, processor = run(ageing_model, pairs, batch_size=batch_size, clock=TTL)
    assert any(body and body["reason"] == "ageing" for _, body in everyone), "ticks moved someone"
    assert skipping == everyone
    assert processor.store.schedule(0).filed() > 0


def test_the_schedule_skips_most_customers_at_most_ticks(ageing_model):
    records = as_records(stream_with_everything(seed=6))
    store = StateStore()
    store.assign(0)
    processor = Processor(store, ageing_model, TOPICS, clock=TTL)
    rescored = skipped = 0
    for start in range(0, len(records), 50):
        result = processor.process(records[start : start + 50])
        processor.commit_entries(result)
        rescored, skipped = rescored + result.aged_customers, skipped + result.aged_skipped
    assert skipped > 2 * rescored, (rescored, skipped)


def test_a_batch_thrown_away_and_redone_gives_the_same_output(ageing_model):
    """An aborted transaction: the processor's results are not committed and the batch comes again.
    Ticks in the thrown-away batch changed the schedule; the redone batch must still publish what an
    uninterrupted run publishes."""
    pairs = stream_with_everything(seed=7)
    reference, _ = run(ageing_model, pairs, batch_size=40, clock=TTL)
    records = as_records(pairs)
    store = StateStore()
    store.assign(0)
    processor = Processor(store, ageing_model, TOPICS, clock=TTL)
    outputs = []
    for number, start in enumerate(range(0, len(records), 40)):
        batch = records[start : start + 40]
        if number % 3 == 1:
            processor.process(batch)  # aborted: nothing committed, nothing applied
        result = processor.process(batch)
        processor.commit_entries(result)
        outputs += [_comparable(o) for o in result.outputs if o.topic == TOPICS.output]
    assert outputs == reference
