"""Workarounds for two kafka-python 3.0.12 races around a group join, and a fence it keeps to itself.

kafka-python runs each JoinGroup → SyncGroup round trip as a task on its IO thread. ``poll`` waits for
that task at most ``timeout_ms``; when the timer runs out first the task keeps going and the next
``poll`` is meant to collect it. Two things go wrong:

* **A finished join is thrown away.** If the task finishes between two polls, the next ``poll`` sees a
  done task, schedules a *new* JoinGroup and discards the finished one, whose assignment is never
  applied. The new JoinGroup starts another rebalance for every member. With short polls two members
  can keep rebalancing each other for good (seen with 10 ms polls: 130 rebalances in 30 s), and in
  the meantime the member still lists the partitions it already revoked. :func:`collect_finished_joins`
  applies the finished join instead, as the in-time path would have.
* **A finished join is never looked at.** A rebalance started by a metadata change (a topic's
  partitions appearing or growing) runs as a background join whose leader records the new metadata as
  assigned, so the next ``poll`` finds nothing to rejoin, never enters the join path and never applies
  the result. :func:`rejoin_if_join_was_dropped` spots that state and asks for a rejoin; with the first
  workaround in place the rejoin simply collects the finished task (no extra JoinGroup).

Both read kafka-python's private coordinator attributes (``_join_task``, ``rejoining``,
``_on_join_complete_async``), which is why the dependency is pinned below 4.
``tests/backends/test_partitions_added.py`` and ``test_backend_contract.py`` reproduce both races.

A static member fenced by a newcomer with its ``group_instance_id`` learns it from a heartbeat; the
heartbeat task logs it and stops heartbeating, but ``poll`` goes on returning records. :class:`FenceWatch`
keeps that error so the consumer can raise it (``tests/scorer/test_fencing.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import errors as kafka_errors
from kafka.coordinator.base import MemberState

log = logging.getLogger(__name__)


def collect_finished_joins(coordinator: Any) -> None:
    """Make ``coordinator`` apply a join that finished while no ``poll`` was waiting for it."""
    original = coordinator.join_group_async

    async def join_group_async(timeout_ms=None):
        finished = coordinator._join_task
        if finished is not None and finished.is_done and finished.succeeded():
            coordinator._join_task = None
            await _apply_join(coordinator, finished.value)
            return True
        return await original(timeout_ms=timeout_ms)

    coordinator.join_group_async = join_group_async


async def _apply_join(coordinator: Any, assignment_bytes: bytes) -> None:
    """What kafka-python does after a join it waited for (``BaseCoordinator.join_group_async``)."""
    with coordinator._lock:
        coordinator.rejoining = False
        coordinator.rejoin_needed = False
        coordinator.state = MemberState.STABLE
        coordinator._enable_heartbeat()
    generation = coordinator._generation
    await coordinator._on_join_complete_async(
        generation.generation_id, generation.member_id, generation.protocol, assignment_bytes
    )


def rejoin_if_join_was_dropped(coordinator: Any) -> None:
    """Ask for a rejoin when a finished join sits uncollected and nothing else would collect it."""
    dropped = getattr(coordinator, "_join_task", None)
    if dropped is not None and dropped.is_done and not coordinator.need_rejoin():
        log.warning("kafka-python finished a group join without applying it; applying it now")
        coordinator.request_rejoin()


class FenceWatch:
    """Keeps the ``FencedInstanceIdError`` a heartbeat of ``coordinator`` met (None until then)."""

    def __init__(self, coordinator: Any) -> None:
        self.error: kafka_errors.FencedInstanceIdError | None = None
        handle = coordinator._handle_heartbeat_response

        def handle_heartbeat_response(response, send_time):
            try:
                return handle(response, send_time)
            except kafka_errors.FencedInstanceIdError as error:
                self.error = error
                raise

        coordinator._handle_heartbeat_response = handle_heartbeat_response
