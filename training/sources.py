"""Where training data comes from: events (CDNOW, a JSONL file) or a customer table (CSV + spec).

Every source ends as the same thing: a feature frame (one row per customer, or for events one row per
customer and reference time), the spec declaring its columns, the ids held out from fitting (all rows
of a customer are on the same side), and a description for the manifest. Event sources compute their
features with ``model.features.snapshot_features``, the streaming aggregator, as of the end of the
history and of periodic snapshot dates (``training.snapshots``): the clock the stream scores with is
its stream time, and ageing ticks move quiet customers on, so training sees customers at every stage
of their lives as the stream does. Event sources also keep a seeded sample of whole customers
(``stream_sample``) from which training derives the drift reference the stream is compared with
(``training.stream_reference``); a customer table has no clock, no events and no such sample.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from model.clock import format_duration
from model.events import Event
from model.features import EVENT_FEATURE_SPEC, snapshot_features
from model.spec import FeatureSpec
from training.snapshots import DEFAULT_SNAPSHOTS, Snapshots, describe_times, snapshot_times
from training.stream_reference import STREAM_SAMPLE_ROWS, CustomerSample

logger = logging.getLogger(__name__)

MAX_SNAPSHOTS = 120
"""At most this many snapshot dates: every one adds a row per customer (10 years of monthly ones)."""

__all__ = [
    "MAX_SNAPSHOTS",
    "TrainingData",
    "customer_ids",
    "from_events",
    "load_cdnow",
    "load_events_file",
    "load_table",
    "random_holdout",
    "read_spec",
]


@dataclass
class TrainingData:
    """A feature frame, its spec, held-out ids, a description, and for event sources a sample of whole
    customers' events and the history's span (``None`` for a customer table).

    The frame's index is the customer id (a table), or (customer id, ``as_of_ms``) for events: one row
    per customer and reference time. :func:`customer_ids` reads the ids of either.
    """

    frame: pd.DataFrame
    spec: FeatureSpec
    holdout_ids: set[str] = field(default_factory=set)
    description: dict = field(default_factory=dict)
    stream_sample: dict[str, list[Event]] | None = None
    history_ms: tuple[int, int] | None = None  # first and latest event time


def customer_ids(frame: pd.DataFrame) -> pd.Index:
    """The customer id of every row (the first index level)."""
    return frame.index.get_level_values(0)


class _Counter:
    """Passes events through while noting how many there were and the time span they cover, and
    offering each to the customer sample."""

    def __init__(self, events: Iterable[Event], sample: CustomerSample) -> None:
        self.events, self.sample, self.count, self.first, self.last = events, sample, 0, None, None

    def __iter__(self) -> Iterator[Event]:
        offer = self.sample.offer
        for event in self.events:
            self.count += 1
            offer(event)
            self.first = event.ts_ms if self.first is None else min(self.first, event.ts_ms)
            self.last = event.ts_ms if self.last is None else max(self.last, event.ts_ms)
            yield event


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def from_events(
    events: Iterable[Event],
    source: str,
    holdout_ids: set[str] | None = None,
    *,
    seed: int = 0,
    stream_sample_rows: int = STREAM_SAMPLE_ROWS,
    snapshots: Snapshots = DEFAULT_SNAPSHOTS,
) -> TrainingData:
    """Aggregate events into feature rows as of the end of the history and each snapshot date.

    ``snapshots`` is ``"monthly"``, a period in ms, or 0 (end of history only); see
    ``training.snapshots``. ``seed`` and ``stream_sample_rows`` choose the sample of whole customers
    (at most that many events) kept for the stream drift reference. More than ``MAX_SNAPSHOTS``
    snapshot dates raise ``ValueError``.
    """
    counter = _Counter(events, CustomerSample(stream_sample_rows, seed))
    history = list(tqdm(counter, desc="reading events", unit=" events", mininterval=1.0))
    times = [] if counter.last is None else snapshot_times(counter.first, counter.last, snapshots)
    shown = snapshots if snapshots == "monthly" else format_duration(snapshots)
    if len(times) - 1 > MAX_SNAPSHOTS:
        raise ValueError(
            f"--snapshots {shown} gives "
            f"{len(times) - 1} snapshot dates over {_iso(counter.first)} .. {_iso(counter.last)}; at most "
            f"{MAX_SNAPSHOTS} (each adds a row per customer): choose a longer period"
        )
    frame = snapshot_features(history, times)
    description = {
        "source": source,
        "events": counter.count,
        "customers": int(customer_ids(frame).nunique()),
        "rows": len(frame),
        "history_start": _iso(counter.first),
        "history_end": _iso(counter.last),
        "snapshots": shown,
        "features_as_of": describe_times(times, snapshots) if times else "no events",
    }
    sample = counter.sample.customers()
    span = None if counter.last is None else (counter.first, counter.last)
    return TrainingData(frame, EVENT_FEATURE_SPEC, set(holdout_ids or ()), description, sample, span)


def random_holdout(ids: Iterable[str], share: float, seed: int) -> set[str]:
    """A seeded random ``share`` of ``ids`` (sorted first, so the order ids arrive in does not matter)."""
    ordered = sorted(ids)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(ordered), round(share * len(ordered)), replace=False)
    return {ordered[i] for i in chosen}


def load_cdnow(seed: int = 0, snapshots: Snapshots = DEFAULT_SNAPSHOTS) -> TrainingData:
    """CDNOW purchases as events; the CDNOW sample customers are the held-out set."""
    from training.datasets import cdnow_events, cdnow_holdout_ids

    return from_events(cdnow_events(), "cdnow", cdnow_holdout_ids(), seed=seed, snapshots=snapshots)


def load_events_file(
    path: str | Path,
    holdout_share: float,
    seed: int,
    max_invalid_share: float = 0.01,
    snapshots: Snapshots = DEFAULT_SNAPSHOTS,
) -> TrainingData:
    """Events from a JSONL file; a seeded random ``holdout_share`` of its customers is held out.

    Invalid lines (the events the stream would dead-letter) are skipped and counted by reason in
    ``description["invalid_events"]``; more than ``max_invalid_share`` of the lines raises
    ``TooManyInvalidEventsError``, and a file without a single valid event a ``ValueError`` ("0 rows").
    """
    from training.datasets import InvalidLines, read_events_jsonl

    invalid = InvalidLines(max_invalid_share)
    data = from_events(read_events_jsonl(path, invalid=invalid), str(path), seed=seed, snapshots=snapshots)
    if data.frame.empty:
        skipped = f", {invalid.skipped:,} of its {invalid.lines:,} lines invalid" if invalid.lines else ""
        raise ValueError(f"{path} holds 0 rows of valid events{skipped}: nothing to train on")
    data.description["invalid_events"] = invalid.describe()
    data.holdout_ids = random_holdout(customer_ids(data.frame).unique(), holdout_share, seed)
    return data


DELIMITERS = (",", ";", "\t", "|")


def _header(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return lines.readline().rstrip("\r\n")


def _delimiter(header: str, columns: list[str]) -> str:
    """The delimiter among ``DELIMITERS`` that splits ``header`` into the most declared columns.

    >>> _delimiter("id;orders;plan", ["id", "orders", "plan"])
    ';'
    >>> _delimiter("id,orders", ["id", "orders", "plan"])
    ','
    >>> _delimiter("", ["id"])
    ','
    """
    wanted = set(columns)

    def found(sep: str) -> int:
        return len(wanted & {name.strip().strip('"') for name in header.split(sep)})

    return max(DELIMITERS, key=lambda sep: (found(sep), sep == ","))


def read_spec(path: str | Path) -> FeatureSpec:
    """The FeatureSpec in a JSON file, read strictly; ``ValueError`` naming the file and the problem
    (not JSON, an unknown key with the closest valid one, a wrong type, contradicting columns)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"feature spec {path} is not JSON: {exc}") from exc
    try:
        return FeatureSpec.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_table(csv_path: str | Path, spec_path: str | Path, holdout_share: float, seed: int) -> TrainingData:
    """A customer table (one row per customer) declared by a FeatureSpec JSON file (:func:`read_spec`).

    The delimiter (comma, semicolon, tab or ``|``) is the one that splits the header line into the
    most declared columns. Raises ``ValueError`` naming the file: empty, 0 rows, columns missing.
    """
    spec = read_spec(spec_path)
    dtypes = {spec.id_column: str} | {name: str for name in spec.categorical}
    declared = [spec.id_column, *spec.feature_names]
    header = _header(Path(csv_path))
    sep = _delimiter(header, declared)
    if sep != ",":
        logger.info("%s: reading columns separated by %r", csv_path, sep)
    try:
        table = pd.read_csv(csv_path, dtype=dtypes, keep_default_na=True, sep=sep)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{csv_path} is empty: no header line and no rows") from None
    missing = [c for c in declared if c not in table.columns]
    if missing:
        raise ValueError(
            f"{csv_path} lacks the columns {missing} declared in {spec_path} (its header line is "
            f"{header[:100]!r}; columns may be separated by {' '.join(map(repr, DELIMITERS))})"
        )
    if table.empty:
        raise ValueError(f"{csv_path} has 0 rows (a header line and nothing under it)")
    duplicated = table[spec.id_column][table[spec.id_column].duplicated()].unique()[:5].tolist()
    if duplicated:
        raise ValueError(f"{csv_path}: {spec.id_column!r} must be unique per row; repeated: {duplicated}")
    frame = table.set_index(spec.id_column)[list(spec.feature_names)]
    for name in spec.numeric:
        converted = pd.to_numeric(frame[name], errors="coerce")
        bad = frame[name][converted.isna() & frame[name].notna()].unique()[:3].tolist()
        if bad:
            raise ValueError(f"{csv_path}: numeric column {name!r} holds non-numbers such as {bad}")
        frame[name] = converted.astype(float)
    description = {"source": str(csv_path), "spec_file": str(spec_path), "customers": len(frame)}
    return TrainingData(frame, spec, random_holdout(frame.index, holdout_share, seed), description)
