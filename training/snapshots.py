"""The reference times an event history is turned into training rows at (``--snapshots``).

Training computes features as of a clock time, like the stream (``model.clock``): the end of the
history (its latest event time) and, unless ``--snapshots none``, periodic snapshot dates in between.
At every date each customer seen by then contributes one row (``model.features.snapshot_features``),
so the model sees customers at every stage of their lives, as an ageing stream does.

``monthly`` snapshots are at 00:00 UTC on the first of each month; a duration of whole days (``30d``,
``1w``) puts them on the multiples of that duration since the Unix epoch (``model.clock.boundary``),
so they too fall on UTC midnights. Dates strictly after the first event and strictly before the end
are used; the end of the history is always a reference time.

>>> parse_snapshots("monthly"), parse_snapshots("1w"), parse_snapshots("none")
('monthly', 604800000, 0)
>>> day = 86_400_000
>>> start, end = 852_076_800_000, 852_076_800_000 + 75 * day     # 1997-01-01 .. 1997-03-17
>>> [_date(t) for t in snapshot_times(start, end, "monthly")]
['1997-02-01', '1997-03-01', '1997-03-17']
>>> describe_times(snapshot_times(start, end, "monthly"), "monthly")
'end of history 1997-03-17 and 2 monthly snapshots (1997-02-01 .. 1997-03-01)'
>>> describe_times(snapshot_times(start, end, 0), 0)
'end of history 1997-03-17'
"""

from __future__ import annotations

from datetime import UTC, datetime

from model.clock import DAY_MS, boundary, format_duration, parse_duration

__all__ = ["DEFAULT_SNAPSHOTS", "describe_times", "parse_snapshots", "snapshot_times"]

DEFAULT_SNAPSHOTS = "monthly"
Snapshots = str | int  # "monthly", or a period in ms (0: end of history only)


def parse_snapshots(text: str) -> Snapshots:
    """``"monthly"``, or the period in ms of a duration of whole days (``0`` for ``none``/``0``/``off``).

    ``ValueError`` names the option, the value and the accepted forms.

    >>> parse_snapshots("12h")
    Traceback (most recent call last):
    ...
    ValueError: --snapshots must be monthly, none, or whole days such as 30d or 1w, got '12h'
    """
    cleaned = str(text).strip().lower()
    if cleaned == "monthly":
        return "monthly"
    accepted = "--snapshots must be monthly, none, or whole days such as 30d or 1w"
    try:
        period = parse_duration(cleaned, what="--snapshots")
    except ValueError:
        raise ValueError(f"{accepted}, got {text!r}") from None
    if period % DAY_MS:
        raise ValueError(f"{accepted}, got {text!r}")
    return period


def _month_starts(first_ms: int, end_ms: int) -> list[int]:
    start = datetime.fromtimestamp(first_ms / 1000, UTC)
    year, month, out = start.year, start.month, []
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        t = int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000
        if t >= end_ms:
            return out
        out.append(t)


def snapshot_times(first_ms: int, end_ms: int, snapshots: Snapshots) -> list[int]:
    """The reference times of a history spanning ``first_ms`` .. ``end_ms``, ascending, ``end_ms`` last."""
    if snapshots == "monthly":
        return [*_month_starts(first_ms, end_ms), end_ms]
    if not snapshots:
        return [end_ms]
    t = boundary(first_ms, snapshots) + snapshots
    return [*range(t, end_ms, snapshots), end_ms]


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def describe_times(times: list[int], snapshots: Snapshots) -> str:
    """What the manifest says the rows are as of, e.g. ``end of history 1998-06-30 and 17 monthly
    snapshots (1997-02-01 .. 1998-06-01)``."""
    end = f"end of history {_date(times[-1])}"
    dates = times[:-1]
    if not dates:
        return end
    every = "monthly" if snapshots == "monthly" else f"every-{format_duration(snapshots)}"
    plural = "s" * (len(dates) != 1)
    return f"{end} and {len(dates)} {every} snapshot{plural} ({_date(dates[0])} .. {_date(dates[-1])})"
