"""The in-memory backend: the same semantics as Kafka for the processor's unit tests, no broker.

Clients made by one :class:`MemoryBackend` share its :class:`~.broker.MemoryBroker`; pass ``broker=``
to share one between backends (two processor instances in one test).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from consumer.backends.abstract import Backend, IsolationLevel, TopicSpec
from consumer.backends.memory.broker import MemoryBroker
from consumer.backends.memory.consumer import MemoryConsumer
from consumer.backends.memory.producer import MemoryProducer


class MemoryBackend(Backend):
    """Consumers and producers over one shared :class:`MemoryBroker`."""

    name = "memory"
    # One process, no session timeouts: static membership changes nothing here (group_instance_option
    # stays None), and there are no client options to tune.

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()

    def producer(self, transactional_id: str | None = None, **tuning: Any) -> MemoryProducer:
        return MemoryProducer(self.broker, transactional_id)

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        for spec in specs:
            self.broker.create_topic(spec.name, spec.partitions)

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        return {t: self.broker.partitions_of(t) for t in topics}

    def _new_consumer(
        self, group_id: str, isolation_level: IsolationLevel, tuning: dict[str, Any]
    ) -> MemoryConsumer:
        return MemoryConsumer(self.broker, group_id, isolation_level)

    def _restore_reader(self, isolation_level: IsolationLevel) -> MemoryConsumer:
        return MemoryConsumer(self.broker, None, isolation_level)
