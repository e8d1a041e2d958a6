"""The baseline in the style of the original project: for each message, parse it, update the customer,
build a one-row DataFrame and call ``pipeline.predict``, then send the result.

It uses the same events, the same aggregator (``model.features``) and the same fitted pipeline as the
scorer; only the shape of the loop differs. At a few hundred events/s it is measured on the first
``limit`` events of the topic (the rate does not depend on how many).
"""

from __future__ import annotations

import json
import time

import pandas as pd
from kafka import KafkaConsumer, KafkaProducer

from bench.workload import unique
from consumer.backends import ClientConfig
from model.events import decode_event
from model.features import features, initialize, last_event_ms, update


def naive_rate(config: ClientConfig, topic: str, model, limit: int) -> dict:
    """Events/s of the per-event ``predict`` loop over the first ``limit`` events of ``topic``."""
    pipeline, columns = model.pipeline, list(model.spec.feature_names)
    ids = model.segment_ids  # publish stable segment ids, as the scorer does
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=config.bootstrap_servers,
        group_id=unique("bench-naive"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers)
    out = f"{topic}-naive-out"
    states: dict[str, bytes] = {}
    seen, started = 0, None
    try:
        for message in consumer:
            if started is None:
                started = time.perf_counter()
            event = decode_event(message.value)
            state = update(states.get(event.customer_id, initialize()), event)
            states[event.customer_id] = state
            row = pd.DataFrame([features(state, last_event_ms(state))])[columns]
            segment = ids[int(pipeline.predict(row)[0])]
            body = {"customer_id": event.customer_id, "segment_id": segment}
            producer.send(out, key=message.key, value=json.dumps(body).encode())
            seen += 1
            if seen >= limit:
                break
        producer.flush()
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
        producer.close()
    return {"events": seen, "seconds": round(seconds, 3), "events_per_s": seen / seconds}
