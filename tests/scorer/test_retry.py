"""Waiting out an unreachable broker: retried, lost records produced again, and a bounded wait."""

from __future__ import annotations

import pytest

from consumer.backends.errors import BrokerUnavailableError, CommitFailedError, DeliveryError
from consumer.retry import retry_transient


class FakeClock:
    """Time that passes only when the retry loop sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def failing(errors: list[Exception], result: str = "ok"):
    def action() -> str:
        if errors:
            raise errors.pop(0)
        return result

    return action


def test_delivery_errors_reproduce_the_batch_before_retrying():
    clock, reproduced = FakeClock(), []
    action = failing([DeliveryError("2 of 9 records were not delivered"), BrokerUnavailableError("down")])
    result = retry_transient(
        "flushing", action, timeout_s=60, on_lost=lambda: reproduced.append(1), sleep=clock.sleep, clock=clock
    )
    assert result == "ok"
    assert reproduced == [1], "only the delivery error hands the records to the producer again"
    assert clock.sleeps == sorted(clock.sleeps), "backing off, never faster"


def test_a_delivery_error_without_a_way_to_reproduce_is_raised_at_once():
    clock = FakeClock()
    with pytest.raises(DeliveryError):
        retry_transient(
            "flushing", failing([DeliveryError("lost")]), timeout_s=60, sleep=clock.sleep, clock=clock
        )
    assert clock.sleeps == []


def test_an_outage_longer_than_the_timeout_raises_the_last_error():
    clock = FakeClock()
    errors = [BrokerUnavailableError(f"down {n}") for n in range(1000)]
    with pytest.raises(BrokerUnavailableError):
        retry_transient("committing", failing(errors), timeout_s=30, sleep=clock.sleep, clock=clock)
    assert 0 < clock.now <= 30
    assert max(clock.sleeps) <= 5.0


def test_other_errors_are_not_retried():
    clock = FakeClock()
    with pytest.raises(CommitFailedError):
        retry_transient(
            "committing", failing([CommitFailedError("rebalanced")]), timeout_s=30, sleep=clock.sleep
        )
    assert clock.sleeps == []
