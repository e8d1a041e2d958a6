"""The in-memory backend: Kafka's semantics without a broker, for the processor's unit tests.

- ``backend``: :class:`MemoryBackend`: consumers and producers over one shared broker
- ``consumer``: a group member of the broker, or a restore reader assigned by hand
- ``producer``: appends at once; transactional when given a ``transactional_id``
- ``broker``: :class:`MemoryBroker`: partition logs, committed offsets, transactions
- ``group``: consumer-group coordination: eager rebalances with range assignment
"""

from consumer.backends.memory.backend import MemoryBackend
from consumer.backends.memory.broker import MemoryBroker

__all__ = ["MemoryBackend", "MemoryBroker"]
