"""The confluent-kafka backend: consumers, producers and topic creation with librdkafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from consumer.backends.abstract import Backend, IsolationLevel, TopicSpec
from consumer.backends.config import ClientConfig
from consumer.backends.confluent.config import RESTORE_OPTIONS, client_conf
from consumer.backends.confluent.consumer import ConfluentConsumer
from consumer.backends.confluent.errors import ErrorWatch, translated
from consumer.backends.confluent.producer import ConfluentProducer


class ConfluentBackend(Backend):
    """Consumers, producers and topic creation with confluent-kafka."""

    name = "confluent"
    group_instance_option = "group.instance.id"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def producer(self, transactional_id: str | None = None, **tuning: Any) -> ConfluentProducer:
        return ConfluentProducer(self.config, transactional_id, **tuning)

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        conf = client_conf(self.config)
        # Refused credentials or no broker: say so now, not after the topic-creation timeout.
        watch = ErrorWatch(self.config.bootstrap_servers)
        watch.check_reachable_with_admin(conf, self.config.connect_timeout_s)
        admin = AdminClient(conf)
        new = [NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config)) for s in specs]
        futures = admin.create_topics(new, operation_timeout=30) if new else {}
        for name, future in futures.items():
            with translated(f"creating topic {name!r}", self.config.bootstrap_servers):
                try:
                    future.result()
                except confluent_kafka.KafkaException as exc:
                    if exc.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                        raise

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        admin = AdminClient(client_conf(self.config))
        with translated("describing topics", self.config.bootstrap_servers):
            metadata = admin.list_topics(timeout=self.config.connect_timeout_s)
        known = metadata.topics
        return {t: len(known[t].partitions) if t in known and known[t].error is None else 0 for t in topics}

    def _new_consumer(
        self, group_id: str, isolation_level: IsolationLevel, tuning: dict[str, Any]
    ) -> ConfluentConsumer:
        return ConfluentConsumer(self.config, group_id, isolation_level, **tuning)

    def _restore_reader(self, isolation_level: IsolationLevel) -> ConfluentConsumer:
        # librdkafka wants a group id even for manual assignment; nothing is ever committed under it.
        return ConfluentConsumer(
            self.config, f"restore-{uuid.uuid4().hex}", isolation_level, **RESTORE_OPTIONS
        )
