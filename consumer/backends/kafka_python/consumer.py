"""The kafka-python consumer behind :class:`~consumer.backends.abstract.Consumer`.

kafka-python 3.x runs its network loop on an IO thread and calls rebalance listeners there, where a
blocking call (a commit, a producer flush) is refused. So the listener hands each callback to a
short-lived thread and keeps the IO loop turning until it returns; ``poll`` (or ``close``) is blocked
meanwhile, so callbacks still never overlap processing.

Revocation follows the Java client's eager protocol: once ``on_revoke`` has run for partitions they
are no longer this member's. kafka-python keeps listing them until the next assignment arrives (and
would revoke them a second time if the consumer closed meanwhile, when a commit can only fail), so
``assignment()`` leaves them out and they are never revoked twice. A commit inside ``on_revoke`` runs
while the member still owns the partitions and succeeds, as in Java.

Two kafka-python 3.0.12 races around group joins are worked around in :mod:`.group`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener

from consumer.backends.abstract import Consumer, IsolationLevel, PartitionsCallback, Record, TopicPartition
from consumer.backends.client import ours
from consumer.backends.config import ClientConfig
from consumer.backends.kafka_python.config import CONSUMER_DEFAULTS, client_options
from consumer.backends.kafka_python.errors import translate, translated
from consumer.backends.kafka_python.group import (
    FenceWatch,
    collect_finished_joins,
    rejoin_if_join_was_dropped,
)
from consumer.backends.kafka_python.partitions import their_offsets, theirs

_CALLBACK_TICK_S = 0.005


def _record(m: Any) -> Record:
    return Record(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()), m.timestamp)


class _Listener(AsyncConsumerRebalanceListener):
    """Runs the user's callbacks off the IO thread; their exceptions surface from ``poll``."""

    def __init__(self, consumer: KafkaPythonConsumer, on_assign, on_revoke) -> None:
        self._consumer, self._on_assign, self._on_revoke = consumer, on_assign, on_revoke

    async def on_partitions_revoked(self, revoked) -> None:
        await self._hand_back(revoked)

    async def on_partitions_lost(self, lost) -> None:
        await self._hand_back(lost)

    async def on_partitions_assigned(self, assigned) -> None:
        self._consumer.handed_back.clear()
        await self._run(self._on_assign, assigned)

    async def _hand_back(self, partitions) -> None:
        """Revoke each partition once: kafka-python offers the already revoked ones again on close."""
        fresh = set(partitions) - self._consumer.handed_back
        await self._run(self._on_revoke, fresh)
        self._consumer.handed_back |= fresh

    async def _run(self, callback: PartitionsCallback | None, partitions) -> None:
        if callback is None or not partitions or self._consumer.callback_error is not None:
            return
        done = threading.Event()

        def work() -> None:
            try:
                callback(ours(partitions))
            except BaseException as exc:  # re-raised on the polling thread by KafkaPythonConsumer
                self._consumer.callback_error = exc
            finally:
                done.set()

        threading.Thread(target=work, name="rebalance-callback", daemon=True).start()
        while not done.is_set():
            # kafka-python's own loop primitive: sleeping here lets the loop serve the callback's calls.
            await self._consumer.io_loop.sleep(_CALLBACK_TICK_S)


class KafkaPythonConsumer(Consumer):
    """A KafkaConsumer group member with manual commits."""

    def __init__(self, config: ClientConfig, group_id: str | None, isolation_level: IsolationLevel, **tuning):
        self._servers = config.bootstrap_servers
        options = {**client_options(config), **CONSUMER_DEFAULTS, **tuning}
        with translated("creating a kafka-python consumer", self._servers):
            self._consumer = KafkaConsumer(group_id=group_id, isolation_level=isolation_level, **options)
        # The private attributes used: ``_net`` by _Listener, ``_coordinator`` by the .group workarounds.
        self.io_loop = self._consumer._net
        self.callback_error: BaseException | None = None
        # Revoked (on_revoke has run) but still listed by kafka-python until the next assignment.
        self.handed_back: set[KafkaTopicPartition] = set()
        self._fence: FenceWatch | None = None
        if group_id is not None:
            collect_finished_joins(self._consumer._coordinator)
            self._fence = FenceWatch(self._consumer._coordinator)

    def subscribe(self, topics, on_assign=None, on_revoke=None) -> None:
        topics = list(topics)
        with translated(f"subscribing to {topics}", self._servers):
            self._consumer.subscribe(topics, listener=_Listener(self, on_assign, on_revoke))
            # Fetch the topics' metadata before the first join. kafka-python asks for it only after a
            # refresh backoff, so the first join usually came first: the leader assigned nothing
            # ("No partition metadata" in the log at every start) and rebalanced again moments later.
            for topic in topics:
                self._consumer.partitions_for_topic(topic)

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Record]:
        self.raise_if_fenced()
        with translated("polling", self._servers):
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        self._raise_callback_error()
        self.raise_if_fenced()  # the records fetched since belong to the newcomer now
        rejoin_if_join_was_dropped(self._consumer._coordinator)
        return [_record(m) for batch in batches.values() for m in batch]

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        with translated("committing offsets", self._servers):
            self._consumer.commit(their_offsets(offsets))

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        with translated("fetching committed offsets", self._servers):
            return {tp: self._consumer.committed(KafkaTopicPartition(*tp)) for tp in partitions}

    def assignment(self) -> list[TopicPartition]:
        return ours(self._consumer.assignment() - self.handed_back)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.pause(*theirs(partitions))

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.resume(*theirs(partitions))

    def seek(self, offsets: Mapping[TopicPartition, int]) -> None:
        with translated("seeking", self._servers):
            for tp, offset in offsets.items():
                self._consumer.seek(KafkaTopicPartition(*tp), offset)

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        with translated("fetching end offsets", self._servers):
            ends = self._consumer.end_offsets(theirs(partitions))
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def group_metadata(self) -> Any:
        return self._consumer.group_metadata()

    def close(self) -> None:
        with translated("closing the consumer", self._servers):
            self._consumer.close(autocommit=False)
        self._raise_callback_error()

    def seek_to_beginning(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Assign ``partitions`` manually from their beginning (restore only); return the start offsets."""
        client_partitions = theirs(partitions)
        with translated("assigning partitions", self._servers):
            self._consumer.assign(client_partitions)
            starts = self._consumer.beginning_offsets(client_partitions)
        for tp, offset in starts.items():
            self._consumer.seek(tp, offset)
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in starts.items()}

    def position(self, tp: TopicPartition) -> int:
        """Next offset this consumer will fetch from ``tp`` (past any transaction markers)."""
        with translated("reading the position", self._servers):
            return self._consumer.position(KafkaTopicPartition(*tp))

    def raise_if_fenced(self) -> None:
        if self._fence is not None and self._fence.error is not None:
            raise translate(self._fence.error, "heartbeating", self._servers)

    def _raise_callback_error(self) -> None:
        error, self.callback_error = self.callback_error, None
        if error is not None:
            raise error
