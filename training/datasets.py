"""Where training histories come from: the real CDNOW log, and JSON-lines event files.

CDNOW (69,659 purchases by 23,570 customers, 1997-01 to 1998-06) ships as data files inside the PyPI
package ``lifetimes``; it is located through ``importlib.metadata`` and never imported. Rows become
purchase events ``cdnow-<master id>`` at midnight UTC of their date. A ``dollar_value`` of 0 stays a
purchase of amount 0 (80 rows: the CDs were bought, at no charge).

Bad lines in a JSON-lines file are reported with their line numbers: by default the first one raises
``InvalidEvent`` whose problem starts with ``line N of PATH``; pass ``errors=[]`` to collect every bad
line as a ``BadLine`` and keep the good events, or ``invalid=InvalidLines(max_share)`` to skip and count
them by reason (the reasons the stream dead-letters the same events with) and raise
``TooManyInvalidEventsError`` once more than ``max_share`` of the file's lines are bad:

>>> tally = InvalidLines(max_share=0.5)
>>> tally.add(InvalidEvent("$", "is not JSON", "x", reason="not_json"))
>>> tally.lines = 4
>>> tally.describe()
{'lines': 4, 'skipped': 1, 'by_reason': {'not_json': 1}}
>>> tally.counts()
'not_json 1'
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model.errors import ConfigError, InvalidEvent
from model.events import Event, decode_event, encode_event

__all__ = [
    "BadLine",
    "InvalidLines",
    "TooManyInvalidEventsError",
    "cdnow_events",
    "cdnow_holdout_ids",
    "cdnow_path",
    "read_events_jsonl",
    "write_events_jsonl",
]

log = logging.getLogger(__name__)

CDNOW_MASTER = "CDNOW_master.txt"
CDNOW_SAMPLE = "CDNOW_sample.txt"


@dataclass(frozen=True)
class BadLine:
    """One line of an event file that did not decode."""

    line_number: int
    error: InvalidEvent


class TooManyInvalidEventsError(ValueError):
    """More of an event file's lines are invalid than ``InvalidLines.max_share`` allows."""


@dataclass
class InvalidLines:
    """The invalid lines of an event file, skipped and counted by reason (``InvalidEvent.reason``).

    ``lines`` counts the non-blank lines read; ``total``, when known before reading (a regular file),
    lets reading stop as soon as the share is certain to be exceeded instead of at the end.
    """

    max_share: float = 0.01
    lines: int = 0
    total: int | None = None
    by_reason: Counter = field(default_factory=Counter)
    first: InvalidEvent | None = None

    @property
    def skipped(self) -> int:
        return sum(self.by_reason.values())

    def add(self, error: InvalidEvent) -> None:
        self.by_reason[error.reason] += 1
        self.first = self.first or error

    def counts(self) -> str:
        """``reason count`` pairs, most frequent first."""
        return ", ".join(f"{reason} {n:,}" for reason, n in self.by_reason.most_common())

    def describe(self) -> dict:
        """For the manifest and the report: lines read, lines skipped, skipped lines by reason."""
        return {"lines": self.lines, "skipped": self.skipped, "by_reason": dict(self.by_reason.most_common())}

    def check(self, path: Path, *, final: bool) -> None:
        """Raise ``TooManyInvalidEventsError`` once the share of invalid lines is over ``max_share``."""
        lines = self.lines if final else self.total
        if lines is None or self.skipped <= self.max_share * lines:
            return
        counted = f"{'' if final else 'at least '}{self.skipped:,} of {lines:,}"
        raise TooManyInvalidEventsError(
            f"{path}: {counted} lines are invalid events ({self.skipped / lines:.2%}), more than "
            f"--max-invalid-share {100 * self.max_share:g}% allows: {self.counts()}; the first: "
            f"{self.first.problem if self.first else '?'}"
        )


def _count_lines(path: Path) -> int | None:
    """Non-blank lines of a regular file (``None`` for a pipe or a device, which can be read once)."""
    if not path.is_file():
        return None
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def cdnow_path(name: str = CDNOW_MASTER) -> Path:
    """The path of a data file shipped in the ``lifetimes`` package (``CDNOW_master.txt`` by default)."""
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "the CDNOW data files come with the PyPI package 'lifetimes', which is not installed: "
            "run `pip install --no-deps lifetimes`"
        ) from None
    path = Path(str(dist.locate_file(f"lifetimes/datasets/{name}")))
    if not path.is_file():
        raise ConfigError(f"'lifetimes' is installed but has no datasets/{name} (looked at {path})")
    return path


def cdnow_events() -> Iterator[Event]:
    """Every CDNOW purchase as an ``Event``, in file order (customer, then date).

    Event ids ``cdnow-<id>-<YYYYMMDD>-<n>`` are deterministic: ``n`` counts the customer's earlier rows
    on the same day (1,774 same-day repeats exist).
    """
    path = cdnow_path(CDNOW_MASTER)
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="ascii") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts or parts[0] == "customer_id":
                continue
            yield _cdnow_event(parts, number, path, seen)


def _cdnow_event(parts: list[str], number: int, path: Path, seen: dict[tuple[str, str], int]) -> Event:
    try:
        raw_id, date, cds, dollars = parts
        ts = datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC)
        quantity, amount = int(cds), float(dollars)
    except ValueError as exc:
        raise ConfigError(
            f"{path} line {number} is not 'id YYYYMMDD cds dollars': {parts!r} ({exc})"
        ) from None
    customer = f"cdnow-{int(raw_id)}"
    n = seen.get((customer, date), 0)
    seen[(customer, date)] = n + 1
    return Event(
        event_id=f"{customer}-{date}-{n}",
        customer_id=customer,
        type="purchase",
        ts_ms=int(ts.timestamp()) * 1000,
        amount=amount,
        quantity=quantity,
    )


def cdnow_holdout_ids() -> set[str]:
    """The customer ids (``cdnow-<master id>``) of the 2,357 customers in ``CDNOW_sample.txt``."""
    with cdnow_path(CDNOW_SAMPLE).open(encoding="ascii") as lines:
        return {
            f"cdnow-{int(line.split()[0])}" for line in lines if line.split() and line.split()[0].isdigit()
        }


def read_events_jsonl(
    path: str | Path,
    *,
    errors: list[BadLine] | None = None,
    invalid: InvalidLines | None = None,
    **decode_options,
) -> Iterator[Event]:
    """Decode one event per line of ``path`` (blank lines skipped).

    Parameters
    ----------
    path : str or Path
        A UTF-8 JSON-lines file.
    errors : list of BadLine, optional
        When given, bad lines are appended to it and skipped.
    invalid : InvalidLines, optional
        When given, bad lines are counted in it by reason and skipped until more than its
        ``max_share`` of the lines are bad (``TooManyInvalidEventsError``). With neither ``errors`` nor
        ``invalid``, the first bad line raises its ``InvalidEvent``.
    **decode_options
        Passed to ``decode_event`` (``max_future_ms``, ``now_ms``).
    """
    path = Path(path)
    skipped = 0
    if invalid is not None:
        invalid.total = _count_lines(path)
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if invalid is not None:
                invalid.lines += 1
            try:
                yield decode_event(line, **decode_options)
            except InvalidEvent as exc:
                located = InvalidEvent(
                    exc.field, f"line {number} of {path}: {exc.problem}", exc.value, reason=exc.reason
                )
                if errors is None and invalid is None:
                    raise located from None
                if errors is not None:
                    errors.append(BadLine(number, located))
                if invalid is not None:
                    invalid.add(located)
                    invalid.check(path, final=False)
                skipped += 1
    if invalid is not None:
        invalid.check(path, final=True)
    if skipped:
        reasons = f": {invalid.counts()}" if invalid is not None else ""
        log.warning("%s: skipped %d invalid lines%s", path, skipped, reasons)


def write_events_jsonl(path: str | Path, events: Iterable[Event]) -> int:
    """Write ``events`` one JSON object per line; returns how many were written."""
    count = 0
    with Path(path).open("wb") as out:
        for event in events:
            out.write(encode_event(event) + b"\n")
            count += 1
    return count
