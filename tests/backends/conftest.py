"""Fixtures of the backend contract suite: every test runs once per backend.

``memory`` needs no broker; ``kafka-python`` and ``confluent`` use the session ``kafka`` fixture.
Clients made through ``clients`` are closed at teardown even when a test fails, so a failed test
never leaves a member behind in a group.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from consumer.backends import Backend, ClientConfig, Consumer, Producer, Record, TopicSpec, make_backend

KAFKA_BACKENDS = ("kafka-python", "confluent")


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kafka-python", marks=pytest.mark.kafka),
        pytest.param("confluent", marks=pytest.mark.kafka),
    ]
)
def backend(request) -> Backend:
    """The backend under test."""
    if request.param == "memory":
        return make_backend("memory")
    broker = request.getfixturevalue("kafka")
    return make_backend(request.param, ClientConfig(broker.bootstrap_servers, client_id="contract-tests"))


@pytest.fixture
def new_topic(backend: Backend, unique_name: str) -> Callable[..., str]:
    """Create a fresh topic with ``backend.ensure_topics``: ``new_topic(partitions, suffix, **config)``."""

    def create(partitions: int = 3, suffix: str = "", **config: str) -> str:
        name = f"t-{unique_name}{suffix}"
        backend.ensure_topics([TopicSpec(name, partitions, config=config)])
        return name

    return create


class Clients:
    """Makes consumers and producers of one backend, closes them all at the end, polls with deadlines."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._open: list[Consumer | Producer] = []

    def consumer(self, group_id: str, **kwargs) -> Consumer:
        consumer = self.backend.consumer(group_id, **kwargs)
        self._open.append(consumer)
        return consumer

    def producer(self, **kwargs) -> Producer:
        producer = self.backend.producer(**kwargs)
        self._open.append(producer)
        return producer

    def close(self, client: Consumer | Producer) -> None:
        self._open.remove(client)
        client.close()

    def close_all(self) -> None:
        while self._open:
            self._open.pop().close()

    @staticmethod
    def poll_until(
        consumer: Consumer, count: int, timeout_s: float = 30.0, max_records: int = 500
    ) -> list[Record]:
        """Poll until ``count`` records arrived (poll's timeout is the wait); fail after ``timeout_s``."""
        got: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(got)} of {count} records arrived in {timeout_s}s")
            got.extend(consumer.poll(max_records=min(max_records, count - len(got)), timeout_s=0.5))
        return got

    @staticmethod
    def poll_while(
        consumers: list[Consumer], condition: Callable[[], bool], timeout_s: float = 60.0
    ) -> list[Record]:
        """Poll every consumer in turn until ``condition()`` holds; return what was polled meanwhile."""
        got: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached in {timeout_s}s")
            for consumer in consumers:
                got.extend(consumer.poll(max_records=500, timeout_s=0.2))
        return got


@pytest.fixture
def clients(backend: Backend) -> Iterator[Clients]:
    made = Clients(backend)
    yield made
    made.close_all()
