"""A table-trained model fed by a profile/CDC stream through the real broker and the real CLI.

``segmenter consume --model-dir TABLE_MODEL`` used to exit 2 (the model's schema was not the event
model's). Here the model of the shoppers example (the aggregator's age, income and gender beside nine
table columns) consumes full-row profile events of its table, partial updates (one column at a time,
some older than what they would overwrite), a bad value and an attribute no column uses; its output
equals an uninterrupted in-process run over the same partitions, record for record, its segments are
the ones the model gives the same table rows, and file mode over one partition's records reproduces
that partition's Kafka output.
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


def shoppers(rows: int = 300) -> pd.DataFrame:
    categorical = {"gender": str, "region": str, "channel": str}
    return pd.read_csv(EXAMPLES / "shoppers.csv", dtype={"member_id": str, **categorical}).head(rows)


def cdc_stream(table: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    pairs = []
    for i, row in enumerate(table.to_dict(orient="records")):
        customer = row.pop("member_id")
        pairs.append(_event(customer, 0, T0 + i * 1000, {k: v for k, v in row.items() if not pd.isna(v)}))
    for i, customer in enumerate(table["member_id"][:60]):
        pairs.append(_event(customer, 1, T0 + 10_000_000 + i, {"visits_30d": 3 + i % 5, "loyalty": "gold"}))
        pairs.append(_event(customer, 2, T0 - 5_000, {"channel": "store"}))  # older: changes nothing
    pairs.append(_event("mem-00001", 3, T0 + 20_000_000, {"returns_12m": 1e6}))  # above the maximum
    return pairs


def test_a_table_model_scores_a_profile_stream_through_the_cli(
    kafka, unique_name, shoppers_model_dir, tmp_path
):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    table = shoppers()
    pairs = cdc_stream(table)
    topics = replayed(backend, unique_name, pairs)
    command = scorer_command(kafka.bootstrap_servers, shoppers_model_dir, topics, unique_name, False)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    model = ModelSource(shoppers_model_dir)
    assert same_records(model, backend, topics)
    outputs = read(backend, topics.output)
    assert len(outputs) == len(pairs) - 1  # one update per valid event (emit-only-on-change is off)
    first = {}
    for record in outputs:
        first.setdefault(record.key.decode(), json.loads(record.value)["segment_id"])
    expected = model().score(table.drop(columns="member_id").to_dict(orient="records"))
    assert [first[cid] for cid in table["member_id"]] == [a.segment_id for a in expected]
    assert len(set(first.values())) == 4
    (dead,) = read(backend, topics.dead_letter)
    assert dict(dead.headers)[DLQ_REASON] == b"bad_value"
    assert b"attributes.returns_12m" in dict(dead.headers)[DLQ_ERROR]
    assert "profile attribute 'loyalty' is neither a column" in done.stderr

    # File mode (the CLI again) over one partition's records gives that partition's Kafka output.
    inputs = [r for r in read(backend, topics.input) if r.partition == 1]
    source, sink = tmp_path / "p1.jsonl", tmp_path / "p1-out.jsonl"
    source.write_bytes(b"".join(r.value + b"\n" for r in inputs))
    file_mode = [sys.executable, "-m", "deploy.cli", "consume", "--model-dir", str(shoppers_model_dir),
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
