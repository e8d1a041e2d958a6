"""The web API gives a customer the same segment as the streaming scorer, for the same features."""

from __future__ import annotations

import json

import pytest

from consumer.backends.abstract import Record
from consumer.processor import Processor, Topics
from consumer.state_store import StateStore
from model.artifact import load_artifact
from model.events import Event, encode_event
from model.synthetic import synthetic_events

DAY_MS = 86_400_000


def _records(events: list[Event], topic: str) -> list[Record]:
    ordered = sorted(events, key=lambda e: (e.ts_ms, e.event_id))
    return [
        Record(topic, 0, offset, e.customer_id.encode(), encode_event(e)) for offset, e in enumerate(ordered)
    ]


BASE_MS = 850_000_000_000


def _shopper_events() -> list[Event]:
    """A hand-made customer: purchases over a year, a visit and a refund."""
    events = [
        Event(f"p{i}", "shopper-1", "purchase", BASE_MS + day * DAY_MS, amount=amount, quantity=1)
        for i, (day, amount) in enumerate([(0, 35.0), (40, 12.5), (95, 80.0), (300, 22.0), (351, 49.9)])
    ]
    events.append(Event("v1", "shopper-1", "visit", BASE_MS + 352 * DAY_MS))
    events.append(Event("r1", "shopper-1", "refund", BASE_MS + 353 * DAY_MS, amount=12.5))
    return events


def _lapsed_events() -> list[Event]:
    """One small purchase, then only a visit a year and a half later: the stream's clock moves on."""
    return [
        Event("l1", "lapsed-1", "purchase", BASE_MS, amount=8.0, quantity=1),
        Event("l2", "lapsed-1", "visit", BASE_MS + 520 * DAY_MS),
    ]


def _stream(model, events: list[Event]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Run the streaming processor; return {customer: features it scored} and {customer: the update of
    that scoring}. Ageing updates (a tick re-scoring a quiet customer as stream time moves on, here as
    the synthetic customers' 2020s events pass) are left out: they are not of those features."""
    topics = Topics()
    processor = Processor(StateStore(), lambda: model, topics)
    result = processor.process(_records(events, topics.input))
    features = {s.customer_id: s.features for s in result.scored}
    updates = {}
    for output in result.outputs:
        if output.topic == topics.output:
            body = json.loads(output.value)
            if body["reason"] != "ageing":
                updates[body["customer_id"]] = body
    return features, updates


@pytest.fixture(scope="module")
def stream_model(model_dir):
    return load_artifact(model_dir)


def test_web_result_equals_the_streaming_scorers(client, stream_model):
    events = _shopper_events() + _lapsed_events() + list(synthetic_events(40, seed=3))
    features, updates = _stream(stream_model, events)
    assert len(features) == 42
    assert set(updates) == set(features)
    customers = [{"customer_id": cid, **row} for cid, row in features.items()]
    response = client.post("/api/v1/score", json={"customers": customers})
    assert response.status_code == 200, response.get_json()
    web = {r["customer_id"]: r for r in response.get_json()["results"]}
    segments_seen = set()
    for customer_id, update in updates.items():
        assert web[customer_id]["segment_id"] == update["segment_id"], customer_id
        assert web[customer_id]["segment_name"] == update["segment_name"]
        assert web[customer_id]["distance"] == pytest.approx(update["distance"], abs=1e-6)
        assert web[customer_id]["confidence"] == pytest.approx(update["confidence"], abs=1e-6)
        segments_seen.add(update["segment_id"])
    assert len(segments_seen) >= 2, "the customers should not all share one segment"


def test_the_form_shows_the_streaming_scorers_segment(client, stream_model):
    features, updates = _stream(stream_model, _shopper_events())
    row = features["shopper-1"]
    data = {name: "" if value is None else repr(value) for name, value in row.items()}
    page = client.post("/", data=data).data.decode()
    assert f'id="segment-name">{updates["shopper-1"]["segment_name"]}<' in page
    assert f'id="segment-distance">{updates["shopper-1"]["distance"]:.3f}<' in page
