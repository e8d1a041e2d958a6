"""Per-customer state of the partitions this instance owns, and its changelog records.

An entry is one ``bytes`` value: a small header (the input offset of the last event applied and the
last segment published) followed by the aggregator's own compact state (``model.features``). The same
bytes are the changelog value, so writing the changelog costs no encoding and restoring costs no
decoding until a customer is next touched. The layout, its version and the other record kinds of the
changelog are in ``model.changelog``; this module gives them their meaning in the stream.

Remembering the last applied offset makes updates idempotent: after a crash between writing the
changelog and committing the input offsets, the replayed events are recognised and skipped, so even
at-least-once mode never counts an event twice in the state.

The header also holds a ring of the crc32 of the customer's last ``RECENT_IDS`` event ids, so an
event that its producer sent again (a retry after a timeout, a restarted producer, an upstream
at-least-once pipeline: offsets differ, the ``event_id`` does not) is counted once. Six 32-bit
hashes cost 24 bytes a customer; a genuine event is mistaken for a repeat about once in 700 million.
Version 1 entries (no ring) are still read, with an empty ring.

>>> from model.features import initialize
>>> entry = Entry(initialize(), last_offset=41, last_segment=2).after(initialize(), 42, "e-7")
>>> Entry.from_bytes(entry.to_bytes()) == entry, entry.has_seen("e-7"), entry.has_seen("e-8")
(True, True, False)
>>> Entry.from_bytes(b"xx")
Traceback (most recent call last):
...
ValueError: changelog entry of 2 bytes is shorter than its 11-byte header
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consumer.tick_schedule import TickSchedule
from model.changelog import (
    CLOCK_KEY,
    NO_RECENT_IDS,
    NO_SEGMENT,
    ONLINE_MODEL_KEY,
    decode_entry,
    decode_trusted_entry,
    encode_entry,
    ring_holds,
    ring_push,
)
from model.clock import PartitionClock
from model.features import CustomerState, initialize

if TYPE_CHECKING:
    from consumer.state_restore import JudgedPartition

# NO_SEGMENT and ONLINE_MODEL_KEY (``model.changelog``) are re-exported for the stream's modules.
__all__ = ["CLOCK_KEY", "NEW_ENTRY", "NO_SEGMENT", "ONLINE_MODEL_KEY", "Entry", "StateStore"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One customer's state plus the bookkeeping the stream needs."""

    state: CustomerState
    last_offset: int = -1
    last_segment: int = NO_SEGMENT
    recent_ids: bytes = NO_RECENT_IDS  # a ``model.changelog`` ring of event-id hashes

    def has_seen(self, event_id: str) -> bool:
        """Whether ``event_id`` is among this customer's last ``model.changelog.RECENT_IDS`` events."""
        return ring_holds(self.recent_ids, event_id)

    def after(self, state: CustomerState, offset: int, event_id: str) -> Entry:
        """The entry once the event ``event_id`` at ``offset`` has been folded into ``state``."""
        return Entry(state, offset, self.last_segment, ring_push(self.recent_ids, event_id))

    def scored(self, segment: int) -> Entry:
        return Entry(self.state, self.last_offset, segment, self.recent_ids)

    def to_bytes(self) -> bytes:
        return encode_entry(self.state, self.last_offset, self.last_segment, self.recent_ids)

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """An entry of any readable layout, validated; ``ValueError`` names what is wrong."""
        return cls(*decode_entry(data))

    @classmethod
    def _trusted(cls, data: bytes) -> Entry:
        """An entry this store wrote or already validated (current version): no checks on the hot path."""
        return cls(*decode_trusted_entry(data))


NEW_ENTRY = Entry(initialize())


class StateStore:
    """Entries by partition, then customer id; held as bytes so a million customers stay small."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[str, bytes]] = {}
        self._online: dict[int, bytes] = {}  # online-model checkpoint per partition (``model.online``)
        self._clocks: dict[int, PartitionClock] = {}  # stream time and last tick (``model.clock``)
        # Who the next ageing tick must re-score; derived, never in the changelog (``consumer.tick_schedule``)
        self._schedules: dict[int, TickSchedule] = {}

    def get(self, partition: int, customer_id: str) -> Entry:
        raw = self._partitions.get(partition, {}).get(customer_id)
        return NEW_ENTRY if raw is None else Entry._trusted(raw)

    def put_many(self, partition: int, entries: Mapping[str, bytes | None]) -> None:
        """Store already-encoded entries (from a committed batch); ``None`` forgets the customer."""
        customers = self._partitions.setdefault(partition, {})
        for customer_id, raw in entries.items():
            if raw is None:
                customers.pop(customer_id, None)
            else:
                customers[customer_id] = raw
        self.schedule(partition).touched(entries)

    def restore(self, judged: JudgedPartition) -> int:
        """Own ``judged.partition`` with the entries restore judged valid (``consumer.state_restore``).

        The changelog is the one way state enters from outside, so every entry was validated there
        and is trusted afterwards. Returns the number of changelog records read.
        """
        self._partitions[judged.partition] = dict(judged.entries)
        self._schedules.pop(judged.partition, None)
        self._online.pop(judged.partition, None)
        self.put_checkpoint(judged.partition, judged.checkpoint)
        self._clocks[judged.partition] = judged.clock
        return judged.records

    def assign(self, partition: int) -> None:
        """Own ``partition`` from now on (restore does this too); entries of unowned ones are ignored."""
        self._partitions.setdefault(partition, {})

    def drop(self, partition: int) -> None:
        """Forget a partition handed to another instance."""
        self._partitions.pop(partition, None)
        self._schedules.pop(partition, None)
        self._online.pop(partition, None)
        self._clocks.pop(partition, None)

    def checkpoint(self, partition: int) -> bytes | None:
        return self._online.get(partition)

    def put_checkpoint(self, partition: int, checkpoint: bytes | None) -> None:
        if checkpoint:
            self._online[partition] = checkpoint

    def clock(self, partition: int) -> PartitionClock:
        """The partition's stream time and last tick (a new clock before its first event)."""
        return self._clocks.get(partition, PartitionClock())

    def put_clock(self, partition: int, clock: PartitionClock) -> None:
        self._clocks[partition] = clock

    def clocks(self) -> dict[int, PartitionClock]:
        """The clock of every owned partition (for the stream-time metrics)."""
        return {p: self.clock(p) for p in self._partitions}

    def schedule(self, partition: int) -> TickSchedule:
        """The partition's ageing schedule (empty, so "everyone", after an assignment or a restore)."""
        schedule = self._schedules.get(partition)
        if schedule is None:
            schedule = self._schedules[partition] = TickSchedule()
        return schedule

    def raw_entries(self, partition: int) -> Mapping[str, bytes]:
        """The stored entries of ``partition`` as their changelog bytes (read-only: a tick's input)."""
        return self._partitions.get(partition, {})

    def owns(self, partition: int) -> bool:
        return partition in self._partitions

    def partitions(self) -> list[int]:
        return sorted(self._partitions)

    def customers(self, partition: int | None = None) -> Iterable[tuple[str, Entry]]:
        parts = self._partitions.values() if partition is None else [self._partitions.get(partition, {})]
        for customers in parts:
            for customer_id, raw in customers.items():
                yield customer_id, Entry.from_bytes(raw)

    def __len__(self) -> int:
        return sum(len(c) for c in self._partitions.values())
