"""An ageing tick: every stored customer of one partition re-scored as of a tick boundary, vectorised.

A customer who goes quiet never sends the event that would re-score it, yet its recency grows and
its decayed spend shrinks. When the partition's clock crosses a tick boundary (``model.clock``), the
processor calls :func:`age_partition`: the stored entries are read into feature columns
(``model.feature_columns``) in chunks of ``CHUNK`` customers, scored in one call per chunk (learning
nothing), and every customer whose segment id (``Scorer.score_columns`` returns published ids, as
``last_segment`` holds) differs from the last one published is returned, sorted by customer id so
the output does not depend on the order the store happens to hold them in.
Chunks keep the extra memory of a million-customer tick under ten megabytes, and its matrices small
enough to stay in the CPU caches (``bench/tick_bench.py`` measures both; 65,536-customer chunks
took about 1.5x the time and 50 MB).

With a state TTL, a customer whose last event is at least ``ttl_ms`` before the boundary is returned
as expired instead (the processor writes its tombstones).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from consumer.state_store import Entry
from model.attributes import TableColumns
from model.changelog import entry_columns
from model.feature_columns import features_as_of
from model.features import last_event_ms
from model.scoring import Assignment, Scorer

log = logging.getLogger(__name__)

CHUNK = 8_192  # customers scored per call: 8k x d float64 matrices stay in the CPU caches


@dataclass
class Aged:
    """What one tick changes: customers whose segment moved, and customers past the state TTL."""

    changed: list[tuple[str, Entry, Assignment]] = field(default_factory=list)
    expired: list[tuple[str, Entry]] = field(default_factory=list)
    customers: int = 0  # customers re-scored
    failed: int = 0  # customers of chunks the model refused (left as they were)


def age_partition(
    stored: Mapping[str, bytes],
    pending: Mapping[str, Entry],
    at_ms: int,
    model: Scorer,
    checkpoint: bytes | None,
    ttl_ms: int = 0,
    table: TableColumns | None = None,
    *,
    everyone: bool = False,
) -> Aged:
    """Re-score ``stored`` entries, overridden by the batch's ``pending`` ones, as of ``at_ms``.

    A stored customer the batch has changed is scored from its stale stored entry too (cheaper than
    taking it out of every chunk) but only its pending entry can be returned. ``table``: the model's
    table columns (``model.features.table_columns``), read from each entry beside the aggregator's.
    ``everyone``: return every customer re-scored, not only those whose segment moved (a model change
    with ``--emit-only-on-change`` off publishes them all).
    """
    aged = Aged()
    live = {cid: entry.to_bytes() for cid, entry in pending.items() if last_event_ms(entry.state) >= 0}
    for ids, raws in _chunks(stored):
        _age_chunk(aged, ids, raws, at_ms, model, checkpoint, ttl_ms, table, everyone, superseded=pending)
    for ids, raws in _chunks(live):
        _age_chunk(aged, ids, raws, at_ms, model, checkpoint, ttl_ms, table, everyone, superseded={})
    aged.customers -= sum(map(stored.__contains__, pending))
    aged.changed.sort(key=lambda change: change[0])
    aged.expired.sort(key=lambda gone: gone[0])
    return aged


def _age_chunk(
    aged: Aged, ids: list[str], raws: list[bytes], at_ms: int, model: Scorer, checkpoint: bytes | None,
    ttl_ms: int, table: TableColumns | None, everyone: bool, superseded: Mapping[str, Entry],
) -> None:  # fmt: skip
    """Score one chunk into ``aged``; rows of ``superseded`` customers are left out of its lists."""
    fields, tails = entry_columns(raws)
    aged.customers += len(ids)
    try:
        labels, distances, confidence = model.score_columns(
            features_as_of(fields, tails, at_ms, table), len(ids), checkpoint
        )
    except Exception:  # a tick is not a record: log, leave these customers as they are, go on
        log.exception("ageing tick at %d: the model refused %d customers", at_ms, len(ids))
        aged.failed += len(ids) - sum(map(superseded.__contains__, ids))
        return
    moved = np.ones(len(ids), dtype=bool) if everyone else labels != fields["last_segment"]
    if ttl_ms:
        stale = fields["last_ms"] <= at_ms - ttl_ms
        moved &= ~stale
        aged.expired.extend(
            (ids[i], Entry._trusted(raws[i]))
            for i in np.flatnonzero(stale).tolist()
            if ids[i] not in superseded
        )
    for i in np.flatnonzero(moved).tolist():
        if ids[i] in superseded:
            continue
        segment = int(labels[i])  # a published id, as last_segment is; the distance row is by index
        row = distances[i]
        assignment = Assignment(
            segment, model.segment_name(segment), float(row[model.index_of(segment)]),
            float(confidence[i]), tuple(row.tolist()),
        )  # fmt: skip
        aged.changed.append((ids[i], Entry._trusted(raws[i]), assignment))


def _chunks(entries: Mapping[str, bytes]) -> Iterator[tuple[list[str], list[bytes]]]:
    """``(customer ids, entry bytes)`` in chunks of at most ``CHUNK``, sliced off the mapping's key and
    value iterators (no Python step per customer)."""
    keys, values = iter(entries), iter(entries.values())
    while ids := list(islice(keys, CHUNK)):
        yield ids, list(islice(values, CHUNK))
