"""The same job written with Bytewax (PyPI ``bytewax``, a Rust dataflow engine with a Python API).

Per record: decode with ``model.events``, fold into the customer's state with ``model.features``,
score with the same ``SegmentModel`` (numpy fast path, one row), and publish a segment update JSON to
an output topic, through Bytewax's own Kafka source and sink (``bytewax.connectors.kafka``, on
confluent-kafka). One worker, in this process (``bytewax.testing.run_main``).

The state is Bytewax's in-memory ``stateful_map`` keyed by customer id, with no recovery configured:
nothing is snapshotted or changelogged, where ours and Quix write every state change to a Kafka
changelog. That favours Bytewax; the comparison is still the one a user would make out of the box.
Like Quix it scores once per event, where our scorer scores each changed customer once per batch.

The source reads the topic from the beginning without tailing (``tail=False``: each partition ends
at its end offset) and stops after ``count`` records in all, counted across partitions in the order
they are consumed, as Quix's ``run(count=...)`` does. The clock runs from the first record processed
to the last, as for our scorer and the Quix peer.
"""

from __future__ import annotations

import time

from bench.peer_update import peer_update
from bench.workload import unique
from consumer.backends import ClientConfig
from model.events import decode_event
from model.features import initialize, update


def bytewax_rate(config: ClientConfig, topic: str, model, count: int) -> dict:
    """Events/s of the Bytewax peer over the first ``count`` records of ``topic``."""
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage
    from bytewax.dataflow import Dataflow
    from bytewax.testing import run_main

    clock: list[float] = []
    schema_hash = model.spec.schema_hash()

    def score(stored: bytes | None, message) -> tuple[bytes, KafkaSinkMessage]:
        now = time.perf_counter()
        if not clock:
            clock.append(now)
        event = decode_event(message.value)
        customer = update(initialize() if stored is None else stored, event)
        update_json = peer_update(model, schema_hash, event.customer_id, customer)
        clock[1:] = [time.perf_counter()]
        return customer, KafkaSinkMessage(message.key, update_json)

    brokers = config.bootstrap_servers.split(",")
    flow = Dataflow(unique("bench-bytewax"))
    records = op.input("in", flow, _capped_source(brokers, topic, count))
    # The record key is the customer id (bench.workload), as the Quix peer's state key is.
    keyed = op.key_on("customer", records, lambda message: message.key.decode())
    updates = op.key_rm("unkey", op.stateful_map("score", keyed, score))
    op.output("out", updates, KafkaSink(brokers, unique(f"{topic}-bytewax-out")))
    run_main(flow)
    if len(clock) < 2:
        raise RuntimeError(f"the Bytewax peer processed {len(clock)} record(s) of {topic!r}, not {count}")
    seconds = clock[-1] - clock[0]
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": count / seconds}


def _capped_source(brokers: list[str], topic: str, count: int):
    """Bytewax's ``KafkaSource`` over ``topic`` from the start, ending after ``count`` records in all.

    ``tail=False`` alone ends each partition at its end offset, i.e. reads the whole topic; the cap
    (one budget shared by the partitions, which all live on the one worker) makes ``--quix-events``
    style partial runs possible. A partition whose share is spent raises ``StopIteration``, which is
    how a Bytewax source says it is complete; the dataflow ends when every partition has.
    """
    from bytewax.connectors.kafka import KafkaSource
    from bytewax.inputs import StatefulSourcePartition

    budget = [count]

    class Capped(StatefulSourcePartition):
        def __init__(self, inner):
            self._inner = inner

        def next_batch(self):
            if budget[0] <= 0:
                raise StopIteration
            batch = self._inner.next_batch()[: budget[0]]
            budget[0] -= len(batch)
            return batch

        def next_awake(self):
            return self._inner.next_awake()

        def snapshot(self):
            return self._inner.snapshot()

        def close(self):
            self._inner.close()

    class CappedKafkaSource(KafkaSource):
        def build_part(self, step_id, for_part, resume_state):
            return Capped(super().build_part(step_id, for_part, resume_state))

    return CappedKafkaSource(brokers, [topic], tail=False)
