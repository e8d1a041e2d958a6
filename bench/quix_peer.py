"""The same job written with Quix Streams (PyPI ``quixstreams``), the peer to compare against.

Per record: decode with ``model.events``, fold into the customer's state with ``model.features``
(kept in Quix's RocksDB state store, changelogged to Kafka like ours), score with the same
``SegmentModel`` (numpy fast path, one row), and publish a segment update JSON to an output topic.
Quix processes record by record, so it scores once per event where our scorer scores each changed
customer once per batch; the output topic ends with the same latest segment per customer.

The clock runs from the first record processed to the last, as for our scorer.
"""

from __future__ import annotations

import logging
import tempfile
import time

from bench.peer_update import peer_update
from bench.workload import unique
from consumer.backends import ClientConfig
from model.events import decode_event
from model.features import initialize, update

STATE_KEY = "customer"


def quix_rate(config: ClientConfig, topic: str, model, count: int, guarantee: str = "at-least-once") -> dict:
    """Events/s of the Quix Streams peer over the first ``count`` records of ``topic``."""
    from quixstreams import Application

    clock: list[float] = []
    schema_hash = model.spec.schema_hash()

    def score(value: bytes, state) -> bytes:
        now = time.perf_counter()
        if not clock:
            clock.append(now)
        event = decode_event(value)
        stored = state.get(STATE_KEY)
        # Quix state values are JSON; latin-1 carries our compact bytes through unchanged.
        customer = update(initialize() if stored is None else stored.encode("latin-1"), event)
        state.set(STATE_KEY, customer.decode("latin-1"))
        update_json = peer_update(model, schema_hash, event.customer_id, customer)
        clock[1:] = [time.perf_counter()]
        return update_json

    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        app = Application(
            broker_address=config.bootstrap_servers,
            consumer_group=unique("bench-quix"),
            auto_offset_reset="earliest",
            processing_guarantee=guarantee,
            state_dir=state_dir,
            loglevel=logging.WARNING,
        )
        source = app.topic(topic, key_deserializer="bytes", value_deserializer="bytes")
        sink = app.topic(unique(f"{topic}-quix-out"), key_serializer="bytes", value_serializer="bytes")
        sdf = app.dataframe(source).apply(score, stateful=True)
        sdf.to_topic(sink)
        app.run(count=count, collect=False)
    seconds = clock[-1] - clock[0]
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": count / seconds}
