"""A limit on the invalid share of the input: a wrong topic should page someone, not fill the DLQ.

One bad record never stops the stream (it becomes a dead letter). But when most records are invalid,
the input itself is wrong: the scorer reads the wrong topic, or a producer changed its schema. Like
arroyo's ``DlqLimit``, :class:`InvalidShareLimit` stops the scorer then: when more than
``max_ratio`` of the last ``window`` records were dead-lettered, ``observe`` raises
:class:`InvalidShareExceededError` (the CLI exits with code 3 and its message). The runner calls it after a
batch is committed, so that batch's dead letters are durable and a restart does not redo them.

Records are counted per poll batch: the window is the newest batches that together hold at least
``window`` records (a batch larger than the window is judged alone). Nothing is judged before the
window is full, so the first records of a run cannot trip it. ``max_ratio=None`` turns it off.

>>> limit = InvalidShareLimit(max_ratio=0.5, window=10)
>>> limit.observe(records=6, invalid={"not_json": 6})  # 6 records: the window is not full yet
>>> limit.observe(records=6, invalid={})  # 6 of the last 12 invalid: not more than half
>>> limit.observe(records=4, invalid={"not_json": 3, "bad_value": 1})  # the first batch left: 4 of 10
>>> try:
...     limit.observe(records=4, invalid={"not_json": 4})
... except InvalidShareExceededError as stop:
...     print(str(stop)[:64])
8 of the last 14 records (57%) were invalid (not_json 7, bad_val
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping


class InvalidShareExceededError(Exception):
    """More than ``--max-invalid-ratio`` of the last ``--invalid-window`` records were invalid."""


def invalid_ratio(text: str) -> float | None:
    """``--max-invalid-ratio`` parsed: a share in [0, 1], or ``none``/``off``/empty (no limit).

    >>> invalid_ratio("0.5"), invalid_ratio("none")
    (0.5, None)
    """
    if text is None or str(text).strip().lower() in ("", "none", "off"):
        return None
    ratio = float(text)
    if not 0 <= ratio <= 1:
        raise ValueError(f"--max-invalid-ratio must be a share between 0 and 1, got {text!r}")
    return ratio


class InvalidShareLimit:
    """The invalid share of the last ``window`` records, counted in whole poll batches."""

    def __init__(self, max_ratio: float | None, window: int) -> None:
        if window < 1:
            raise ValueError(f"--invalid-window must be at least 1 record, got {window}")
        self.max_ratio = max_ratio
        self.window = window
        self._batches: deque[tuple[int, Counter]] = deque()
        self._records = 0
        self._invalid: Counter = Counter()

    @property
    def share(self) -> float:
        """The invalid share of the records in the window (0 when empty)."""
        return self._invalid.total() / self._records if self._records else 0.0

    def observe(self, records: int, invalid: Mapping[str, int]) -> None:
        """Add a committed batch (``invalid``: dead letters per reason); raise if the share is exceeded."""
        if self.max_ratio is None or not records:
            return
        self._batches.append((records, Counter(invalid)))
        self._records += records
        self._invalid.update(invalid)
        while self._records - self._batches[0][0] >= self.window:  # the rest still fills the window
            dropped, reasons = self._batches.popleft()
            self._records -= dropped
            self._invalid.subtract(reasons)
        if self._records >= self.window and self.share > self.max_ratio:
            raise InvalidShareExceededError(self._message())

    def _message(self) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in self._invalid.most_common() if n > 0)
        return (
            f"{self._invalid.total()} of the last {self._records} records ({self.share:.0%}) were invalid "
            f"({reasons}), more than --max-invalid-ratio {self.max_ratio} allows: is the input the wrong "
            "topic, or did a producer change its schema? The batches read so far are committed and "
            "their dead letters written. Fix the input (or raise --max-invalid-ratio) and restart"
        )
