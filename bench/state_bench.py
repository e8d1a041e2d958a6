"""Per-customer state at scale: memory per tracked customer, and restore rate from the changelog.

Memory: ``customers`` distinct customer ids, each with its own copy of a real entry (the states of the
benchmark's synthetic customers, cycled), put into a :class:`StateStore` over three partitions;
``tracemalloc`` counts every byte allocated for them (ids, entries, dicts).

Restore: the same entries are written to a compacted 3-partition changelog topic, then read back into
a fresh store with each client's backend, exactly as the scorer does when partitions are assigned.
"""

from __future__ import annotations

import random
import time
import tracemalloc
import zlib
from contextlib import closing

from bench.workload import produce, unique
from consumer.backends import ClientConfig, TopicPartition, TopicSpec, make_backend
from consumer.state_restore import judge
from consumer.state_store import Entry, StateStore
from model.events import Event, decode_event
from model.features import aggregate_history, initialize, table_columns, update
from model.spec import FeatureSpec

PARTITIONS = 3


def sample_entries(pairs, limit: int = 20_000) -> list[bytes]:
    """Encoded entries of the real customers in ``pairs`` (at most ``limit``)."""
    states = aggregate_history(decode_event(value) for _, value in pairs)
    return [Entry(state, last_offset=1_000_000, last_segment=2).to_bytes() for state in states.values()][
        :limit
    ]


TABLE_SPEC = FeatureSpec(  # a 12-column customer table, none of them computed by the aggregator
    "member_id",
    numeric=("household_size", "tenure_months", "orders_12m", "spend_12m", "days_since_last_order",
             "returns_12m", "visits_30d", "children", "credit_limit"),
    categorical=("region", "channel", "plan"),
)  # fmt: skip


def table_sample_entries(limit: int = 2_000) -> list[bytes]:
    """Entries of customers whose profile events set all 12 columns of ``TABLE_SPEC`` (and a purchase)."""
    table = table_columns(TABLE_SPEC)
    rng = random.Random(7)
    entries = []
    for i in range(limit):
        values = {name: float(rng.randint(0, 5000)) for name in TABLE_SPEC.numeric}
        values["region"] = rng.choice(["north", "south", "east", "west"])
        values["channel"] = rng.choice(["store", "online", "mixed"])
        values["plan"] = rng.choice(["basic", "plus"])
        ts = 1_700_000_000_000 + i
        state = update(initialize(), Event(f"p{i}", f"m{i}", "profile", ts, attributes=values), table)
        state = update(state, Event(f"b{i}", f"m{i}", "purchase", ts, amount=12.5), table)
        entries.append(Entry(state, last_offset=1_000_000, last_segment=2).to_bytes())
    return entries


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
        # what the scorer's restore does (consumer.partition_restore): read, judge, then own
        with closing(backend.read_partitions([TopicPartition(topic, partition)], timeout_s=600)) as records:
            restored += store.restore(judge(partition, records))
    seconds = time.perf_counter() - started
    return {
        "customers": len(store),
        "records": restored,
        "seconds": round(seconds, 3),
        "per_s": restored / seconds,
    }
