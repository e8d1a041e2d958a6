"""The drift reference for the stream: what the scorer emits, replayed on a sample of customers.

The streaming scorer scores a customer as of its partition's stream time (``model.clock``) when one of
its events arrives, roughly one assignment per event over the customer's history SO FAR; and the
daily ageing ticks re-score quiet customers as stream time moves on, so they drift towards "lapsed".
Training's own rows (every customer as of the end of the history and of each snapshot date) are not
that mix: customers early in their lives, right after a purchase, are far more common in the stream.
Comparing the live window with the training distribution would report drift on a stable stream.

So training keeps a seeded sample of whole customers (:class:`CustomerSample`) and builds rows
of two kinds, scored in one vectorised call, whose segment shares and feature
histograms are the reference (:func:`stream_reference`); ``DriftMonitor.from_manifest`` prefers them
to the training ones:

- **event rows**: each customer's events replayed in event-time order, one row after each moment, as
  of that moment. In a time-ordered replay the stream time at an event is the event's own time, so
  this is what the scorer computes (events of other customers do not move a customer's features).
- **ageing rows**: every sampled customer as of each monthly date (00:00 UTC on the 1st) after its
  first event, and as of the end of the history. This approximates what the daily ticks publish over
  time: a tick re-scores everyone every day, but a customer's segment only changes (and is only
  published) now and then, so one row a month per customer stands for the ticks' share of the output
  without replaying every day. The approximation: the true mix of event and tick outputs depends on
  how often segments change at ticks, which a monthly row per customer only roughly matches.

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
import pandas as pd

from model.drift import categorical_baseline, numeric_baseline
from model.events import Event
from model.features import features, initialize, snapshot_features, update
from model.pipeline import to_frame
from model.scoring import SegmentModel
from training.snapshots import snapshot_times

__all__ = ["STREAM_SAMPLE_ROWS", "CustomerSample", "ageing_rows", "per_event_rows", "stream_reference"]

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

    Events are replayed in event-time order and every row is as of the event's time, the stream time
    of a time-ordered replay. Events of one customer with the same timestamp are one moment and give
    one row, after all of them: they are produced together (a sign-up's profile and first purchase, a
    day's orders in a daily log), so the scorer sees them in one poll batch and emits one assignment.
    """
    rows = []
    for events in customers.values():
        ordered = sorted(events, key=lambda e: (e.ts_ms, e.event_id))
        state = initialize()
        for n, event in enumerate(ordered):
            state = update(state, event)
            if n + 1 == len(ordered) or ordered[n + 1].ts_ms != event.ts_ms:
                rows.append(features(state, event.ts_ms))
    return rows


def ageing_rows(customers: Mapping[str, Sequence[Event]], history_ms: tuple[int, int]) -> pd.DataFrame:
    """Every customer as of each monthly date after its first event and as of the end of the history
    (``history_ms`` = first and latest event time of the whole history), indexed (customer, as_of_ms)."""
    times = snapshot_times(*history_ms, "monthly")
    return snapshot_features((e for events in customers.values() for e in events), times)


def stream_reference(
    model: SegmentModel,
    customers: Mapping[str, Sequence[Event]],
    history_ms: tuple[int, int] | None = None,
) -> dict:
    """Manifest fields describing the stream: ``stream_segment_distribution``, ``stream_feature_baselines``
    and ``stream_reference`` (how many customers, events, event rows and ageing rows they summarise).

    ``history_ms`` is the first and latest event time of the whole history (the ageing rows' span);
    without it there are event rows only. Empty without customers.
    """
    spec = model.spec
    after_events = to_frame(per_event_rows(customers), spec)
    if after_events.empty:
        return {}
    ageing = to_frame(ageing_rows(customers, history_ms), spec) if history_ms else after_events.iloc[:0]
    rows = pd.concat([after_events, ageing.reset_index(drop=True)], ignore_index=True)
    labels, _, _ = model.score_arrays(rows)
    counts = np.bincount(labels, minlength=model.k)
    baselines = {name: numeric_baseline(rows[name].to_numpy(dtype=float)) for name in spec.numeric}
    baselines |= {name: categorical_baseline(rows[name].tolist()) for name in spec.categorical}
    return {
        "stream_segment_distribution": (counts / counts.sum()).round(4).tolist(),
        "stream_feature_baselines": baselines,
        "stream_reference": {
            "customers": len(customers),
            "events": sum(len(events) for events in customers.values()),
            "rows": len(rows),
            "event_rows": len(after_events),
            "ageing_rows": len(ageing),
        },
    }
