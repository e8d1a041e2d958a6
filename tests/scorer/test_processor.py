"""The scorer's batch logic on plain records: no broker, no threads."""

from __future__ import annotations

import json
from collections import Counter

from scorer_fixtures import as_records, changelog_records, final_updates, reference_run, valid_count

from consumer.outputs import DLQ_OFFSET, DLQ_REASON
from consumer.processor import Processor, Topics
from consumer.state_restore import judge
from consumer.state_store import Entry, StateStore
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
