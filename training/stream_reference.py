"""The drift reference for the stream: what the scorer's drift monitor sees, replayed on a sample.

The streaming scorer scores a customer as of its partition's **stream time** (``model.clock``) when
one of its events arrives: roughly one row per event, over the customer's history SO FAR. Those event
rows are what the live drift monitor observes (``consumer/telemetry.py`` feeds it ``result.scored``).
Training's own rows (every customer as of the end of the history and of each snapshot date) are not
that mix: the stream scores customers right after they buy, training mostly long after. Comparing the
live window with the training distribution would report drift on a stable stream.

So training keeps a seeded sample of whole customers (:class:`CustomerSample`), replays each one's
events in event-time order through the same aggregator, scores the row after every event as of that
event's time in one vectorised call, and records the segment shares and feature histograms of those rows
(:func:`stream_reference`); ``DriftMonitor.from_manifest`` prefers them to the training ones. In a
time-ordered replay the stream time at an event is the event's own time, so each row is as of its
event's time (events of other customers move the clock, not this customer's features).

No ageing rows: the daily ticks re-score quiet customers, and the ones whose segment moves are
published (``"reason": "ageing"``), but the drift monitor does not observe them. Adding rows as of
monthly dates to approximate them (tried: one row per sampled customer per month) made a replay of
the training history itself an alert (recency PSI 0.96 on the scorer's drift test), so the reference
describes the event rows only. If the monitor ever observes ageing updates, the reference must add
them too (``model.features.snapshot_features`` computes such rows).

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
from model.features import features, initialize, update
from model.pipeline import to_frame
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

    Events are replayed in event-time order (ties by event id) and every row is as of the event's
    time, the stream time of a time-ordered replay. Every event gives a row, even one at the same
    time as the next: the scorer scores every valid event (``consumer.processor``), so that its output
    does not depend on how records were cut into poll batches.
    """
    rows = []
    for events in customers.values():
        state = initialize()
        for event in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
            state = update(state, event)
            rows.append(features(state, event.ts_ms))
    return rows


def stream_reference(model: SegmentModel, customers: Mapping[str, Sequence[Event]]) -> dict:
    """Manifest fields describing the stream: ``stream_segment_distribution``, ``stream_feature_baselines``
    and ``stream_reference`` (how many customers, events and rows they summarise). Empty without
    customers."""
    spec = model.spec
    rows = to_frame(per_event_rows(customers), spec)
    if rows.empty:
        return {}
    labels, _, _ = model.score_arrays(rows)
    counts = np.bincount(model.indices_of(labels), minlength=model.k)  # by cluster index, as the manifest
    baselines = {name: numeric_baseline(rows[name].to_numpy(dtype=float)) for name in spec.numeric}
    baselines |= {name: categorical_baseline(rows[name].tolist()) for name in spec.categorical}
    return {
        "stream_segment_distribution": (counts / counts.sum()).round(4).tolist(),
        "stream_feature_baselines": baselines,
        "stream_reference": {
            "customers": len(customers),
            "events": sum(len(events) for events in customers.values()),
            "rows": len(rows),
        },
    }
