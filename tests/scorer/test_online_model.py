"""The river online model: seeded from the artifact, learning, checkpointed with the customer state."""

from __future__ import annotations

import numpy as np
from scorer_fixtures import as_records, changelog_records

from consumer.processor import Processor, Topics
from consumer.state_restore import judge
from consumer.state_store import ONLINE_MODEL_KEY, StateStore
from model.features import features, last_event_ms
from model.online import OnlineKMeans

TOPICS = Topics()


def _rows(model_source, stream, n=400):
    store = StateStore()
    store.assign(0)
    processor = Processor(store, model_source, TOPICS)
    processor.commit_entries(processor.process(as_records(stream[:n])))
    return [features(e.state, last_event_ms(e.state)) for _, e in store.customers()]


def test_a_tiny_learning_rate_scores_like_the_batch_model(model_source, stream):
    base = model_source()
    rows = _rows(model_source, stream)
    online = OnlineKMeans(base, learning_rate=1e-9)
    assignments, _ = online.score_partition(rows, None)
    assert [a.segment_id for a in assignments] == [a.segment_id for a in base.score(rows)]


def test_centres_learn_and_the_checkpoint_carries_them(model_source, stream):
    base = model_source()
    rows = _rows(model_source, stream)
    online = OnlineKMeans(base, learning_rate=0.05)
    _, checkpoint = online.score_partition(rows, None)
    assert OnlineKMeans.rows_learned(checkpoint) == len(rows)
    centres, _ = online._centres(checkpoint)
    assert not np.allclose(centres, base.centroids_scaled), "the centres moved towards the data"
    _, later = online.score_partition(rows[:10], checkpoint)
    assert OnlineKMeans.rows_learned(later) == len(rows) + 10
    # A checkpoint of another base model is not applied to this one: it starts from the artifact.
    other = OnlineKMeans(base, learning_rate=0.05)
    other.base = type("Other", (), {"model_id": "another", "centroids_scaled": base.centroids_scaled})()
    fresh, _ = online._centres(other._checkpoint(centres, 5))
    np.testing.assert_array_equal(fresh, base.centroids_scaled)


def test_processor_checkpoints_the_online_model_into_the_changelog(model_source, stream):
    def river():
        return OnlineKMeans(model_source(), learning_rate=0.01)

    cached = river()
    store = StateStore()
    store.assign(0)
    processor = Processor(store, lambda: cached, TOPICS)
    records = as_records(stream)
    half = len(records) // 2
    first = processor.process(records[:half])
    processor.commit_entries(first)
    checkpoints = [o for o in first.outputs if o.key == ONLINE_MODEL_KEY]
    assert len(checkpoints) == 1
    assert checkpoints[0].partition == 0
    assert OnlineKMeans.rows_learned(checkpoints[0].value) == len(first.scored)

    # A new instance restores customers and centres from the changelog and keeps learning from there.
    restored = StateStore()
    restored.restore(judge(0, changelog_records([o for o in first.outputs if o.topic == TOPICS.changelog])))
    assert restored.checkpoint(0) == checkpoints[0].value
    second = Processor(restored, lambda: cached, TOPICS).process(records[half:])
    assert OnlineKMeans.rows_learned(second.checkpoints[0]) == len(first.scored) + len(second.scored)
    uninterrupted = processor.process(records[half:])
    assert second.checkpoints == uninterrupted.checkpoints
    assert [s.segment_id for s in second.scored] == [s.segment_id for s in uninterrupted.scored]


def test_a_row_the_online_model_refuses_does_not_fail_the_batch(model_source, stream):
    """One Scorer protocol: the river model gets the per-row isolation the batch model has."""

    class RefusesOne(OnlineKMeans):
        def score_partition(self, rows, checkpoint):
            if any(row["frequency"] == 3.0 for row in rows):
                raise ValueError("Input contains infinity")
            return super().score_partition(rows, checkpoint)

    refusing = RefusesOne(model_source(), learning_rate=0.01)
    store = StateStore()
    store.assign(0)
    records = as_records(stream[:400])
    result = Processor(store, lambda: refusing, TOPICS).process(records)
    refused = [s for s in result.scored if s.features["frequency"] == 3.0]
    assert not refused
    assert result.invalid["internal_error"] > 0, "each refused customer is one dead letter"
    assert OnlineKMeans.rows_learned(result.checkpoints[0]) == len(result.scored), "the others learned"
