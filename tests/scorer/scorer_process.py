"""Helpers for tests that run the scorer as a process and judge what it wrote to Kafka.

Shared by the crash-recovery tests here and the fault suite (``tests/faults``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient
from waiting import wait_for

from consumer.backends import TopicPartition, TopicSpec
from consumer.processor import Topics
from consumer.state_store import Entry


def topics_named(name: str) -> Topics:
    """Fresh input, output, dead-letter and changelog topic names for one test."""
    return Topics(f"{name}-in", f"{name}-out", f"{name}-dlq", f"{name}-state")


def replayed(backend, name: str, pairs: Iterable[tuple[bytes | None, bytes]]) -> Topics:
    """Fresh topics for one test, with ``pairs`` (key, value) produced to the 3-partition input."""
    topics = topics_named(name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topics.input, key, value)
        producer.flush()
    return topics


def kill_repeatedly(
    command: list[str], bootstrap: str, group: str, next_mark: Callable[[int], int], times: int
) -> list[int]:
    """Run the scorer ``times`` times, SIGKILLing each run once the group committed ``next_mark(last)``.

    ``last`` is what was committed after the previous kill (0 at first). Returns the committed count
    right after each kill, so a test can show the kills landed mid-stream.
    """
    at_kill: list[int] = []
    for _ in range(times):
        mark = next_mark(at_kill[-1] if at_kill else 0)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(
                lambda m=mark: committed_total(bootstrap, group) >= m, timeout=90, what=f"{mark} committed"
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        at_kill.append(committed_total(bootstrap, group))
    return at_kill


def scorer_command(
    bootstrap: str, model_dir, topics: Topics, group: str, exactly_once: bool, *extra: str
) -> list[str]:
    """`segmenter consume` for ``topics`` that exits once the input is consumed; ``extra`` flags appended."""
    command = [
        sys.executable, "-m", "deploy.cli", "consume",
        "--bootstrap-servers", bootstrap, "--model-dir", str(model_dir), "--group-id", group,
        "--input-topic", topics.input, "--output-topic", topics.output, "--dlq-topic", topics.dead_letter,
        "--changelog-topic", topics.changelog, "--batch-size", "20", "--metrics-port", "0",
        "--exit-when-idle",
    ]  # fmt: skip
    command += ["--exactly-once"] if exactly_once else []
    return [*command, *extra]


def committed_total(bootstrap: str, group: str) -> int:
    """Sum of the group's committed next-offsets over all partitions (= records it has finished)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        admin.close()


def read(backend, topic: str, isolation: str = "read_committed", partitions: int = 3):
    """Every record of ``topic`` as a reader with ``isolation`` sees it."""
    return list(
        backend.read_partitions(
            [TopicPartition(topic, p) for p in range(partitions)], isolation_level=isolation
        )
    )


def changelog_states(records) -> dict[str, bytes]:
    """The compacted view of a changelog: the last state per customer."""
    return {r.key.decode(): Entry.from_bytes(r.value).state for r in records if not r.key.startswith(b"\x00")}


def repeated_effects(values: Iterable[bytes]) -> dict[tuple[str, int, int | str, str], list[dict]]:
    """Segment updates grouped by (customer, source partition, source offset, reason), where seen more
    than once. One record may cause two updates of one customer: the ageing tick it crossed, then the
    customer's own event. An update no record caused (a model-change sweep, a wall-clock tick) is
    keyed by its ``as_of`` instead of a source (partition -1)."""
    by_event: dict[tuple[str, int, int | str, str], list[dict]] = defaultdict(list)
    for value in values:
        if value is None:  # a tombstone (erase, state TTL) carries no source
            continue
        body = json.loads(value)
        source = body["source"] or {"partition": -1, "offset": body["as_of"]}
        by_event[(body["customer_id"], source["partition"], source["offset"], body["reason"])].append(body)
    return {key: bodies for key, bodies in by_event.items() if len(bodies) > 1}


def differing_reemits(
    repeated: dict[tuple[str, int, int, str], list[dict]],
) -> list[tuple[str, int, int, str]]:
    """The repeated events whose updates differ in anything but the wall-clock ``scored_at``."""

    def stable(body: dict) -> dict:
        return {k: v for k, v in body.items() if k != "scored_at"}

    return [key for key, bodies in repeated.items() if any(stable(b) != stable(bodies[0]) for b in bodies)]
