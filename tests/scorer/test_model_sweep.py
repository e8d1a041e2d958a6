"""A new live model re-scores every stored customer: the model-change sweep (no broker).

A partition's clock records the model its segments come from; when another model is live, the
partition's next batch (or an empty one, for a quiet partition) first re-scores all its stored
customers with it and publishes them with ``"reason": "model_change"``, in the batch's commit.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from scorer_fixtures import as_records, changelog_records
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline

from consumer.model_source import ModelSource
from consumer.processor import Processor, Topics
from consumer.state_restore import judge
from consumer.state_store import StateStore
from model.changelog import CLOCK_KEY, model_fingerprint
from model.features import features
from model.scoring import SegmentModel

NOW_S = 1_900_000_000  # after every synthetic event


@pytest.fixture(scope="module")
def other_model(retrained_model_dir):
    """Another model of the same input schema (other seed and k): a retrain."""
    return ModelSource(retrained_model_dir)


class Live:
    """The live model, swapped by the test as a hot reload would."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self):
        return self.model()


def _scored(live: Live, stream, **options):
    store = StateStore()
    for partition in range(3):
        store.assign(partition)
    processor = Processor(store, live, Topics(), wall_clock=lambda: NOW_S, **options)
    result = processor.process(as_records(stream[:600]))
    processor.commit_entries(result)
    return store, processor


def _updates(result) -> list[dict]:
    return [json.loads(o.value) for o in result.outputs if o.topic == Topics().output and o.value]


def test_a_new_model_rescores_every_stored_customer_once(model_source, other_model, stream):
    live = Live(model_source)
    store, processor = _scored(live, stream)
    before = {cid: entry.last_segment for cid, entry in store.customers()}
    assert not processor.work_due()

    live.model = other_model  # hot reload
    assert processor.work_due()
    assert processor.sweeps_pending() == 1  # the stream is one partition
    result = processor.process([])
    processor.commit_entries(result)
    updates = _updates(result)
    assert {u["customer_id"] for u in updates} == set(before)  # --emit-only-on-change off: everyone
    assert {u["reason"] for u in updates} == {"model_change"}
    assert {u["model_id"] for u in updates} == {other_model().model_id}
    assert [u["customer_id"] for u in updates] == sorted(before)
    for update in updates:
        entry = store.get(0, update["customer_id"])
        row = features(entry.state, store.clock(0).stream_ms)
        assert update["segment_id"] == other_model().score([row])[0].segment_id == entry.last_segment
        assert update["previous_segment_id"] == before[update["customer_id"]]
    assert store.clock(0).model == model_fingerprint(other_model().model_id)
    assert result.sweeps == 1
    assert result.swept == len(before)
    assert not processor.work_due()
    assert not _updates(processor.process([]))  # once


def test_with_emit_only_on_change_only_moved_customers_are_published(model_source, other_model, stream):
    live = Live(model_source)
    store, processor = _scored(live, stream, emit_only_on_change=True)
    before = {cid: entry.last_segment for cid, entry in store.customers()}
    live.model = other_model
    result = processor.process([])
    processor.commit_entries(result)
    moved = {cid for cid, entry in store.customers() if entry.last_segment != before[cid]}
    assert moved, "a model with another k moves someone"
    assert {u["customer_id"] for u in _updates(result)} == moved
    assert all(u["changed"] for u in _updates(result))


def test_the_sweep_comes_before_the_batchs_events(model_source, other_model, stream):
    live = Live(model_source)
    _, processor = _scored(live, stream)
    live.model = other_model
    result = processor.process(as_records(stream)[600:700])
    reasons = [u["reason"] for u in _updates(result)]
    swept = reasons.count("model_change")
    assert swept > 0
    assert reasons[:swept] == ["model_change"] * swept
    assert "event" in reasons[swept:]


def test_a_restored_partition_sweeps_only_if_its_segments_come_from_another_model(
    model_source, other_model, stream
):
    _, processor = _scored(Live(model_source), stream)
    changelog = changelog_records(
        [o for o in processor.process(as_records(stream)[600:650]).outputs if o.topic == Topics().changelog]
    )
    for model, sweeps in ((model_source, 0), (other_model, 1)):
        restored = StateStore()
        restored.restore(judge(0, changelog))
        again = Processor(restored, Live(model), Topics(), wall_clock=lambda: NOW_S)
        assert again.work_due() == bool(sweeps)
        assert again.process([]).sweeps == sweeps


def test_a_clock_written_before_models_were_recorded_does_not_sweep(model_source, other_model, stream):
    """A version 1 clock (from before this release) does not say which model scored the partition: it
    is taken as the live one, so upgrading does not republish every customer."""
    store = StateStore()
    store.assign(0)
    first = Processor(store, Live(model_source), Topics(), wall_clock=lambda: NOW_S).process(
        as_records(stream[:600])
    )
    legacy = [
        replace(r, value=bytes([1]) + r.value[1:17]) if r.key == CLOCK_KEY else r
        for r in changelog_records(first.outputs)
    ]
    restored = StateStore()
    restored.restore(judge(0, legacy))
    assert restored.clock(0).model == b""
    assert len(restored) > 0
    again = Processor(restored, Live(other_model), Topics(), wall_clock=lambda: NOW_S)
    assert not again.work_due()
    result = again.process([])
    assert result.sweeps == 0
    assert not _updates(result)
    next_batch = again.process(as_records(stream)[600:610])
    again.commit_entries(next_batch)
    assert next_batch.sweeps == 0
    assert restored.clock(0).model == model_fingerprint(other_model().model_id)  # known from now on


def test_a_swap_to_a_renumbered_but_equivalent_model_publishes_no_change(model_source, stream):
    """The same clusters in another order, with the lineage's ids (what ``train --previous`` gives a
    reshuffled retrain): the sweep finds every customer where it was."""
    live_model = model_source()
    order = list(range(live_model.k))[::-1]  # new cluster j is the live model's cluster order[j]
    cluster = KMeans(n_clusters=live_model.k, init=live_model.centroids_scaled[order], n_init=1, max_iter=1)
    cluster.fit(live_model.centroids_scaled[order])
    cluster.cluster_centers_ = live_model.centroids_scaled[order]
    pipeline = Pipeline([*live_model.pipeline.steps[:-1], ("cluster", cluster)])
    manifest = {
        "model_id": "renumbered-child",
        "segment_ids": [live_model.segment_ids[i] for i in order],
        "segment_names": [live_model.segment_names[i] for i in order],
    }
    renumbered = SegmentModel(pipeline, live_model.spec, manifest)
    for emit_only_on_change in (False, True):
        live = Live(model_source)
        store, processor = _scored(live, stream, emit_only_on_change=emit_only_on_change)
        live.model = lambda: renumbered
        rows = [features(entry.state, store.clock(0).stream_ms) for _, entry in store.customers()]
        raw = [a.segment_id for a in SegmentModel(pipeline, live_model.spec, {}).score(rows)]
        held = [entry.last_segment for _, entry in store.customers()]
        assert sum(a != b for a, b in zip(raw, held, strict=True)) > len(rows) / 2, "really renumbered"
        result = processor.process([])
        assert result.swept == len(store) > 0
        updates = _updates(result)
        assert not [u for u in updates if u["changed"]]
        assert len(updates) == (0 if emit_only_on_change else len(store))
