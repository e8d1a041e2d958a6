"""Session-wide fixtures.

The ``kafka`` fixture is a real Apache Kafka broker, found in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set (``make test`` starts the local broker and sets it);
2. otherwise ``deploy/kafka/local-kafka.sh`` starts a private broker for this session and stops it after;
3. ``SEGMENTER_TEST_KAFKA=testcontainers`` uses testcontainers' Kafka module (needs a Docker engine).

Readiness is waited on (the script returns once the broker logs "Kafka Server started", and the
fixture then completes a metadata request); nothing sleeps.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO / "deploy" / "kafka" / "local-kafka.sh"


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap_servers: str

    def admin(self):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id="tests-admin")

    def create_topic(self, name: str, partitions: int = 3, **config: str) -> str:
        from kafka.admin import NewTopic

        admin = self.admin()
        try:
            admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or None)])
        finally:
            admin.close()
        wait_for(lambda: self._has_leaders(name, partitions), what=f"leaders for topic {name}")
        return name

    def _has_leaders(self, topic: str, partitions: int) -> bool:
        admin = self.admin()
        try:
            described = admin.describe_topics([topic])
        finally:
            admin.close()
        parts = described[0].get("partitions", []) if described else []
        return len(parts) == partitions and all(p.get("leader_id", -1) >= 0 for p in parts)


def _metadata_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-ready", request_timeout_ms=5000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[KafkaBroker]:
    """A real broker for the whole session (see the module docstring)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        wait_for(lambda: _metadata_ready(bootstrap), what=f"broker at {bootstrap}")
        yield KafkaBroker(bootstrap)
        return
    if os.environ.get("SEGMENTER_TEST_KAFKA") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaBroker(container.get_bootstrap_server())
        return
    env = {**os.environ, "KAFKA_PORT": "auto", "KAFKA_LOCAL_DIR": str(tmp_path_factory.mktemp("kafka"))}
    started = subprocess.run(
        [str(LOCAL_KAFKA), "start"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"local Kafka did not start:\n{started.stderr}", pytrace=False)
    bootstrap = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        wait_for(lambda: _metadata_ready(bootstrap), what=f"broker at {bootstrap}")
        yield KafkaBroker(bootstrap)
    finally:
        subprocess.run([str(LOCAL_KAFKA), "stop"], env=env, capture_output=True, timeout=120, check=False)


@pytest.fixture
def unique_name(request) -> str:
    """A name no other test uses: the test's own name plus a random suffix."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:60]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic(kafka: KafkaBroker, unique_name: str) -> str:
    """A fresh 3-partition topic for this test."""
    return kafka.create_topic(f"t-{unique_name}", partitions=3)


@pytest.fixture
def group_id(unique_name: str) -> str:
    return f"g-{unique_name}"
