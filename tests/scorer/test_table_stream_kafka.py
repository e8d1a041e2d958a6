"""A table-trained model fed by a profile/CDC stream through the real broker and the real CLI.

``segmenter consume --model-dir TABLE_MODEL`` used to exit 2 (the model's schema was not the event
model's). Here it consumes full-row profile events of the README's customer table, partial updates
(one column at a time, some older than what they would overwrite), a bad value and an attribute no
column uses; its output equals an uninterrupted in-process run over the same partitions, record for
record, and file mode over one partition's records reproduces that partition's Kafka output.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from scorer_fixtures import EXAMPLES, same_records, updates_by_customer
from scorer_process import read, replayed, scorer_command

from consumer.backends import ClientConfig, make_backend
from consumer.model_source import ModelSource
from consumer.outputs import DLQ_ERROR, DLQ_REASON

pytestmark = pytest.mark.kafka

T0 = 1_700_000_000_000


def _event(customer: str, n: int, ts_ms: int, attributes: dict) -> tuple[bytes, bytes]:
    body = {"event_id": f"{customer}-{n}", "customer_id": customer, "type": "profile", "ts": ts_ms,
            "attributes": attributes}  # fmt: skip
    return customer.encode(), json.dumps(body).encode()


def cdc_stream(rows: int = 240) -> list[tuple[bytes, bytes]]:
    table = pd.read_csv(EXAMPLES / "customers.csv", dtype={"plan": str, "region": str}).head(rows)
    pairs = []
    for i, row in enumerate(table.to_dict(orient="records")):
        customer = row.pop("account_id")
        pairs.append(_event(customer, 0, T0 + i * 1000, {k: v for k, v in row.items() if not pd.isna(v)}))
    for i, customer in enumerate(table["account_id"][:60]):
        pairs.append(_event(customer, 1, T0 + 10_000_000 + i, {"spend_12m": 5000.0 + i, "loyalty": "gold"}))
        pairs.append(_event(customer, 2, T0 - 5_000, {"plan": "enterprise"}))  # older: changes nothing
    pairs.append(_event("acct-0001", 3, T0 + 20_000_000, {"support_tickets": 1e6}))  # above the maximum
    return pairs


def test_a_table_model_scores_a_profile_stream_through_the_cli(kafka, unique_name, table_model_dir, tmp_path):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    pairs = cdc_stream()
    topics = replayed(backend, unique_name, pairs)
    command = scorer_command(kafka.bootstrap_servers, table_model_dir, topics, unique_name, False)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    model = ModelSource(table_model_dir)
    assert same_records(model, backend, topics)
    outputs = read(backend, topics.output)
    assert len(outputs) == len(pairs) - 1  # one update per valid event (emit-only-on-change is off)
    assert len({json.loads(r.value)["segment_id"] for r in outputs}) > 1
    (dead,) = read(backend, topics.dead_letter)
    assert dict(dead.headers)[DLQ_REASON] == b"bad_value"
    assert b"attributes.support_tickets" in dict(dead.headers)[DLQ_ERROR]
    assert "profile attribute 'loyalty' is neither a column" in done.stderr

    # File mode (the CLI again) over one partition's records gives that partition's Kafka output.
    inputs = [r for r in read(backend, topics.input) if r.partition == 1]
    source, sink = tmp_path / "p1.jsonl", tmp_path / "p1-out.jsonl"
    source.write_bytes(b"".join(r.value + b"\n" for r in inputs))
    file_mode = [sys.executable, "-m", "deploy.cli", "consume", "--model-dir", str(table_model_dir),
                 "--source", f"file:{source}", "--sink", f"file:{sink}"]  # fmt: skip
    assert subprocess.run(file_mode, capture_output=True, timeout=120).returncode == 0
    keys = {r.key for r in inputs}
    through_kafka = updates_by_customer((r.key, _no_source(r.value)) for r in outputs if r.key in keys)
    in_file_mode = updates_by_customer(
        (json.loads(line)["customer_id"].encode(), _no_source(line))
        for line in sink.read_bytes().splitlines()
    )
    assert in_file_mode == through_kafka


def _no_source(value: bytes) -> bytes:
    body = json.loads(value)
    body.pop("source")
    return json.dumps(body).encode()
