"""What both peers (``bench.quix_peer``, ``bench.bytewax_peer``) do with one customer after folding an
event: score its one row with the same model and encode the segment update they publish."""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.outputs import encode_json
from model.events import format_ts
from model.features import features, last_event_ms


def peer_update(model, schema_hash: str, customer_id: str, customer: bytes) -> bytes:
    """The segment update JSON for ``customer`` (its state after the event), as of its last event."""
    at = last_event_ms(customer)
    assignment = model.score([features(customer, at)])[0]
    body = {
        "customer_id": customer_id,
        "segment_id": assignment.segment_id,
        "segment_name": assignment.segment_name,
        "distance": round(assignment.distance, 6),
        "confidence": round(assignment.confidence, 6),
        "model_id": model.model_id,
        "schema_hash": schema_hash,
        "event_time": format_ts(at),
        "scored_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return encode_json(body)
