"""The JSON API: valid single and batch scoring, every bad field named, size and type limits."""

from __future__ import annotations

import json

import pytest
import yaml
from web_helpers import LAPSED, LOYAL

from model.features import EVENT_FEATURE_SPEC

SCORE = "/api/v1/score"


def _errors(response) -> dict[str, str]:
    assert response.is_json, response.data[:200]
    return {e["field"]: e["problem"] for e in response.get_json()["errors"]}


def test_single_customer_gets_its_segment_and_all_distances(client, service):
    response = client.post(SCORE, json={"customer_id": "c-1", **LOYAL})
    assert response.status_code == 200
    body = response.get_json()
    result = body["result"]
    assert body["model_id"] == service.model.model_id
    assert result["customer_id"] == "c-1"
    assert len(result["distances"]) == service.model.k
    assert result["distance"] == min(result["distances"])
    assert result["distances"][result["segment_id"]] == result["distance"]
    assert result["segment_name"] == service.model.segment_names[result["segment_id"]]
    assert 0.0 <= result["confidence"] <= 1.0


def test_batch_is_scored_in_order_and_equals_single_calls(client):
    customers = [LOYAL, LAPSED, LOYAL]
    batch = client.post(SCORE, json={"customers": customers}).get_json()["results"]
    singles = [client.post(SCORE, json=c).get_json()["result"] for c in customers]
    # Equal up to float rounding: a matrix product over a batch may round the last bit differently.
    assert [r["segment_id"] for r in batch] == [r["segment_id"] for r in singles]
    for together, alone in zip(batch, singles, strict=True):
        assert together["distances"] == pytest.approx(alone["distances"], rel=1e-12)
    assert batch[0]["distances"] == pytest.approx(batch[2]["distances"], rel=1e-12)


def test_every_bad_field_is_named(client):
    customer = dict(LOYAL, frequency=-2, recency_days="soon", monetary_total=None, colour="red")
    del customer["tenure_days"]
    response = client.post(SCORE, json=customer)
    assert response.status_code == 400
    errors = _errors(response)
    assert set(errors) == {"frequency", "recency_days", "monetary_total", "tenure_days", "colour"}
    assert ">= 0" in errors["frequency"]
    assert "number" in errors["recency_days"]
    assert "required" in errors["tenure_days"]
    assert "not a customer feature" in errors["colour"]


def test_out_of_range_and_non_finite_values_are_rejected(client):
    for value in (3651, 1e309, float("nan"), True, [1], 10**400):
        body = json.dumps(dict(LOYAL, recency_days=value)).replace("Infinity", "1e999")
        response = client.post(SCORE, data=body, content_type="application/json")
        assert response.status_code == 400, value
        assert set(_errors(response)) == {"recency_days"}, value


def test_batch_errors_carry_the_customer_index(client):
    response = client.post(SCORE, json={"customers": [LOYAL, dict(LAPSED, visits=-1), "x"]})
    assert response.status_code == 400
    assert set(_errors(response)) == {"customers[1].visits", "customers[2]"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customers": []}, "customers"),
        ({"customers": {"a": 1}}, "customers"),
        ({"customers": [LOYAL], "extra": 1}, "extra"),
        ([LOYAL], "$"),
        ("just a string", "$"),
    ],
)
def test_malformed_envelopes_are_400_naming_the_problem(client, body, field):
    response = client.post(SCORE, json=body)
    assert response.status_code == 400
    assert field in _errors(response)


def test_batch_larger_than_the_limit_is_refused(app, client):
    limit = app.config["SEGMENTER_MAX_BATCH"]
    response = client.post(SCORE, json={"customers": [LAPSED] * (limit + 1)})
    assert response.status_code == 400
    assert str(limit) in _errors(response)["customers"]


def test_null_means_unknown_only_where_the_stream_can_say_unknown(client, service):
    nullable = [n for n, f in service.fields.items() if f.used and f.nullable]
    strict = [n for n, f in service.fields.items() if f.used and not f.nullable]
    assert nullable
    assert strict
    assert client.post(SCORE, json=dict(LOYAL, **dict.fromkeys(nullable))).status_code == 200
    response = client.post(SCORE, json=dict(LOYAL, **dict.fromkeys(strict)))
    assert set(_errors(response)) == set(strict)


def test_fields_the_model_dropped_are_optional_checked_and_reported_ignored(client, service):
    dropped = [n for n, f in service.fields.items() if not f.used]
    assert dropped, "a CDNOW model has no demographics: some fields must be unused"
    plain = client.post(SCORE, json=LOYAL).get_json()["result"]
    fields = service.fields
    given = {n: (fields[n].maximum if fields[n].kind == "number" else "NL") for n in dropped}
    with_extra = client.post(SCORE, json=dict(LOYAL, **given)).get_json()["result"]
    assert with_extra["ignored_fields"] == dropped
    assert with_extra["distances"] == plain["distances"]
    wrong = {n: (fields[n].maximum + 1 if fields[n].kind == "number" else "x" * 65) for n in dropped}
    assert set(_errors(client.post(SCORE, json=dict(LOYAL, **wrong)))) == set(dropped)


def test_oversized_body_is_413_json(app, client):
    big = b'{"customers": [' + b" " * app.config["MAX_CONTENT_LENGTH"] + b"]}"
    response = client.post(SCORE, data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415_json(client, content_type):
    response = client.post(SCORE, data=json.dumps(LOYAL), content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]


@pytest.mark.parametrize(
    "raw", [b"{", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b"", b'{"recency_days": NaN']
)
def test_unreadable_json_is_400_naming_the_body(client, raw):
    response = client.post(SCORE, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "$" in _errors(response)


def test_other_methods_and_paths_answer_json_errors(client):
    assert client.get(SCORE).status_code == 405
    assert client.get(SCORE).get_json()["error"] == "method_not_allowed"
    assert client.get("/api/v1/nothing").get_json()["error"] == "not_found"


def test_segments_lists_every_segment_and_field(client, service):
    body = client.get("/api/v1/segments").get_json()
    assert [s["segment_id"] for s in body["segments"]] == list(range(service.model.k))
    data = service.model.manifest["data"]  # event histories: one row per customer and reference time
    assert sum(s["size"] for s in body["segments"]) == data.get("training_rows", data["training_customers"])
    assert [f["name"] for f in body["fields"]] == list(EVENT_FEATURE_SPEC.feature_names)
    assert {f["name"] for f in body["fields"] if f["used"]} == set(service.model.spec.feature_names)
    assert set(body["metrics"]) >= {"silhouette"}


def test_openapi_document_matches_the_feature_spec(client):
    response = client.get("/api/v1/openapi.yaml")
    assert response.status_code == 200
    document = yaml.safe_load(response.data)
    customer = document["components"]["schemas"]["Customer"]["properties"]
    dates = ["last_purchase", "first_seen", "as_of"]
    assert list(customer) == [EVENT_FEATURE_SPEC.id_column, *EVENT_FEATURE_SPEC.feature_names, *dates]
    assert all(customer[name]["format"] == "date" for name in dates)
    assert "as_of" in document["components"]["schemas"]["Result"]["properties"]
    for name, limits in EVENT_FEATURE_SPEC.ranges.items():
        assert (customer[name]["minimum"], customer[name]["maximum"]) == (limits.minimum, limits.maximum)
    assert set(document["paths"]) >= {"/api/v1/score", "/api/v1/segments", "/healthz", "/metrics"}


def test_healthz_and_metrics_count_requests(client, service):
    assert client.get("/healthz").get_json() == {"status": "ok", "model_id": service.model.model_id,
                                                 "k": service.model.k}  # fmt: skip
    before = client.get("/metrics").data.decode()
    client.post(SCORE, json=LOYAL)
    after = client.get("/metrics").data.decode()

    def count(text: str) -> float:
        line = 'segmenter_web_requests_total{method="POST",route="/api/v1/score",status="200"}'
        return sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith(line))

    assert count(after) == count(before) + 1
    assert "segmenter_web_model_info" in after


def test_a_bug_answers_500_without_a_traceback(model_dir):
    from prometheus_client import CollectorRegistry

    from deploy.web.app import create_app

    app = create_app(model_dir, registry=CollectorRegistry())

    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/broken", view_func=broken)
    response = app.test_client().get("/api/v1/broken")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    assert not app.debug


# Dates instead of recency_days / tenure_days (deploy/web/dates.py). LOYAL as of 2024-05-01:
# last purchase 6 days before, first seen 520 days before.
AS_OF = "2024-05-01"
LOYAL_DATES = {
    **{k: v for k, v in LOYAL.items() if k not in ("recency_days", "tenure_days")},
    "last_purchase": "2024-04-25",
    "first_seen": "2022-11-28",
    "as_of": AS_OF,
}


def test_the_event_spec_takes_dates_for_recency_and_tenure(service):
    assert service.date_fields == {"last_purchase": "recency_days", "first_seen": "tenure_days"}
    assert any(service.fields[f].used for f in service.date_fields.values()), "no date would be scored"


def test_dates_give_the_segment_of_the_days_they_stand_for_and_as_of_is_echoed(client):
    direct = client.post(SCORE, json=LOYAL).get_json()["result"]
    response = client.post(SCORE, json=LOYAL_DATES)
    assert response.status_code == 200, response.get_json()
    dated = response.get_json()["result"]
    assert dated["segment_id"] == direct["segment_id"]
    assert dated["distances"] == pytest.approx(direct["distances"], rel=1e-12)
    assert dated["as_of"] == AS_OF
    assert "as_of" not in direct


def test_without_as_of_the_dates_count_to_today_utc(client):
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC).date()
    customer = {k: v for k, v in LOYAL_DATES.items() if k != "as_of"}
    customer["last_purchase"] = (before - timedelta(days=6)).isoformat()
    result = client.post(SCORE, json=customer).get_json()["result"]
    assert result["as_of"] in {before.isoformat(), datetime.now(UTC).date().isoformat()}


def test_a_batch_may_mix_dates_and_days(client):
    results = client.post(SCORE, json={"customers": [LOYAL_DATES, LAPSED]}).get_json()["results"]
    singles = [client.post(SCORE, json=c).get_json()["result"] for c in (LOYAL, LAPSED)]
    assert [r["segment_id"] for r in results] == [r["segment_id"] for r in singles]
    assert results[0]["as_of"] == AS_OF
    assert "as_of" not in results[1]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"last_purchase": "2024-13-01"}, "last_purchase", "calendar date"),
        ({"last_purchase": "25/04/2024"}, "last_purchase", "YYYY-MM-DD"),
        ({"last_purchase": 20240425}, "last_purchase", "YYYY-MM-DD"),
        ({"last_purchase": None}, "last_purchase", "YYYY-MM-DD"),
        ({"as_of": "yesterday"}, "as_of", "YYYY-MM-DD"),
        ({"first_seen": "2024-05-02"}, "first_seen", "after as_of (2024-05-01)"),
        ({"last_purchase": "2022-11-01"}, "last_purchase", "before first_seen"),
        ({"first_seen": "2010-01-01"}, "first_seen", "gives tenure_days = 5234"),
        ({"recency_days": 6.0}, "last_purchase", "not both"),
    ],
)
def test_a_bad_date_is_400_naming_the_field(client, change, field, words):
    response = client.post(SCORE, json=dict(LOYAL_DATES, **change))
    assert response.status_code == 400
    errors = _errors(response)
    assert set(errors) == {field}
    assert words in errors[field]


def test_neither_a_used_feature_nor_its_date_says_either_will_do(client, service):
    name, feature = next((n, f) for n, f in service.date_fields.items() if service.fields[f].used)
    customer = {k: v for k, v in LOYAL_DATES.items() if k != name}
    errors = _errors(client.post(SCORE, json=customer))
    assert errors == {feature: f"is required (or give {name})"}


def test_a_date_for_a_feature_the_model_dropped_is_checked_and_reported_ignored(service):
    import copy
    import dataclasses

    dropped = copy.copy(service)  # as if training had dropped recency_days (the CDNOW model may have)
    dropped.fields = {
        n: dataclasses.replace(f, used=f.used and n != "recency_days") for n, f in service.fields.items()
    }
    row, errors = dropped.validate(LOYAL_DATES)
    assert errors == []
    assert row["recency_days"] == 6
    assert "recency_days" in dropped.ignored(row)
    bad = dropped.validate(dict(LOYAL_DATES, last_purchase="2024-05-02"))[1]
    assert [e.field for e in bad] == ["last_purchase"]


def test_bad_dates_in_a_batch_carry_the_customer_index(client):
    body = {"customers": [LOYAL_DATES, dict(LOYAL_DATES, last_purchase="2024-05-02")]}
    assert set(_errors(client.post(SCORE, json=body))) == {"customers[1].last_purchase"}
