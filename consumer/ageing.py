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

Given the partition's :class:`~consumer.tick_schedule.TickSchedule`, a tick re-scores only the
customers it names as due (everyone, the first time) and files each re-scored customer who stayed
in its segment under the time it provably stays there (``model.horizon``), so a quiet customer far
from any other segment is re-scored every few weeks, not every day, with the same output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from consumer.state_store import Entry
from consumer.tick_schedule import HORIZONS_MS, TickSchedule
from model.attributes import TableColumns
from model.changelog import entry_columns
from model.feature_columns import at_times, features_as_of
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
    skipped: int = 0  # stored customers the schedule proved still in their segment (not re-scored)
    failed: int = 0  # customers of chunks the model refused (left as they were)
    # (customers, safe-until ms) for the schedule; None once the model cannot prove horizons
    filed: tuple[list[str], list[np.ndarray]] | None = None


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
    schedule: TickSchedule | None = None,
    model_key: bytes = b"",
    pending_safe: dict[str, int] | None = None,
) -> Aged:
    """Re-score ``stored`` entries, overridden by the batch's ``pending`` ones, as of ``at_ms``.

    When everyone is re-scored, a stored customer the batch has changed is scored from its stale
    stored entry too (cheaper than taking it out of every chunk), but only its pending entry can be
    returned; a scheduled tick leaves such a customer out and files it as due again. ``table``: the model's
    table columns (``model.features.table_columns``), read from each entry beside the aggregator's.
    ``everyone``: return every customer re-scored, not only those whose segment moved (a model change
    with ``--emit-only-on-change`` off publishes them all). ``schedule``: re-score only the customers
    it names as due for the model ``model_key``, and file the re-scored ones (module docstring).
    ``pending_safe``: the same for the batch's ``pending`` entries, kept by the batch alone (customer
    -> safe-until ms; the processor drops a customer from it when the batch changes its entry).
    """
    aged = Aged(filed=([], []) if schedule is not None or pending_safe is not None else None)
    due, keys = schedule.due(stored, at_ms, model_key) if schedule is not None else (None, None)
    live = _live(aged, pending, at_ms, {} if pending_safe is None else pending_safe)
    if due is None:  # everyone: the store as it is, in chunks sliced off it, then the batch's entries
        for ids, raws in _chunks(stored):
            _age_chunk(aged, ids, raws, at_ms, model, checkpoint, ttl_ms, table, everyone, pending)
        aged.customers -= sum(map(stored.__contains__, pending))
        first = len(aged.filed[0]) if aged.filed is not None else 0
        superseded: list[str] = []
    else:  # the due customers the batch has not changed, and the batch's entries, in the same chunks
        aged.skipped += len(stored) - len(due)
        fresh = [customer for customer in due if customer not in pending]
        superseded = [customer for customer in due if customer in pending]
        stored = {customer: stored[customer] for customer in fresh}
        first = len(fresh)
    for ids, raws in _chunks({**stored, **live} if due is not None else live):
        _age_chunk(aged, ids, raws, at_ms, model, checkpoint, ttl_ms, table, everyone, {})
    _settle(aged, first, superseded, at_ms, schedule, keys, model_key, pending_safe)
    aged.changed.sort(key=lambda change: change[0])
    aged.expired.sort(key=lambda gone: gone[0])
    return aged


def _live(aged: Aged, pending: Mapping[str, Entry], at_ms: int, safe: Mapping[str, int]) -> dict[str, bytes]:
    """The batch's entries this tick must score: not erased or expired, and not proved still in their
    segment by an earlier tick of the same batch (``safe``)."""
    live: dict[str, bytes] = {}
    for customer, entry in pending.items():
        if safe.get(customer, -1) >= at_ms:  # proved: never an erased or expired entry
            aged.skipped += 1
        elif last_event_ms(entry.state) >= 0:
            live[customer] = entry.to_bytes()
    return live


def _settle(
    aged: Aged, first: int, superseded: list[str], at_ms: int, schedule: TickSchedule | None,
    keys: list[int] | None, model_key: bytes, pending_safe: dict[str, int] | None,
) -> None:  # fmt: skip
    """Hand what the tick proved to the schedule (the first ``first`` customers filed: stored entries;
    ``superseded`` ones were due but are being replaced by the batch, so due again at once) and to the
    batch's own ``pending_safe`` (the rest)."""
    if aged.filed is None:  # the model proves nothing: the schedule forgets, every tick is everyone
        if schedule is not None:
            schedule.settle(keys, [], np.zeros(0, dtype=np.int64), None)
        return
    customers, until = aged.filed
    safe = np.concatenate(until) if until else np.zeros(0, dtype=np.int64)
    if pending_safe is not None:
        pending_safe.update(zip(customers[first:], safe[first:].tolist(), strict=True))
    if schedule is not None:
        stored = customers[:first] + superseded
        until_stored = np.concatenate([safe[:first], np.full(len(superseded), at_ms - 1, dtype=np.int64)])
        schedule.settle(keys, stored, until_stored, model_key)


def _age_chunk(
    aged: Aged, ids: list[str], raws: list[bytes], at_ms: int, model: Scorer, checkpoint: bytes | None,
    ttl_ms: int, table: TableColumns | None, everyone: bool, superseded: Mapping[str, Entry],
) -> None:  # fmt: skip
    """Score one chunk into ``aged``; rows of ``superseded`` customers are left out of its lists.
    Notes how long each customer of the chunk keeps its segment in ``aged.filed``."""
    fields, tails = entry_columns(raws)
    aged.customers += len(ids)
    columns = features_as_of(fields, tails, at_ms, table)
    try:
        labels, distances, confidence = model.score_columns(columns, len(ids), checkpoint)
    except Exception:  # a tick is not a record: log, leave these customers as they are, go on
        log.exception("ageing tick at %d: the model refused %d customers", at_ms, len(ids))
        aged.failed += len(ids) - sum(map(superseded.__contains__, ids))
        if aged.filed is not None:
            _file(aged, ids, np.full(len(ids), at_ms - 1, dtype=np.int64), superseded)
        return
    moved = np.ones(len(ids), dtype=bool) if everyone else labels != fields["last_segment"]
    stale = np.zeros(len(ids), dtype=bool)
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
    if aged.filed is not None:
        kept = ~moved & ~stale & (labels == fields["last_segment"])
        _file(aged, ids, _safe_until(model, columns, fields, labels, kept, at_ms, ttl_ms), superseded)


def _safe_until(
    model: Scorer, columns: dict, fields: np.ndarray, labels: np.ndarray, kept: np.ndarray, at_ms: int,
    ttl_ms: int,
) -> np.ndarray | None:  # fmt: skip
    """Until when each customer of the chunk provably keeps its segment: the longest of
    ``HORIZONS_MS`` the model proves for the ``kept`` rows, ``at_ms - 1`` (due again at once) for the
    rest and for rows it cannot prove; ``None`` when the model cannot prove horizons at all."""
    safe = np.full(len(labels), at_ms - 1, dtype=np.int64)
    if not kept.any():
        return safe
    spans = list(HORIZONS_MS)  # longest first: each row keeps the longest span it is proved for
    holds = model.keeps_segments(
        columns, at_times(columns, fields, [at_ms + span for span in spans]), len(labels), labels
    )
    if holds is None:
        return None
    for span, held in zip(reversed(spans), reversed(holds), strict=True):
        safe[kept & held] = at_ms + span
    if ttl_ms:  # expiring is a change too: due at the first tick that may expire it
        safe = np.minimum(safe, fields["last_ms"] + ttl_ms - 1)
    return safe


def _file(aged: Aged, ids: list[str], safe: np.ndarray | None, superseded: Mapping[str, Entry]) -> None:
    """Note the chunk's customers for the schedule (a superseded one is due at once: its stored entry,
    the one scored here, is about to be replaced, or stays if the batch is redone)."""
    if safe is None:
        aged.filed = None
        return
    if superseded:
        safe = safe.copy()
        for i in [i for i, customer in enumerate(ids) if customer in superseded]:
            safe[i] = -1
    customers, until = aged.filed
    customers.extend(ids)
    until.append(safe)


def _chunks(entries: Mapping[str, bytes]) -> Iterator[tuple[list[str], list[bytes]]]:
    """``(customer ids, entry bytes)`` in chunks of at most ``CHUNK``, sliced off the mapping's key and
    value iterators (no Python step per customer)."""
    keys, values = iter(entries), iter(entries.values())
    while ids := list(islice(keys, CHUNK)):
        yield ids, list(islice(values, CHUNK))
