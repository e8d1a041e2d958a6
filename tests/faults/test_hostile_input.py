"""Hostile input mixed into a valid stream: no crash, every bad record dead-lettered with its reason
and origin, every good one scored.

10,000 generated malformed records go through the whole runner on the in-memory backend; 1,000 go
through the real broker with the default client. Hypothesis then throws arbitrary bytes and arbitrary
JSON objects at the processor.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hostile import BREAKERS, mixed_stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scorer_fixtures import as_records, final_updates, reference_run
from scorer_process import changelog_states, read, replayed

from consumer.backends import ClientConfig, make_backend
from consumer.outputs import DLQ_MAX_BYTES, DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from consumer.processor import Processor, Topics
from consumer.runner import RunnerSettings, ScorerRunner
from consumer.state_store import StateStore

pytestmark = [pytest.mark.faults]

# The dead-letter reasons the event contract documents (model/errors.py), plus the processor's own.
REASONS = {
    "missing_field",
    "wrong_type",
    "bad_value",
    "not_json",
    "bad_utf8",
    "unknown_type",
    "future_timestamp",
    "too_large",
    "key_mismatch",
    "missing_key",
    "implausible_timestamp",
}


def score_mixed(backend, model, pairs, name: str, batch_size: int) -> ScorerRunner:
    topics = replayed(backend, name, pairs)
    settings = RunnerSettings(group_id=f"g-{name}", topics=topics, batch_size=batch_size, exit_when_idle=True)
    runner = ScorerRunner(backend, settings, model)
    runner.run()
    return runner


def check_outcome(backend, runner: ScorerRunner, model, stream, mixed, kinds) -> None:
    """Counts add up exactly; each dead letter is an original bad record with reason and origin."""
    topics = runner.settings.topics
    valid = [pair for pair in stream if pair[0] != b"bad"]
    # Dead letters carry the original bytes, cut to DLQ_MAX_BYTES when larger (the oversize kinds).
    bad_values = Counter(value[:DLQ_MAX_BYTES] for key, value in mixed if key == b"bad" or value in kinds)
    assert runner.summary.events == len(mixed)
    assert runner.summary.valid == len(valid), "every good record scored"
    assert runner.summary.dead_letters == bad_values.total(), "every bad record dead-lettered"

    letters = read(backend, topics.dead_letter)
    missing = bad_values - Counter(r.value for r in letters)
    assert not missing, f"not dead-lettered: {Counter(kinds.get(v, 'sample') for v in missing)}"
    assert len(letters) == bad_values.total()
    inputs = {(r.partition, r.offset): r.value for r in read(backend, topics.input)}
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[DLQ_REASON].decode() in REASONS, headers[DLQ_REASON]
        assert headers[DLQ_TOPIC].decode() == topics.input
        origin = (int(headers[DLQ_PARTITION]), int(headers[DLQ_OFFSET]))
        assert inputs[origin][:DLQ_MAX_BYTES] == letter.value, "the headers point at the original record"

    expected_updates, expected_states = reference_run(model, read(backend, topics.input))
    assert changelog_states(read(backend, topics.changelog)) == expected_states
    assert final_updates([r.value for r in read(backend, topics.output)]) == expected_updates


def test_ten_thousand_hostile_records_in_memory(model_source, stream, unique_name):
    mixed, kinds = mixed_stream(stream, 10_000, seed=7)
    assert set(kinds.values()) == set(BREAKERS), "every kind of damage is in the mix"
    backend = make_backend("memory")
    runner = score_mixed(backend, model_source, mixed, unique_name, batch_size=500)
    check_outcome(backend, runner, model_source, stream, mixed, kinds)


@pytest.mark.kafka
def test_a_thousand_hostile_records_through_kafka(kafka, model_source, stream, unique_name):
    mixed, kinds = mixed_stream(stream, 1_000, seed=8)
    backend = make_backend("kafka-python", ClientConfig(kafka.bootstrap_servers))
    runner = score_mixed(backend, model_source, mixed, unique_name, batch_size=300)
    check_outcome(backend, runner, model_source, stream, mixed, kinds)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("event_id", "customer_id", "type", "ts", "amount", "quantity", "category", "channel", "attributes")
EVENTISH = st.dictionaries(st.sampled_from(FIELDS), JSON | st.sampled_from(["purchase", "visit", "c1"]))


def _process_one(model, key: bytes | None, value: bytes):
    store = StateStore()
    store.assign(0)
    return Processor(store, model, Topics()).process(as_records([(key, value)]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.none() | st.binary(max_size=12) | st.just(b"c1"),
    value=st.binary(max_size=200) | EVENTISH.map(json.dumps),
)
def test_any_record_is_scored_or_dead_lettered(model_source, key, value):
    value = value.encode() if isinstance(value, str) else value
    result = _process_one(model_source, key, value)
    dead = [o for o in result.outputs if o.topic == Topics().dead_letter]
    assert result.valid + len(dead) == 1
    assert all(dict(o.headers)[DLQ_REASON].decode() in REASONS for o in dead)


def _nested(kind: str, depth: int, leaf: str) -> str:
    opener, closer = ("[", "]") if kind == "array" else ('{"k":', "}")
    return opener * depth + leaf + closer * depth


HOSTILE_VALUES = st.one_of(
    st.builds(_nested, st.sampled_from(["array", "object"]), st.integers(1, 3_000), st.just("1")),
    st.text(min_size=0, max_size=20).map(lambda t: t * 5_000),  # huge strings
    st.sampled_from(['"\\ud800"', '"\\udfff x"', '"\\u0000"', '"\\ufffd"']),  # lone surrogates, NUL
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1e400", "-0.0", "NaN", "[]", "{}", "null", "true"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from([*FIELDS, "attributes.age", "attributes.gender", "odd \\u0000 key", ""]),
    value=HOSTILE_VALUES,
    kind=st.sampled_from(["purchase", "profile", "visit", "erase"]),
    key=st.sampled_from([b"c1", None, b"\xff", b"c1" * 40_000]),
)
def test_process_never_raises_on_hostile_records(model_source, field, value, kind, key):
    """Whatever one record holds, ``process`` returns: the record is scored or a dead letter."""
    base = {"event_id": "e", "customer_id": "c1", "type": kind, "ts": 1_700_000_000_000, "amount": 1}
    if field.startswith("attributes."):
        text = json.dumps({**base, "attributes": {}}).replace(
            '"attributes": {}', f'"attributes": {{"{field[11:]}": {value}}}'
        )
    else:
        text = json.dumps(base)[:-1] + f", {json.dumps(field)}: {value}}}"
    result = _process_one(model_source, key, text.encode("utf-8", "surrogatepass"))
    dead = [o for o in result.outputs if o.topic == Topics().dead_letter]
    assert result.valid + len(dead) == 1
    assert all(len(o.value or b"") <= 65_536 and len(o.key or b"") <= 65_536 for o in dead)
