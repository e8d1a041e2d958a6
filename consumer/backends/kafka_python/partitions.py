"""Our partitions and next-offsets in kafka-python's types (``ours`` in ``consumer.backends.client``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kafka import TopicPartition as KafkaTopicPartition
from kafka.structs import OffsetAndMetadata

from consumer.backends.abstract import TopicPartition


def theirs(partitions: Iterable[TopicPartition]) -> list[KafkaTopicPartition]:
    """kafka-python's ``TopicPartition`` for each of ``partitions``."""
    return [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]


def their_offsets(offsets: Mapping[TopicPartition, int]) -> dict[KafkaTopicPartition, OffsetAndMetadata]:
    """Next-offsets as kafka-python commits them (no metadata, no leader epoch)."""
    return {
        KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()
    }
