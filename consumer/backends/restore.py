"""Read partitions from their beginning to the end offsets seen at the start: state restore.

A partition is finished when the reader's *position* reaches the end offset, not when a record with
offset ``end - 1`` arrives: compaction removes records and transaction markers occupy offsets, so
the last offset below the end may never be delivered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # abstract.py imports this module: its Backend.read_partitions calls read_to_end
    from consumer.backends.abstract import Record, TopicPartition

RESTORE_BATCH = 10_000


class PositionedReader(Protocol):
    """What a backend's manually assigned reader offers ``read_to_end`` (its consumer class does)."""

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]: ...

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]: ...

    def poll(self, max_records: int, timeout_s: float) -> list[Record]: ...

    def position(self, tp: TopicPartition) -> int: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def close(self) -> None: ...


def read_to_end(
    reader: PositionedReader, partitions: Sequence[TopicPartition], timeout_s: float
) -> Iterator[Record]:
    """Yield the records of ``partitions`` below the end offsets observed before the first fetch.

    Raises
    ------
    TimeoutError
        When some partition has not reached its end offset after ``timeout_s`` seconds.
    """
    partitions = list(partitions)
    if not partitions:
        return
    starts = reader.seek_to_beginning(partitions)
    ends = reader.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > starts[tp]}
    deadline = time.monotonic() + timeout_s
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            late = {tp: (reader.position(tp), ends[tp]) for tp in sorted(pending)}
            raise TimeoutError(
                f"restore did not reach the end offsets in {timeout_s}s: (position, end) {late}"
            )
        batch = reader.poll(RESTORE_BATCH, min(remaining, 0.5))
        # ``(topic, partition)`` finds its TopicPartition key (a named tuple): no object per record
        yield from [record for record in batch if record.offset < ends[record.topic, record.partition]]
        finished = [tp for tp in pending if reader.position(tp) >= ends[tp]]
        if finished:
            reader.pause(finished)
            pending.difference_update(finished)
