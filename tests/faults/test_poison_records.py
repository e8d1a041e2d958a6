"""Poison records through the real broker: one bad record never stops the scorer, and what it means
(a dead letter, an erasure, a duplicate) survives the trip through Kafka.

- an event of 3 MB that the broker accepted gzip-compressed becomes a cut, hashed dead letter
  (the scorer once died producing it whole: MessageSizeTooLargeError);
- profile attributes nested ~1000 deep are dead letters, not a RecursionError;
- records without a key are dead letters (``missing_key``) unless ``allow_keyless``;
- an ``erase`` tombstones the customer on the output and changelog topics, and a restart restores
  the customer as gone;
- an event re-sent with the same ``event_id`` is counted once.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from kafka import KafkaProducer
from scorer_fixtures import final_updates
from scorer_process import read, replayed

from consumer.backends import ClientConfig, make_backend
from consumer.outputs import DLQ_MAX_BYTES, DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from consumer.runner import RunnerSettings, ScorerRunner
from consumer.state_store import Entry
from model.events import DEFAULT_MIN_EVENT_MS, Event, encode_event, format_ts
from model.features import features, last_event_ms

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

T0 = 1_700_000_000_000  # 2023-11-14: after DEFAULT_MIN_EVENT_MS (1990), not in the future
assert DEFAULT_MIN_EVENT_MS <= T0
BIG_BYTES = 3 * 1024 * 1024


def purchase(customer: str, n: int, amount: float = 20.0, event_id: str | None = None):
    """One keyed, valid purchase of ``customer``: its ``n``-th, one hour after the previous."""
    event = Event(event_id or f"{customer}-e{n}", customer, "purchase", T0 + n * 3_600_000, amount=amount)
    return customer.encode(), encode_event(event)


def erase(customer: str, n: int):
    ts = T0 + n * 3_600_000
    body = {"event_id": f"{customer}-erase", "customer_id": customer, "type": "erase", "ts": ts}
    return customer.encode(), json.dumps(body).encode()


def nested(depth: int) -> str:
    """``{"x":{"x":...{"x":1}...}}``: ``depth`` objects deep."""
    return '{"x":' * depth + "1" + "}" * depth


def deep_profile(depth: int):
    customer = f"deep-{depth}"
    head = f'{{"event_id":"{customer}-e","customer_id":"{customer}","type":"profile","ts":{T0},'
    # Nested under ``age``, a checked attribute: the dead letter's message must quote it safely.
    return customer.encode(), f'{head}"attributes":{{"age":{nested(depth)}}}}}'.encode()


def produce(backend, topic: str, pairs) -> None:
    with backend.producer() as producer:
        for key, value in pairs:
            producer.produce(topic, key, value)
        producer.flush()


def score_to_idle(backend, model, topics, group: str, **settings) -> ScorerRunner:
    runner = ScorerRunner(
        backend, RunnerSettings(group_id=group, topics=topics, exit_when_idle=True, **settings), model
    )
    runner.run()
    return runner


def last_by_key(records) -> dict[bytes, bytes | None]:
    """The compacted view of a topic: the last value per customer (a key lives on one partition); the
    changelog's NUL-prefixed keys (partition clock, online model) are not customers."""
    return {r.key: r.value for r in records if not r.key.startswith(b"\x00")}


def updates_of(records, customer: str) -> list[dict]:
    return [json.loads(r.value) for r in records if r.key == customer.encode() and r.value is not None]


def frequency(changelog_value: bytes) -> float:
    """The purchase count of the customer state in a changelog value."""
    state = Entry.from_bytes(changelog_value).state
    return features(state, last_event_ms(state))["frequency"]


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_a_gzip_compressed_oversize_event_becomes_a_truncated_dead_letter(
    kafka, model_source, unique_name, client
):
    backend = make_backend(client, ClientConfig(kafka.bootstrap_servers))
    before = [purchase(f"before-{i}", 1) for i in range(4)]
    topics = replayed(backend, unique_name, before)

    body = {
        "event_id": "big-e1",
        "customer_id": "big",
        "type": "purchase",
        "ts": T0,
        "amount": 12.5,
        "padding": "0123456789abcdef" * (BIG_BYTES // 16),
    }
    big = json.dumps(body).encode()
    assert len(big) >= BIG_BYTES, "3 MB uncompressed, as the producer that broke the scorer sent it"
    raw = KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, compression_type="gzip", max_request_size=8 * 1024 * 1024
    )
    try:
        sent = raw.send(topics.input, key=b"big", value=big).get(timeout=60)
        raw.flush()
    finally:
        raw.close()

    after = [purchase("big", 2), *(purchase(f"after-{i}", 1) for i in range(3))]
    produce(backend, topics.input, after)

    runner = score_to_idle(backend, model_source, topics, f"g-{unique_name}")  # must not raise

    summary = runner.summary
    assert summary.events == len(before) + 1 + len(after)
    assert summary.dead_letters == 1
    assert summary.valid == len(before) + len(after), "the events after the oversize one are scored"

    letters = read(backend, topics.dead_letter)
    assert len(letters) == 1
    letter = letters[0]
    headers = dict(letter.headers)
    assert headers[DLQ_REASON] == b"too_large"
    assert headers["dlq.truncated"] == b"true"
    assert headers["dlq.original_size"] == str(len(big)).encode()
    assert headers["dlq.sha256"] == hashlib.sha256(big).hexdigest().encode()
    assert len(letter.value) == DLQ_MAX_BYTES == 65_536
    assert letter.value == big[:DLQ_MAX_BYTES]
    assert letter.key == b"big"
    assert headers[DLQ_TOPIC] == topics.input.encode()
    assert (int(headers[DLQ_PARTITION]), int(headers[DLQ_OFFSET])) == (sent.partition, sent.offset)

    output = read(backend, topics.output)
    scored = final_updates([r.value for r in output])
    assert set(scored) == {f"before-{i}" for i in range(4)} | {f"after-{i}" for i in range(3)} | {"big"}
    # The big customer's next event, behind the poison record on the same partition, was scored.
    (update,) = updates_of(output, "big")
    assert update["source"]["partition"] == sent.partition
    assert update["source"]["offset"] > sent.offset
    state = last_by_key(read(backend, topics.changelog))
    assert frequency(state[b"big"]) == 1.0, "the oversize purchase is not in the state"


DEPTHS = (850, 900, 950, 1000, 3000, 9000)


def test_deeply_nested_attributes_are_dead_letters_through_kafka(kafka, model_source, unique_name):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    deep = [deep_profile(depth) for depth in DEPTHS]
    assert json.loads(nested(3)) == {"x": {"x": {"x": 1}}}
    assert all(len(value) < DLQ_MAX_BYTES for _, value in deep), "nesting, not size, is what is tested"
    valid = [purchase(f"ok-{i}", 1) for i in range(len(DEPTHS) + 1)]
    mixed = [pair for pairs in zip(valid, deep, strict=False) for pair in pairs] + valid[len(deep) :]
    topics = replayed(backend, unique_name, mixed)

    runner = score_to_idle(backend, model_source, topics, f"g-{unique_name}")

    assert runner.summary.events == len(mixed)
    assert runner.summary.valid == len(valid)
    assert runner.summary.dead_letters == len(deep)
    letters = read(backend, topics.dead_letter)
    assert sorted(r.value for r in letters) == sorted(value for _, value in deep), "originals, uncut"
    reasons = {r.key.decode(): dict(r.headers)[DLQ_REASON].decode() for r in letters}
    assert set(reasons) == {f"deep-{d}" for d in DEPTHS}
    assert set(reasons.values()) <= {"wrong_type", "not_json"}, reasons
    valid_ids = {f"ok-{i}" for i in range(len(valid))}
    assert set(final_updates([r.value for r in read(backend, topics.output)])) == valid_ids
    assert set(last_by_key(read(backend, topics.changelog))) == {c.encode() for c in valid_ids}


def test_records_without_a_key_are_dead_letters_unless_allowed(kafka, model_source, unique_name):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    keyed = [purchase(f"keyed-{i}", 1) for i in range(3)]
    keyless = [(None, purchase(f"keyless-{i}", 1)[1]) for i in range(3)]
    pairs = [pair for two in zip(keyed, keyless, strict=True) for pair in two]
    keyed_ids = {f"keyed-{i}" for i in range(3)}
    keyless_ids = {f"keyless-{i}" for i in range(3)}

    refused = replayed(backend, f"{unique_name}-default", pairs)
    runner = score_to_idle(backend, model_source, refused, f"g-{unique_name}-default")
    assert runner.summary.valid == len(keyed)
    assert runner.summary.dead_letters == len(keyless)
    letters = read(backend, refused.dead_letter)
    assert sorted(r.value for r in letters) == sorted(value for _, value in keyless)
    assert all(r.key is None and dict(r.headers)[DLQ_REASON] == b"missing_key" for r in letters)
    assert set(last_by_key(read(backend, refused.changelog))) == {c.encode() for c in keyed_ids}
    assert set(final_updates([r.value for r in read(backend, refused.output)])) == keyed_ids

    allowed = replayed(backend, f"{unique_name}-allowed", pairs)
    runner = score_to_idle(backend, model_source, allowed, f"g-{unique_name}-allowed", allow_keyless=True)
    assert runner.summary.valid == len(pairs)
    assert runner.summary.dead_letters == 0
    assert read(backend, allowed.dead_letter) == []
    state = last_by_key(read(backend, allowed.changelog))
    assert set(state) == {c.encode() for c in keyed_ids | keyless_ids}
    assert all(frequency(value) == 1.0 for value in state.values())
    assert set(final_updates([r.value for r in read(backend, allowed.output)])) == keyed_ids | keyless_ids


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_erase_deletes_the_customer_and_survives_a_restart(kafka, model_source, unique_name, exactly_once):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    group = f"g-{unique_name}"
    # Batches of two: A's first purchase is published before its erase arrives, so a reader of the
    # output topic did hold a segment for A that the tombstone must take away.
    pairs = [purchase("A", 1), purchase("B", 1), purchase("A", 2), purchase("B", 2), erase("A", 3)]
    topics = replayed(backend, unique_name, pairs)

    first = score_to_idle(backend, model_source, topics, group, exactly_once=exactly_once, batch_size=2)

    assert first.metrics.registry.get_sample_value("segmenter_erasures_total") == 1
    assert first.summary.valid == len(pairs)
    assert first.summary.dead_letters == 0
    output = read(backend, topics.output, isolation="read_committed")  # only committed transactions
    assert updates_of(output, "A"), "A was published before it was erased"
    assert [r.key for r in output if r.value is None] == [b"A"], "one tombstone, for A only"
    published = last_by_key(output)
    assert published[b"A"] is None, "the erase leaves a tombstone as A's last update"
    assert json.loads(published[b"B"])["customer_id"] == "B"
    state = last_by_key(read(backend, topics.changelog, isolation="read_committed"))
    assert state[b"A"] is None, "A's state is tombstoned on the changelog"
    assert frequency(state[b"B"]) == 2.0

    produce(backend, topics.input, [purchase("A", 4, amount=99.0)])
    second = score_to_idle(backend, model_source, topics, group, exactly_once=exactly_once, batch_size=2)

    assert second.summary.restored > 0, "the restart restored its state from the changelog"
    assert second.summary.events == 1, "the restart resumes after the committed offsets"
    assert second.summary.valid == 1
    assert second.metrics.registry.get_sample_value("segmenter_erasures_total") == 0
    newest = updates_of(read(backend, topics.output), "A")[-1]
    assert newest["event_time"] == format_ts(T0 + 4 * 3_600_000), newest  # the purchase after the erase
    state = last_by_key(read(backend, topics.changelog))
    # Computed from the restored state plus the new purchase: 3 had the restore revived A's old entry.
    assert frequency(state[b"A"]) == 1.0, "A starts a fresh history: the erased purchases are gone"
    assert frequency(state[b"B"]) == 2.0


def test_a_resent_event_id_counts_once_through_kafka(kafka, model_source, unique_name):
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    resent = purchase("dup", 1, event_id="dup-e1")
    pairs = [resent, purchase("other-1", 1), purchase("other-2", 1), purchase("other-1", 2), resent]
    topics = replayed(backend, unique_name, pairs)

    runner = score_to_idle(backend, model_source, topics, f"g-{unique_name}")

    copies = [r for r in read(backend, topics.input) if r.key == b"dup"]
    assert len(copies) == 2, "two records, one event"
    assert copies[0].offset < copies[1].offset
    assert runner.summary.events == len(pairs)
    assert runner.summary.duplicates == 1
    assert runner.summary.valid == len(pairs) - 1
    registry = runner.metrics.registry
    assert registry.get_sample_value("segmenter_events_duplicate_total", {"kind": "event_id"}) == 1
    assert registry.get_sample_value("segmenter_events_duplicate_total", {"kind": "offset"}) == 0
    state = last_by_key(read(backend, topics.changelog))
    assert frequency(state[b"dup"]) == 1.0
    assert frequency(state[b"other-1"]) == 2.0
    (update,) = updates_of(read(backend, topics.output), "dup")
    assert update["source"]["offset"] == copies[0].offset, "only the first copy is published"
    assert read(backend, topics.dead_letter) == []
