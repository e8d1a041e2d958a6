"""The one clock: features are computed as of a clock time, and a partition's clock is its stream time.

In the stream, ``as_of`` is the input partition's **stream time**: the largest event time seen so far
in that partition, in partition order (Kafka Streams' definition). A late event (older than stream
time) still folds into its customer's state, is scored as of stream time and does not move the clock
back. In training the clock is a reference time (the end of the history, or a snapshot date).

Ageing ticks fire when stream time crosses a tick boundary: multiples of ``tick_ms`` since the Unix
epoch, so a ``1d`` tick is at UTC midnight. Records before a boundary (in partition order) apply
before its tick, records after it after. If stream time jumps several boundaries at once (a gap in
the data), the partition ages once, to the last boundary crossed: every tick re-scores every
customer from its stored state, so ageing to the last boundary gives the same segments the skipped
ticks would have ended with, and a gap of a year does not publish 365 rounds of updates.

>>> clock = PartitionClock()
>>> clock, tick = clock.advance(parse_duration("36h", what="t"), DAY_MS)   # first event: no tick
>>> clock, tick
(PartitionClock(stream_ms=129600000, last_tick_ms=86400000, model=b''), None)
>>> clock, tick = clock.advance(DAY_MS, DAY_MS)        # late event: the clock does not move back
>>> clock.stream_ms, tick
(129600000, None)
>>> clock, tick = clock.advance(5 * DAY_MS + 1, DAY_MS)  # a gap: age once, to the last boundary
>>> tick == 5 * DAY_MS, clock.last_tick_ms == 5 * DAY_MS
(True, True)
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["DAY_MS", "NO_TIME", "PartitionClock", "boundary", "format_duration", "parse_duration"]

DAY_MS = 86_400_000
NO_TIME = -1  # no event seen yet

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
_DURATION = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)")


def parse_duration(text: str, *, what: str) -> int:
    """Milliseconds of a duration such as ``1d``, ``12h``, ``90d``, ``2w``, ``30m``; ``0`` (or ``off``)
    is 0. ``ValueError`` names ``what`` and the accepted forms.

    >>> parse_duration("1d", what="--tick"), parse_duration("0", what="--tick")
    (86400000, 0)
    >>> parse_duration("soon", what="--tick")
    Traceback (most recent call last):
    ...
    ValueError: --tick must be a duration such as 1d, 12h, 30m, 90s, 2w or 0 (off), got 'soon'
    """
    cleaned = str(text).strip().lower()
    if cleaned in ("0", "off", "none"):
        return 0
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"{what} must be a duration such as 1d, 12h, 30m, 90s, 2w or 0 (off), got {text!r}")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The shortest exact form :func:`parse_duration` reads back (``0`` for off).

    >>> format_duration(86_400_000), format_duration(90 * 60_000), format_duration(0)
    ('1d', '90m', '0')
    """
    if ms == 0:
        return "0"
    for unit, size in sorted(_UNITS_MS.items(), key=lambda item: -item[1]):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError("every duration is a whole number of milliseconds")


def boundary(t_ms: int, tick_ms: int) -> int:
    """The latest tick boundary at or before ``t_ms`` (multiples of ``tick_ms`` since the epoch)."""
    return t_ms - t_ms % tick_ms


class PartitionClock(NamedTuple):
    """One input partition's stream time and the last boundary it aged to (``NO_TIME``: none yet).

    Both go into the changelog in the same commit as the state, so a restarted or rebalanced
    partition resumes with the clock its state was computed with.
    """

    stream_ms: int = NO_TIME
    last_tick_ms: int = NO_TIME
    model: bytes = b""  # fingerprint of the model the partition's segments come from (b"": unknown)

    def advance(self, ts_ms: int, tick_ms: int) -> tuple[PartitionClock, int | None]:
        """The clock after an event at ``ts_ms``, and the boundary to age to first (``None``: no tick).

        The first event of a partition only starts the clock: there is no one to age yet.
        ``tick_ms == 0`` turns ageing off.
        """
        if self.stream_ms == NO_TIME:
            return self._replace(
                stream_ms=ts_ms, last_tick_ms=boundary(ts_ms, tick_ms) if tick_ms else NO_TIME
            ), None
        stream = max(self.stream_ms, ts_ms)
        if tick_ms:
            crossed = boundary(stream, tick_ms)
            if crossed > self.last_tick_ms:
                return self._replace(stream_ms=stream, last_tick_ms=crossed), crossed
        return self._replace(stream_ms=stream), None

    def tick_at(self, now_ms: int, tick_ms: int) -> tuple[PartitionClock, int | None]:
        """Wall-clock mode: the boundary ``now_ms`` has crossed since the last tick, if any.

        Stream time is left as the events set it (it is still exported); only the ticks follow the
        system clock.
        """
        if not tick_ms:
            return self, None
        crossed = boundary(now_ms, tick_ms)
        if self.last_tick_ms == NO_TIME:
            return self._replace(last_tick_ms=crossed), None
        if crossed > self.last_tick_ms:
            return self._replace(last_tick_ms=crossed), crossed
        return self, None
