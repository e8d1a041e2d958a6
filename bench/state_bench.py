"""Per-customer state at scale: memory per tracked customer, and restore rate from the changelog.

Memory: ``customers`` distinct customer ids, each with its own copy of a real entry (the states of the
benchmark's synthetic customers, cycled), put into a :class:`StateStore` over three partitions;
``tracemalloc`` counts every byte allocated for them (ids, entries, dicts).

Restore: the same entries are written to a compacted 3-partition changelog topic, then read back into
a fresh store with each client's backend, exactly as the scorer does when partitions are assigned.
"""

from __future__ import annotations

import time
import tracemalloc
import zlib

from bench.workload import produce, unique
from consumer.backends import ClientConfig, TopicPartition, TopicSpec, make_backend
from consumer.state_store import Entry, StateStore
from model.events import decode_event
from model.features import aggregate_history

PARTITIONS = 3


def sample_entries(pairs, limit: int = 20_000) -> list[bytes]:
    """Encoded entries of the real customers in ``pairs`` (at most ``limit``)."""
    states = aggregate_history(decode_event(value) for _, value in pairs)
    return [Entry(state, last_offset=1_000_000, last_segment=2).to_bytes() for state in states.values()][
        :limit
    ]


def _customers(samples: list[bytes], count: int):
    for i in range(count):
        raw = samples[i % len(samples)]
        customer_id = f"cust-{i:08d}"
        # A fresh bytes object per customer (slicing copies), as entries read from Kafka are.
        yield zlib.crc32(customer_id.encode()) % PARTITIONS, customer_id, raw[:1] + raw[1:]


def memory_per_customer(samples: list[bytes], count: int) -> dict:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = StateStore()
        for partition in range(PARTITIONS):
            store.assign(partition)
        for partition, customer_id, raw in _customers(samples, count):
            store.put_many(partition, {customer_id: raw})
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    entry_bytes = sum(len(s) for s in samples) / len(samples)
    return {"customers": len(store), "bytes_per_customer": used / count, "entry_bytes": entry_bytes}


def write_changelog(config: ClientConfig, samples: list[bytes], count: int) -> str:
    topic = unique("bench-changelog")
    make_backend("confluent", config).ensure_topics(
        [TopicSpec(topic, PARTITIONS, config={"cleanup.policy": "compact"})]
    )
    produce(config, topic, ((cid.encode(), raw) for _, cid, raw in _customers(samples, count)), PARTITIONS)
    return topic


def restore_rate(config: ClientConfig, client: str, topic: str) -> dict:
    backend = make_backend(client, config)
    store = StateStore()
    started = time.perf_counter()
    restored = 0
    for partition in range(PARTITIONS):
        records = backend.read_partitions([TopicPartition(topic, partition)], timeout_s=600)
        restored += store.restore(partition, ((r.key, r.value) for r in records))
    seconds = time.perf_counter() - started
    return {
        "customers": len(store),
        "records": restored,
        "seconds": round(seconds, 3),
        "per_s": restored / seconds,
    }
