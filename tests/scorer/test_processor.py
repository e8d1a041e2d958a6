"""The scorer's batch logic on plain records: no broker, no threads."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from scorer_fixtures import as_records, changelog_records, final_updates, reference_run, valid_count

from consumer.backends.abstract import Record
from consumer.outputs import DLQ_OFFSET, DLQ_REASON
from consumer.processor import Processor, Topics
from consumer.state_restore import judge
from consumer.state_store import CLOCK_KEY, Entry, StateStore
from model.events import decode_event
from model.features import features, last_event_ms

TOPICS = Topics()


def _processor(model, **options) -> Processor:
    store = StateStore()
    store.assign(0)
    return Processor(store, model, TOPICS, **options)


def test_counts_add_up_and_bad_records_become_dead_letters(model_source, stream):
    processor = _processor(model_source)
    result = processor.process(as_records(stream))
    dead = [o for o in result.outputs if o.topic == TOPICS.dead_letter]
    assert result.valid == valid_count(stream)
    assert len(dead) == sum(result.invalid.values()) == len(stream) - valid_count(stream)
    for letter in dead:
        headers = dict(letter.headers)
        offset = int(headers[DLQ_OFFSET])
        assert letter.value == stream[offset][1], "the dead letter carries the original bytes"
        assert headers[DLQ_REASON].decode() in result.invalid
    customers = {decode_event(v).customer_id for k, v in stream if k != b"bad"}
    updates = [o for o in result.outputs if o.topic == TOPICS.output]
    assert {json.loads(u.value)["customer_id"] for u in updates} == customers


def test_state_reflects_every_valid_event(model_source, stream):
    processor = _processor(model_source)
    processor.commit_entries(processor.process(as_records(stream)))
    purchases = Counter(
        decode_event(v).customer_id for k, v in stream if k != b"bad" and decode_event(v).type == "purchase"
    )
    for customer_id, entry in processor.store.customers():
        assert features(entry.state, last_event_ms(entry.state))["frequency"] == purchases.get(customer_id, 0)


def test_results_do_not_depend_on_batch_boundaries(model_source, stream):
    whole = reference_run(model_source, stream)
    cut = reference_run(model_source, stream, batch_size=37)
    assert whole == cut


def test_replayed_records_are_recognised_and_not_counted_twice(model_source, stream):
    processor = _processor(model_source)
    records = as_records(stream)
    processor.commit_entries(processor.process(records))
    before = dict(processor.store.customers())
    again = processor.process(records[: len(records) // 2])
    assert again.valid == 0
    assert again.duplicates == valid_count(stream[: len(records) // 2])
    assert again.duplicates_by == {("offset", 0): again.duplicates}
    assert not [o for o in again.outputs if o.topic == TOPICS.output]
    processor.commit_entries(again)
    assert dict(processor.store.customers()) == before


def test_emit_only_on_change_publishes_changes_only(model_source, stream):
    every = _processor(model_source).process(as_records(stream))
    changes = _processor(model_source, emit_only_on_change=True)
    records = as_records(stream)
    published = []
    for start in range(0, len(records), 25):
        result = changes.process(records[start : start + 25])
        changes.commit_entries(result)
        published += [json.loads(o.value) for o in result.outputs if o.topic == TOPICS.output]
    assert published, "first assignments are changes"
    assert all(body["changed"] for body in published)
    assert final_updates([o.value for o in every.outputs if o.topic == TOPICS.output]).keys() == {
        b["customer_id"] for b in published
    }


def test_changelog_restores_the_same_state_and_counting_continues(model_source, stream):
    half = len(stream) // 2
    first = _processor(model_source)
    result = first.process(as_records(stream[:half]))
    first.commit_entries(result)
    changelog = [o for o in result.outputs if o.topic == TOPICS.changelog]

    restored = StateStore()
    restored.restore(judge(0, changelog_records(changelog)))
    assert dict(restored.customers()) == dict(first.store.customers())

    second = Processor(restored, model_source, TOPICS)
    records = as_records(stream)
    second.commit_entries(second.process(records[half:]))
    _, states = reference_run(model_source, stream)
    assert {cid: e.state for cid, e in restored.customers()} == states


def test_entry_round_trip_keeps_offset_and_segment(model_source, stream):
    processor = _processor(model_source)
    result = processor.process(as_records(stream[:50]))
    for entries in result.entries.values():
        for raw in entries.values():
            entry = Entry.from_bytes(raw)
            assert entry.last_offset >= 0
            assert entry.last_segment >= 0
            assert Entry.from_bytes(entry.to_bytes()) == entry


# -- one record never stops the stream (issue: poison pills) -----------------------------------------


def _purchase(customer: str, event_id: str, ts: int = 1_700_000_000_000, **extra) -> bytes:
    body = {"event_id": event_id, "customer_id": customer, "type": "purchase", "ts": ts, "amount": 5.0}
    return json.dumps({**body, **extra}).encode()


def _dead(result) -> dict[int, dict]:
    return {
        int(dict(o.headers)[DLQ_OFFSET]): dict(o.headers)
        for o in result.outputs
        if o.topic == TOPICS.dead_letter
    }


def test_deep_nesting_inside_an_object_is_a_dead_letter_at_any_depth(model_source):
    """850–1000 levels parse as JSON; quoting the value in the error message used to raise RecursionError."""
    pairs = []
    for depth in (*range(800, 1001, 25), 3000, 20_000):
        nested = '{"x":' * depth + "1" + "}" * depth
        head = f'{{"event_id": "p{depth}", "customer_id": "c1", "type": "profile", "ts": 1700000000000, '
        value = (head + f'"attributes": {{"age": {nested}}}}}').encode()  # a checked attribute
        pairs.append((b"c1", value))
        pairs.append((b"c1", value.replace(b'"attributes": {"age": ', b'"attributes": [', 1)))
    pairs.append((b"c2", _purchase("c2", "ok")))
    result = _processor(model_source).process(as_records(pairs))
    assert result.valid == 1
    assert set(_dead(result)) == set(range(len(pairs) - 1))
    assert {h[DLQ_REASON] for h in _dead(result).values()} <= {
        b"bad_value",
        b"wrong_type",
        b"not_json",
        b"too_large",
    }


def test_an_unexpected_error_in_one_record_is_a_dead_letter_and_the_batch_goes_on(model_source, monkeypatch):
    import consumer.processor as processor_module

    real_update = processor_module.update

    def update_failing_for_c1(state, event, table=None):
        if event.customer_id == "c1":
            raise KeyError("a bug one record triggers")
        return real_update(state, event, table)

    monkeypatch.setattr(processor_module, "update", update_failing_for_c1)
    pairs = [(b"c1", _purchase("c1", "a")), (b"c2", _purchase("c2", "b"))]
    result = _processor(model_source).process(as_records(pairs))
    assert result.valid == 1
    assert result.invalid == {"internal_error": 1}
    headers = _dead(result)[0]
    assert headers[DLQ_REASON] == b"internal_error"
    assert headers["dlq.error"].startswith(b"KeyError: ")
    assert [json.loads(o.value)["customer_id"] for o in result.outputs if o.topic == TOPICS.output] == ["c2"]


def test_a_dead_letter_too_large_to_produce_is_cut_to_its_head(model_source):
    big = _purchase("c1", "big", padding="p" * 3_000_000)
    result = _processor(model_source).process(as_records([(b"c1", big)]))
    (letter,) = [o for o in result.outputs if o.topic == TOPICS.dead_letter]
    headers = dict(letter.headers)
    assert headers[DLQ_REASON] == b"too_large"
    assert letter.value == big[:65_536]
    assert headers["dlq.truncated"] == b"true"
    assert int(headers["dlq.original_size"]) == len(big)
    assert headers["dlq.sha256"] == hashlib.sha256(big).hexdigest().encode()


def test_a_record_without_a_key_is_a_dead_letter_unless_keyless_is_allowed(model_source):
    pairs = [(None, _purchase("c1", "a")), (b"c1", _purchase("c1", "b"))]
    strict = _processor(model_source).process(as_records(pairs))
    assert strict.invalid == {"missing_key": 1}
    assert strict.valid == 1
    assert _processor(model_source, allow_keyless=True).process(as_records(pairs)).valid == 2


def test_the_key_check_compares_bytes(model_source):
    """A non-UTF-8 key used to be decoded with replacement and then matched a customer id of U+FFFD."""
    pairs = [(b"\xff", _purchase("\ufffd", "a")), ("\ufffd".encode(), _purchase("\ufffd", "b"))]
    result = _processor(model_source).process(as_records(pairs))
    assert result.invalid == {"key_mismatch": 1}
    assert result.valid == 1
    assert set(_dead(result)) == {0}


def test_a_resent_event_id_counts_once_across_batches(model_source):
    processor = _processor(model_source)
    first = processor.process(as_records([(b"c1", _purchase("c1", "e-1")), (b"c1", _purchase("c1", "e-2"))]))
    processor.commit_entries(first)
    resent = [
        Record("events", 0, 10 + i, b"c1", _purchase("c1", eid)) for i, eid in enumerate(["e-1", "e-3"])
    ]
    again = processor.process(resent)
    processor.commit_entries(again)
    assert again.duplicates == 1
    assert again.duplicates_by == {("event_id", 0): 1}
    entry = processor.store.get(0, "c1")
    assert features(entry.state, last_event_ms(entry.state))["frequency"] == 3.0


def test_erase_deletes_the_customer_and_later_events_start_afresh(model_source):
    processor = _processor(model_source)
    erase = json.dumps(
        {"event_id": "x", "customer_id": "c1", "type": "erase", "ts": 1_700_000_000_001}
    ).encode()
    result = processor.process(
        as_records([(b"c1", _purchase("c1", "a")), (b"c1", _purchase("c1", "b")), (b"c1", erase)])
    )
    processor.commit_entries(result)
    assert result.erasures == 1
    # every event is published in partition order (two updates, then the erase's tombstone); the
    # changelog keeps only the end of the batch: a tombstone
    assert [(o.topic, o.key, o.value is None) for o in result.outputs if o.key != CLOCK_KEY] == [
        (TOPICS.output, b"c1", False),
        (TOPICS.output, b"c1", False),
        (TOPICS.output, b"c1", True),
        (TOPICS.changelog, b"c1", True),
    ]
    assert dict(processor.store.customers()) == {}
    later = processor.process([Record("events", 0, 5, b"c1", _purchase("c1", "c", ts=1_700_000_000_002))])
    processor.commit_entries(later)
    entry = processor.store.get(0, "c1")
    assert features(entry.state, last_event_ms(entry.state))["frequency"] == 1.0
    assert json.loads(later.outputs[0].value)["previous_segment_id"] is None


def test_implausible_times_are_dead_letters_and_the_floor_can_move(model_source):
    pairs = [(b"c1", _purchase("c1", "s", ts=1_700_000_000)), (b"c1", _purchase("c1", "z", ts=0))]
    result = _processor(model_source).process(as_records(pairs))
    assert result.invalid == {"implausible_timestamp": 2}
    assert _processor(model_source, min_event_ms=None).process(as_records(pairs)).valid == 2


def test_feature_values_outside_the_spec_are_scored_and_counted(model_source):
    pairs = [(b"c1", _purchase("c1", f"e{i}", amount=20_000.0)) for i in range(6)]
    result = _processor(model_source).process(as_records(pairs))
    assert result.valid == 6
    assert len(result.scored) == 6  # every event is scored, as of the stream time after it
    assert result.out_of_range["monetary_total"] == 1  # 120,000 > the spec's 100,000 (6th event)
    assert result.out_of_range["avg_order_value"] == 6  # 20,000 > 10,000


def test_a_row_the_model_refuses_does_not_fail_the_batch(model_source):
    class RefusesC1:
        def __init__(self, model):
            self.model, self.model_id, self.spec = model, model.model_id, model.spec

        def score_partition(self, rows, checkpoint):
            if any(row["frequency"] == 2.0 for row in rows):
                raise ValueError("Input contains infinity")
            return self.model.score_partition(rows, checkpoint)

    live = model_source()
    processor = _processor(lambda: RefusesC1(live))
    pairs = [(b"c1", _purchase("c1", "a")), (b"c1", _purchase("c1", "b")), (b"c2", _purchase("c2", "c"))]
    result = processor.process(as_records(pairs))
    assert result.invalid == {"internal_error": 1}
    assert set(_dead(result)) == {1}
    # c1's first event is published; its second, which the model refuses, is the dead letter
    published = [json.loads(o.value)["customer_id"] for o in result.outputs if o.topic == TOPICS.output]
    assert published == ["c1", "c2"]
    processor.commit_entries(result)
    entry = processor.store.get(0, "c1")
    assert features(entry.state, last_event_ms(entry.state))["frequency"] == 2.0, "its events are kept"


def test_a_repeat_of_an_erased_event_in_the_same_batch_stays_erased(model_source):
    erase = json.dumps(
        {"event_id": "x", "customer_id": "c1", "type": "erase", "ts": 1_700_000_000_001}
    ).encode()
    pairs = [(b"c1", _purchase("c1", "a")), (b"c1", erase), (b"c1", _purchase("c1", "a"))]
    result = _processor(model_source).process(as_records(pairs))
    assert result.duplicates_by == {("event_id", 0): 1}
    updates = [o.value for o in result.outputs if o.topic == TOPICS.output]
    assert len(updates) == 2, "the purchase's update, then the erase's tombstone"
    assert updates[1] is None
    changelog = {o.key: o.value for o in result.outputs if o.topic == TOPICS.changelog}
    assert changelog[b"c1"] is None, "the repeat did not revive the customer"


def test_a_cut_key_is_described_by_its_own_headers():
    from consumer.outputs import dead_letter

    key = b"k" * 70_000
    letter = dead_letter("dlq", Record("in", 0, 1, key, b"{}"), "key_mismatch", "bad key")
    headers = dict(letter.headers)
    assert letter.key == key[:65_536]
    assert letter.value == b"{}"
    assert int(headers["dlq.original_key_size"]) == len(key)
    assert headers["dlq.key_sha256"] == hashlib.sha256(key).hexdigest().encode()
    assert "dlq.original_size" not in headers
