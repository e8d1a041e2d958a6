"""The fault suite's private broker: ``deploy/kafka/local-kafka.sh`` on free ports, SCRAM listener on.

The shared development broker must never be stopped, so the tests that stop and start a broker, or
need a SCRAM listener, get this single-node broker for the whole session.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from waiting import wait_for

LOCAL_KAFKA = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "local-kafka.sh"
SCRAM_USER = "scorer"
SCRAM_PASSWORD = "fault-suite-secret"


@dataclass(frozen=True)
class OwnBroker:
    """A private broker this suite may stop and start; PLAINTEXT on ``port``, SCRAM on ``port + 2``."""

    port: int
    env: dict

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scram_bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port + 2}"

    def script(self, *verb: str) -> None:
        run_script(self.env, *verb)

    def stop_keeping_data(self) -> None:
        self.script("stop", "--keep-data")

    def resume(self) -> None:
        self.script("resume")


def run_script(env: dict, *verb: str) -> str:
    """Run a verb of local-kafka.sh; its stdout (``KAFKA_BOOTSTRAP_SERVERS=...`` after a start)."""
    done = subprocess.run(
        [str(LOCAL_KAFKA), *verb], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"local-kafka.sh {' '.join(verb)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def metadata_ready(bootstrap: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def coordinator_ready(bootstrap: str) -> bool:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        admin.list_group_offsets("fault-suite-warm-up")
        return True
    finally:
        admin.close()


def group_round_trip(bootstrap: str) -> bool:
    """One full consumer-group cycle on a fresh group: join, get a partition, read a record back.

    A broker that answers metadata may still be creating its offsets topic; the fault tests start
    once a group has really worked, so their timings measure the faults and not the broker's start.
    """
    topic, group = f"warm-up-{uuid.uuid4().hex[:8]}", f"warm-up-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, b"ping").get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=10_000,
    )  # fmt: skip
    try:
        return any(message.value == b"ping" for message in consumer)
    finally:
        consumer.close()


@pytest.fixture(scope="session")
def own_broker(tmp_path_factory):
    env = {
        **os.environ,
        "KAFKA_PORT": "auto",  # the script picks free client, controller and SCRAM ports and keeps them
        "KAFKA_LOCAL_DIR": str(tmp_path_factory.mktemp("own-kafka")),
        "KAFKA_SCRAM_USER": SCRAM_USER,
        "KAFKA_SCRAM_PASSWORD": SCRAM_PASSWORD,
    }
    printed = run_script(env, "start").strip().splitlines()[-1]
    broker = OwnBroker(int(printed.rsplit(":", 1)[1]), env)
    try:
        wait_for(lambda: metadata_ready(broker.bootstrap_servers), what="the fault suite's own broker")
        # The first group request creates the offsets topic; wait until its coordinator answers.
        wait_for(lambda: coordinator_ready(broker.bootstrap_servers), what="a group coordinator")
        wait_for(lambda: group_round_trip(broker.bootstrap_servers), timeout=120, what="a consumer group")
        yield broker
    finally:
        broker.script("stop")
