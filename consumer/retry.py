"""Ride out a broker that is briefly away (restart, leader move) instead of dying mid-batch.

The at-least-once commit is two steps, and either may meet an unreachable broker:

1. ``flush`` the batch's outputs. :class:`BrokerUnavailableError` (the flush timed out) leaves the
   records queued in the producer, so flushing again continues the same delivery.
   :class:`DeliveryError` means some records were given up on; the whole batch is produced again
   (a reader may see an identical update twice: the at-least-once contract) and flushed.
2. ``commit`` the input offsets; retried as it is.

Both are retried with exponential backoff for at most ``timeout_s``, then the last error is raised:
a broker away for longer is an outage for an operator (and the process supervisor) to see. Nothing
here touches the in-memory state; the runner applies a batch's state only after step 2 succeeded.

>>> calls = []
>>> def flaky():
...     calls.append(1)
...     if len(calls) < 3:
...         raise BrokerUnavailableError("broker restarting")
...     return "done"
>>> retry_transient("flushing", flaky, timeout_s=10, sleep=lambda s: None)
'done'
>>> len(calls)
3
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from consumer.backends.errors import BrokerUnavailableError, DeliveryError

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


def retry_transient(
    what: str,
    action: Callable[[], T],
    *,
    timeout_s: float,
    on_lost: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``action`` until it succeeds, retrying while the broker is unreachable (see module docstring).

    Parameters
    ----------
    what : str
        What is being done, for the log ("flushing outputs").
    action : callable
        The step to run; its return value is returned.
    timeout_s : float
        Give up (re-raise the last error) once another retry would start after this many seconds.
    on_lost : callable, optional
        Called after a :class:`DeliveryError` and before retrying, to hand the lost records to the
        producer again. Without it a ``DeliveryError`` is raised at once.
    sleep, clock : callable
        Injectable for tests.
    """
    deadline = clock() + timeout_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return action()
        except (BrokerUnavailableError, DeliveryError) as error:
            lost = isinstance(error, DeliveryError)
            if (lost and on_lost is None) or clock() + delay > deadline:
                raise
            log.warning("%s failed, retrying in %.1fs: %s", what, delay, error)
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            if lost:
                on_lost()
