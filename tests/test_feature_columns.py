"""The columnar features a tick scores equal the one aggregator's row features, value for value."""

import math

import numpy as np
import pytest

from model.changelog import NO_RECENT_IDS, encode_entry
from model.events import Event
from model.feature_columns import entry_feature_columns
from model.features import EVENT_FEATURE_SPEC, aggregate_history, features, last_event_ms
from model.synthetic import synthetic_events

DAY = 86_400_000


def _entries(states):
    return [encode_entry(state, 0, -1, NO_RECENT_IDS) for state in states]


def _same(row_value, column_value):
    if row_value is None:
        return column_value is None or (isinstance(column_value, float) and math.isnan(column_value))
    if isinstance(row_value, str):
        return row_value == column_value
    return column_value == pytest.approx(row_value, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("days_later", [0, 1, 45, 400])
def test_columns_equal_row_features_of_every_customer(days_later):
    states = list(aggregate_history(synthetic_events(600, seed=3)).values())
    now = max(last_event_ms(s) for s in states) + days_later * DAY
    columns = entry_feature_columns(_entries(states), now)
    assert list(columns) == list(EVENT_FEATURE_SPEC.feature_names)
    for i, state in enumerate(states):
        row = features(state, now)
        for name in EVENT_FEATURE_SPEC.numeric:
            assert _same(row[name], float(columns[name][i])), (i, name)
        for name in EVENT_FEATURE_SPEC.categorical:
            value = columns[name].to_objects()[i]
            assert _same(row[name], None if value is np.nan or value != value else value), (i, name)


def test_a_clock_before_a_customers_last_event_is_raised_to_it():
    state = aggregate_history([Event("e", "c", "purchase", 10 * DAY, amount=5.0)])["c"]
    columns = entry_feature_columns(_entries([state]), now_ms=0)
    assert columns["recency_days"].tolist() == [0.0]
    assert features(state, 0)["recency_days"] == 0.0


def test_no_entries_give_empty_columns():
    columns = entry_feature_columns([], now_ms=0)
    assert all(len(values) == 0 for values in columns.values())


@pytest.fixture(scope="module")
def fitted():
    from model.features import batch_features
    from model.pipeline import build_pipeline
    from model.scoring import SegmentModel

    events = list(synthetic_events(800, seed=5))
    frame = batch_features(events)
    pipe = build_pipeline(EVENT_FEATURE_SPEC, k=4, seed=0).fit(frame)
    return SegmentModel(pipe, EVENT_FEATURE_SPEC, {"model_id": "m"}), aggregate_history(events)


@pytest.mark.parametrize("fast", [True, False], ids=["numpy fast path", "sklearn pipeline"])
def test_scoring_columns_equals_scoring_rows(fitted, fast):
    model, states = fitted
    if not fast:
        model = type(model)(model.pipeline, model.spec, model.manifest)
        model._fast = None
    now = max(last_event_ms(s) for s in states.values()) + 60 * DAY
    columns = entry_feature_columns(_entries(states.values()), now)
    labels, distances, confidence = model.score_columns(columns, len(states), None)
    expected = model.score([features(s, now) for s in states.values()])
    assert labels.tolist() == [a.segment_id for a in expected]
    assert np.allclose(distances, [a.distances for a in expected])
    assert np.allclose(confidence, [a.confidence for a in expected])
    assert len(set(labels.tolist())) > 1
