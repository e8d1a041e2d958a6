"""Our partitions and next-offsets in confluent-kafka's types (``ours`` in ``consumer.backends.client``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import confluent_kafka

from consumer.backends.abstract import TopicPartition


def theirs(partitions: Iterable[TopicPartition]) -> list[confluent_kafka.TopicPartition]:
    """confluent-kafka's ``TopicPartition`` for each of ``partitions``."""
    return [confluent_kafka.TopicPartition(tp.topic, tp.partition) for tp in partitions]


def their_offsets(offsets: Mapping[TopicPartition, int]) -> list[confluent_kafka.TopicPartition]:
    """Each partition with its (next) offset, as librdkafka commits, assigns and seeks."""
    return [confluent_kafka.TopicPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]
