"""The records the scorer writes: segment updates, dead letters and changelog entries.

A segment update is one JSON object per changed customer, keyed by customer id on a compacted topic,
so a downstream reader that only wants "the current segment of every customer" reads the topic from
the start and keeps the last value per key.

Dead letters carry the original bytes untouched; why and where from travel in headers, so a fixed
event can be replayed from the dead-letter topic as it was. The one exception keeps the dead letter
producible: a key or value over ``DLQ_MAX_BYTES`` (an oversize event the broker accepted compressed)
is cut to its first ``DLQ_MAX_BYTES`` with ``dlq.truncated=true`` plus ``dlq.original_size`` and
``dlq.sha256`` of the whole value (``dlq.original_key_size`` and ``dlq.key_sha256`` for a key), and
original headers over that size are left out (``dlq.headers_dropped``).

>>> from consumer.backends.abstract import Record
>>> out = dead_letter("dlq", Record("in", 0, 7, b"c1", b"x" * 100_000), "too_large", "too big")
>>> len(out.value), dict(out.headers)["dlq.truncated"], dict(out.headers)["dlq.original_size"]
(65536, b'true', b'100000')
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from consumer.backends.abstract import Headers, Record
from model.events import format_ts

DLQ_REASON = "dlq.reason"
DLQ_ERROR = "dlq.error"
DLQ_TOPIC = "dlq.source.topic"
DLQ_PARTITION = "dlq.source.partition"
DLQ_OFFSET = "dlq.source.offset"
DLQ_MAX_BYTES = 65_536  # the largest valid event; far below any producer's record limit


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce. ``partition=None`` lets the producer pick by key."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None


def segment_update(
    *,
    customer_id: str,
    assignment,
    previous_segment: int | None,
    model_id: str,
    schema_hash: str,
    event_time_ms: int,
    as_of_ms: int,
    reason: str,
    scored_at: str,
    source: Record | None,
) -> dict:
    """The JSON body of one segment update (see the README's output contract).

    ``reason`` is ``event`` (the customer's own event) or ``ageing`` (a tick re-scored it);
    ``as_of`` is the clock time its features were computed at. ``scored_at`` is :func:`wall_time` of
    the batch, formatted once for all its updates; it is the one field a replay does not reproduce.
    ``source`` is the record that caused the update (for a tick: the record whose time crossed the
    boundary; ``None`` for a wall-clock tick).
    """
    return {
        "customer_id": customer_id,
        "segment_id": assignment.segment_id,
        "segment_name": assignment.segment_name,
        "previous_segment_id": previous_segment,
        "changed": previous_segment != assignment.segment_id,
        "distance": round(assignment.distance, 6),
        "confidence": round(assignment.confidence, 6),
        "model_id": model_id,
        "schema_hash": schema_hash,
        "event_time": format_ts(event_time_ms),
        "as_of": format_ts(as_of_ms),
        "reason": reason,
        "scored_at": scored_at,
        "source": None
        if source is None
        else {"topic": source.topic, "partition": source.partition, "offset": source.offset},
    }


def wall_time(seconds: float) -> str:
    """A wall-clock time in seconds as ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


# Built once: ``json.dumps`` with keyword arguments builds a new encoder on every call.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_json(body: dict) -> bytes:
    """Strict JSON: a NaN or infinite float (not valid JSON) becomes ``null``, never ``NaN``.

    >>> encode_json({"distance": float("nan"), "d": [1.5, float("-inf")]})
    b'{"distance":null,"d":[1.5,null]}'
    >>> import numpy as np  # the model's distances are numpy floats
    >>> encode_json({"n": np.float64(0.25), "id": "caf\u00e9"})
    b'{"n":0.25,"id":"caf\xc3\xa9"}'
    """
    try:  # orjson writes the same compact UTF-8 JSON, NaN as null, several times faster
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # what it does not take (a float subclass, a lone surrogate) goes the slow way
        pass
    try:
        return _JSON.encode(body).encode("utf-8")
    except ValueError:  # "Out of range float values are not JSON compliant": rare, so checked late
        return _JSON.encode(_finite(body)).encode("utf-8")


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dead_letter(topic: str, record: Record, reason: str, message: str) -> Output:
    """The original record with the reason and its origin in headers (cut if too big to produce)."""
    headers = record.headers
    if sum(len(k) + len(v or b"") for k, v in headers) > DLQ_MAX_BYTES:
        headers = (("dlq.headers_dropped", str(len(headers)).encode()),)
    headers = (
        *headers,
        (DLQ_REASON, reason.encode()),
        (DLQ_ERROR, message.encode("utf-8", "replace")[:1000]),
        (DLQ_TOPIC, record.topic.encode()),
        (DLQ_PARTITION, str(record.partition).encode()),
        (DLQ_OFFSET, str(record.offset).encode()),
    )
    key, value = record.key, record.value
    if len(value or b"") > DLQ_MAX_BYTES:
        headers += _cut_headers("", value)
        value = value[:DLQ_MAX_BYTES]
    if len(key or b"") > DLQ_MAX_BYTES:
        headers += _cut_headers("key_", key)
        key = key[:DLQ_MAX_BYTES]
    return Output(topic, key, value, headers)


def _cut_headers(prefix: str, whole: bytes) -> Headers:
    """What a dead letter says about a value (or, with ``key_``, a key) it had to cut."""
    return (
        ("dlq.truncated", b"true"),
        (f"dlq.original_{prefix}size", str(len(whole)).encode()),
        (f"dlq.{prefix}sha256", hashlib.sha256(whole).hexdigest().encode()),
    )
