"""The kafka-python backend (the default client): consumers, producers and topic creation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from consumer.backends.abstract import Backend, IsolationLevel, TopicSpec
from consumer.backends.config import ClientConfig
from consumer.backends.kafka_python.auth import check_credentials
from consumer.backends.kafka_python.config import RESTORE_OPTIONS, client_options
from consumer.backends.kafka_python.consumer import KafkaPythonConsumer
from consumer.backends.kafka_python.errors import translated
from consumer.backends.kafka_python.producer import KafkaPythonProducer


class KafkaPythonBackend(Backend):
    """Consumers, producers and topic creation with kafka-python."""

    name = "kafka-python"
    group_instance_option = "group_instance_id"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._credentials_checked = False

    def producer(self, transactional_id: str | None = None, **tuning: Any) -> KafkaPythonProducer:
        self._check_credentials()
        return KafkaPythonProducer(self.config, transactional_id, **tuning)

    def ensure_topics(self, specs: Iterable[TopicSpec]) -> None:
        specs = list(specs)
        self._check_credentials()
        with translated("creating topics", self.config.bootstrap_servers):
            admin = KafkaAdminClient(**client_options(self.config))
            try:
                missing = [s for s in specs if s.name not in set(admin.list_topics())]
                if missing:
                    admin.create_topics(_new_topics(missing), wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass  # another instance created it between the listing and the creation
            finally:
                admin.close()

    def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        self._check_credentials()
        with translated("describing topics", self.config.bootstrap_servers):
            admin = KafkaAdminClient(**client_options(self.config))
            try:
                existing = set(admin.list_topics())
                described = admin.describe_topics([t for t in topics if t in existing])
            finally:
                admin.close()
        counts = {d["name"]: len(d.get("partitions") or ()) for d in described}
        return {t: counts.get(t, 0) for t in topics}

    def _new_consumer(
        self, group_id: str, isolation_level: IsolationLevel, tuning: dict[str, Any]
    ) -> KafkaPythonConsumer:
        self._check_credentials()
        return KafkaPythonConsumer(self.config, group_id, isolation_level, **tuning)

    def _restore_reader(self, isolation_level: IsolationLevel) -> KafkaPythonConsumer:
        self._check_credentials()
        return KafkaPythonConsumer(self.config, None, isolation_level, **RESTORE_OPTIONS)

    def _check_credentials(self) -> None:
        """Refused SASL credentials raise AuthenticationError at once (see :mod:`.auth`)."""
        if not self._credentials_checked:
            check_credentials(self.config, client_options(self.config))
            self._credentials_checked = True


def _new_topics(specs: Sequence[TopicSpec]) -> dict[str, dict[str, Any]]:
    return {
        s.name: {
            "num_partitions": s.partitions,
            "replication_factor": s.replication_factor,
            "configs": dict(s.config),
        }
        for s in specs
    }
