"""The kafka-python backend, the default client.

- ``backend``: :class:`KafkaPythonBackend`: consumers, producers, topic creation
- ``consumer``: the group member and restore reader, rebalance callbacks off the IO thread
- ``producer``: the idempotent, optionally transactional producer
- ``config``: :class:`~consumer.backends.config.ClientConfig` in kafka-python's option names
- ``errors``: kafka-python exceptions translated into :mod:`consumer.backends.errors`
- ``auth``: refused SASL credentials reported at once, not as a bootstrap timeout
- ``group``: workarounds for two kafka-python 3.0.12 group-join races
- ``partitions``: our partitions and offsets in kafka-python's types
"""

from consumer.backends.kafka_python.backend import KafkaPythonBackend

__all__ = ["KafkaPythonBackend"]
