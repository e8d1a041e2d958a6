"""``age_partition`` on its own: chunking never changes the answer, and the batch's entries win."""

from __future__ import annotations

import pytest

from consumer import ageing
from consumer.ageing import age_partition
from consumer.state_store import Entry
from model.clock import DAY_MS
from model.features import EVENT_FEATURE_SPEC, aggregate_history, batch_features, initialize, last_event_ms
from model.pipeline import build_pipeline
from model.scoring import SegmentModel
from model.synthetic import synthetic_events


@pytest.fixture(scope="module")
def model_and_states():
    events = list(synthetic_events(120, seed=4))
    pipe = build_pipeline(EVENT_FEATURE_SPEC, k=4, seed=0).fit(batch_features(events))
    states = aggregate_history(events)
    at_ms = max(last_event_ms(s) for s in states.values()) + 200 * DAY_MS
    return SegmentModel(pipe, EVENT_FEATURE_SPEC, {"model_id": "m"}), states, at_ms


def _stored(states):
    return {cid: Entry(state, 0, last_segment=0).to_bytes() for cid, state in states.items()}


def _summary(aged):
    return [(cid, a.segment_id) for cid, _, a in aged.changed], aged.customers


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_any_chunk_size_gives_the_same_changes(model_and_states, monkeypatch, chunk):
    model, states, at_ms = model_and_states
    whole = _summary(age_partition(_stored(states), {}, at_ms, model, None))
    monkeypatch.setattr(ageing, "CHUNK", chunk)
    assert _summary(age_partition(_stored(states), {}, at_ms, model, None)) == whole
    assert whole[1] == len(states)
    assert whole[0]  # a tick 200 days on moves someone


def test_pending_entries_replace_stored_ones_and_erased_customers_are_left_out(model_and_states, monkeypatch):
    model, states, at_ms = model_and_states
    monkeypatch.setattr(ageing, "CHUNK", 16)
    ids = sorted(states)
    stored = _stored(states)
    moved, erased = ids[3], ids[40]
    pending = {moved: Entry(states[moved], 0, last_segment=99), erased: Entry(initialize(), 5)}
    aged = age_partition(stored, pending, at_ms, model, None)
    assert aged.customers == len(states) - 1
    changed = {cid: entry for cid, entry, _ in aged.changed}
    assert changed[moved].last_segment == 99
    assert erased not in changed


def test_ticks_compare_and_publish_segment_ids_not_cluster_indices(model_and_states):
    """A lineage's model publishes ids 20..23 in another order than its clusters: a customer whose
    stored last segment is its current id has not moved; one stored under the cluster index has."""
    base, states, at_ms = model_and_states
    ids = [22, 20, 23, 21]
    model = SegmentModel(base.pipeline, EVENT_FEATURE_SPEC, {"model_id": "child", "segment_ids": ids})
    now = dict(zip(states, _summary_ids(model, states, at_ms), strict=True))
    stored = {cid: Entry(state, 0, last_segment=now[cid]).to_bytes() for cid, state in states.items()}
    assert age_partition(stored, {}, at_ms, model, None).changed == [], "the same ids: nobody moved"

    by_index = {
        cid: Entry(s, 0, last_segment=model.index_of(now[cid])).to_bytes() for cid, s in states.items()
    }
    aged = age_partition(by_index, {}, at_ms, model, None)
    assert {cid for cid, _, _ in aged.changed} == set(states), "no id equals its index here"
    for cid, _, assignment in aged.changed:
        assert assignment.segment_id == now[cid]
        assert assignment.segment_name == model.segment_name(now[cid])
        assert assignment.distance == assignment.distances[model.index_of(now[cid])]


def _summary_ids(model, states, at_ms):
    """Every customer's id as of ``at_ms``, from a tick over entries stored with no segment."""
    stored = {cid: Entry(state, 0).to_bytes() for cid, state in states.items()}
    changed = {cid: a.segment_id for cid, _, a in age_partition(stored, {}, at_ms, model, None).changed}
    return [changed[cid] for cid in states]
