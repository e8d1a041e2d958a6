"""Consumer-group coordination for the in-memory broker: eager rebalances with range assignment.

A rebalance has two phases, as in Kafka's classic protocol: every member holding partitions first
revokes all of them (its ``on_revoke`` runs inside its own ``poll``), and only when all have done so
is the new assignment handed out. So a partition is never processed by two members at once.

>>> group = MemoryGroup("g", partitions_of=lambda topic: 3)
>>> group.join("a", ["t"]); group.next_step("a")
('assign', [TopicPartition(topic='t', partition=0), TopicPartition(topic='t', partition=1), \
TopicPartition(topic='t', partition=2)])
>>> group.join("b", ["t"]); group.next_step("b") is None, group.next_step("a")[0]
(True, 'revoke')
>>> group.ack_revoke("a"); group.next_step("b")[1]
[TopicPartition(topic='t', partition=2)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumer.backends.abstract import TopicPartition


@dataclass
class _Member:
    topics: tuple[str, ...]
    generation: int = -1
    assignment: list[TopicPartition] = field(default_factory=list)


def range_assign(members: dict[str, _Member], partitions_of: Callable[[str], int]) -> dict[str, list]:
    """Kafka's RangeAssignor: per topic, contiguous partition ranges to members sorted by id."""
    result: dict[str, list[TopicPartition]] = {member_id: [] for member_id in members}
    topics = sorted({t for member in members.values() for t in member.topics})
    for topic in topics:
        subscribers = sorted(m for m, member in members.items() if topic in member.topics)
        count = partitions_of(topic)
        share, extra = divmod(count, len(subscribers))
        start = 0
        for index, member_id in enumerate(subscribers):
            size = share + (1 if index < extra else 0)
            result[member_id].extend(TopicPartition(topic, p) for p in range(start, start + size))
            start += size
    return result


class MemoryGroup:
    """Membership, generation and assignment of one consumer group (the broker holds the lock)."""

    def __init__(self, group_id: str, partitions_of: Callable[[str], int]) -> None:
        self.group_id = group_id
        self.generation = 0
        self._partitions_of = partitions_of
        self._members: dict[str, _Member] = {}
        self._pending_revoke: set[str] = set()
        self._targets: dict[str, list[TopicPartition]] | None = None

    def join(self, member_id: str, topics: Sequence[str]) -> None:
        """Add (or re-subscribe) a member and start a rebalance."""
        previous = self._members.get(member_id)
        self._members[member_id] = _Member(tuple(topics), assignment=previous.assignment if previous else [])
        self._rebalance()

    def leave(self, member_id: str) -> None:
        """Remove a member (its partitions must already be revoked) and start a rebalance."""
        if self._members.pop(member_id, None) is not None:
            self._rebalance()

    def next_step(self, member_id: str) -> tuple[str, list[TopicPartition]] | None:
        """What the member must do in its poll: ``("revoke", held)``, ``("assign", new)`` or nothing."""
        member = self._members.get(member_id)
        if member is None:
            return None
        if member_id in self._pending_revoke:
            return "revoke", list(member.assignment)
        if self._targets is not None and member.generation != self.generation:
            member.generation = self.generation
            member.assignment = list(self._targets.get(member_id, []))
            return "assign", list(member.assignment)
        return None

    def ack_revoke(self, member_id: str) -> None:
        """The member ran ``on_revoke``; once all have, the new assignment is computed."""
        member = self._members.get(member_id)
        if member is not None:
            member.assignment = []
        self._pending_revoke.discard(member_id)
        self._maybe_assign()

    def owns(self, member_id: str, partition: TopicPartition) -> bool:
        """Whether the member currently holds ``partition`` (commits for others are refused)."""
        member = self._members.get(member_id)
        return member is not None and partition in member.assignment

    def assignment(self, member_id: str) -> list[TopicPartition]:
        """The partitions the member holds right now."""
        member = self._members.get(member_id)
        return list(member.assignment) if member else []

    def _rebalance(self) -> None:
        self.generation += 1
        self._pending_revoke = {m for m, member in self._members.items() if member.assignment}
        self._targets = None
        self._maybe_assign()

    def _maybe_assign(self) -> None:
        if not self._pending_revoke and self._targets is None and self._members:
            self._targets = range_assign(self._members, self._partitions_of)
