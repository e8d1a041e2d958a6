"""The drift reference for the stream: what the scorer emits, replayed event by event on a sample.

The streaming scorer publishes one assignment per changed customer per poll batch, so roughly one per
event, each computed over the customer's history SO FAR, as of that event. Training's own distribution
(one row per customer, over its whole history) is not what a healthy stream looks like: customers early
in their lives, with one or two purchases, are over-represented in the stream. Comparing the live window
with the training distribution would therefore report drift on a perfectly stable stream.

So training keeps a seeded sample of whole customers (:class:`CustomerSample`), replays each one's events
in event-time order through the same aggregator, scores the state after every event in one vectorised
call and records the segment shares and the feature histograms of those rows
(:func:`stream_reference`). ``DriftMonitor.from_manifest`` prefers them to the training ones.

>>> from model.events import Event
>>> sample = CustomerSample(max_rows=3, seed=0)
>>> for n, cid in enumerate(["a", "a", "b", "c", "c", "d"]):
...     sample.offer(Event(f"e{n}", cid, "visit", n))
>>> sum(len(events) for events in sample.customers().values()) <= 3
True
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from model.drift import categorical_baseline, numeric_baseline
from model.events import Event
from model.features import features, initialize, last_event_ms, update
from model.scoring import SegmentModel

__all__ = ["STREAM_SAMPLE_ROWS", "CustomerSample", "per_event_rows", "stream_reference"]

STREAM_SAMPLE_ROWS = 100_000
"""Default cap on the sampled events: enough for stable shares, cheap even for a 1M-customer history."""


_GOLDEN = 0x9E3779B1  # Knuth's multiplicative hash: spreads crc32's linear structure over the range


class CustomerSample:
    """A seeded sample of whole customers holding at most ``max_rows`` events, built in one pass.

    Every customer id hashes (with the seed) to a rank; the sample is the customers of lowest rank whose
    events together fit in ``max_rows``. It depends only on the ids, their event counts and the seed,
    never on the order the events arrive in, and it holds no more than about ``max_rows`` events.
    """

    def __init__(self, max_rows: int = STREAM_SAMPLE_ROWS, seed: int = 0) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.max_rows = max_rows
        self._init = zlib.crc32(f"stream-sample:{seed}".encode())
        self._threshold = 1 << 32  # ranks at or above it are out for good
        self._events: dict[str, list[Event]] = {}
        self._heap: list[tuple[int, str]] = []  # (-rank, id): the highest-ranked kept customer on top
        self._rows = 0

    def offer(self, event: Event) -> None:
        """Consider one event (of any customer, in any order)."""
        rank = (zlib.crc32(event.customer_id.encode("utf-8"), self._init) * _GOLDEN) & 0xFFFFFFFF
        if rank >= self._threshold:
            return
        kept = self._events.get(event.customer_id)
        if kept is None:
            kept = self._events[event.customer_id] = []
            heapq.heappush(self._heap, (-rank, event.customer_id))
        kept.append(event)
        self._rows += 1
        while self._rows > self.max_rows:
            negative_rank, evicted = heapq.heappop(self._heap)
            self._rows -= len(self._events.pop(evicted))
            self._threshold = -negative_rank

    def customers(self) -> dict[str, list[Event]]:
        """The sampled customers and all their events (a copy)."""
        return {cid: list(events) for cid, events in self._events.items()}


def per_event_rows(customers: Mapping[str, Sequence[Event]]) -> list[dict]:
    """The feature row after each event of each customer, as the stream scores it.

    Events are replayed in event-time order and every row is as of the customer's latest event so far
    (``features(state, last_event_ms(state))``), the scorer's clock. Events of one customer with the
    same timestamp are one moment and give one row, after all of them: they are produced together
    (a sign-up's profile and first purchase, a day's orders in a daily log), so the scorer sees them
    in one poll batch and emits one assignment for them.
    """
    rows = []
    for events in customers.values():
        ordered = sorted(events, key=lambda e: (e.ts_ms, e.event_id))
        state = initialize()
        for n, event in enumerate(ordered):
            state = update(state, event)
            if n + 1 == len(ordered) or ordered[n + 1].ts_ms != event.ts_ms:
                rows.append(features(state, last_event_ms(state)))
    return rows


def stream_reference(model: SegmentModel, customers: Mapping[str, Sequence[Event]]) -> dict:
    """Manifest fields describing the stream: ``stream_segment_distribution``, ``stream_feature_baselines``
    and ``stream_reference`` (how many customers and rows they summarise). Empty without customers."""
    rows = per_event_rows(customers)
    if not rows:
        return {}
    labels, _, _ = model.score_arrays(rows)
    counts = np.bincount(labels, minlength=model.k)
    spec = model.spec
    baselines = {name: numeric_baseline([row[name] for row in rows]) for name in spec.numeric}
    baselines |= {name: categorical_baseline([row[name] for row in rows]) for name in spec.categorical}
    return {
        "stream_segment_distribution": (counts / counts.sum()).round(4).tolist(),
        "stream_feature_baselines": baselines,
        "stream_reference": {
            "customers": len(customers),
            "events": sum(len(events) for events in customers.values()),
            "rows": len(rows),
        },
    }
