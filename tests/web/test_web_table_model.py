"""A model trained on a customer table is served: form and API take the table's own columns.

The model is the shoppers example's (``training/examples/shoppers.*``, trained once per session): 12
columns with labels, units and ranges, three of them categorical.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest
import yaml
from prometheus_client import CollectorRegistry
from web_helpers import SHOPPERS, field_messages, form_data

from deploy.cli import main
from deploy.web.app import create_app
from deploy.web.schema import served, takes_events
from deploy.web.service import SegmentService
from model.errors import SchemaMismatchError
from model.pipeline import build_pipeline, to_frame
from model.scoring import SegmentModel
from model.spec import FeatureSpec

SCORE = "/api/v1/score"
YOUNG = SHOPPERS["young bargain hunters"]


def _errors(response) -> dict[str, str]:
    assert response.is_json, response.data[:200]
    return {e["field"]: e["problem"] for e in response.get_json()["errors"]}


def _segment_name(page: str) -> str:
    return html.unescape(re.search(r'id="segment-name">([^<]+)<', page).group(1))


def _options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]* id="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select, f"{name} is not a select"
    return re.findall(r'<option value="([^"]*)"', select.group(1))


# --- the form ------------------------------------------------------------------------------------


def test_form_asks_for_the_specs_columns_by_label_with_units_and_choices(shoppers_client, shoppers_service):
    page = html.unescape(shoppers_client.get("/").data.decode())
    spec = shoppers_service.model.spec
    assert len(spec.feature_names) == 12
    for name in spec.feature_names:
        assert f'id="{name}"' in page, name
        assert f'for="{name}">{shoppers_service.fields[name].label}<' in page, name
    assert 'for="age">Age (years)<' in page
    assert 'for="spend_12m">Spend in the last 12 months (EUR)<' in page
    assert 'for="orders_12m">Orders in the last 12 months<' in page, "the label already says the unit"
    assert "Range 18–100." in page
    for name, values in shoppers_service.model.categories.items():
        assert _options(page, name) == ["", *values], name
    assert sorted(_options(page, "channel")[1:]) == ["mixed", "online", "store"]
    assert not re.search(r'id="(last_purchase|first_seen|as_of)"', page), "a table takes no dates"
    assert "optional, ignored by this model" not in page, "training dropped no column"
    assert f'<code id="model-id">{shoppers_service.model.model_id}</code>' in page
    assert 'id="form-intro"' in page
    assert "member_id" in page


def test_a_good_submit_shows_the_segment_and_the_columns_by_label(shoppers_client, shoppers_service):
    response = shoppers_client.post("/", data=form_data(YOUNG))
    assert response.status_code == 200, field_messages(response.data.decode()).messages
    page = response.data.decode()
    expected = shoppers_service.score([YOUNG])[0]
    assert _segment_name(page) == expected.segment_name
    table = html.unescape(page[page.index('id="profile-table"') :])
    assert "Shopping channel" in table
    assert "online" in table
    assert shoppers_service.model.model_id in page


def test_the_four_kinds_of_shopper_land_in_four_segments(shoppers_client):
    names = {
        _segment_name(shoppers_client.post("/", data=form_data(c)).data.decode()) for c in SHOPPERS.values()
    }
    assert len(names) == 4


def test_bad_values_get_a_message_beside_their_field(shoppers_client):
    wrong = dict(YOUNG, age="old", income="-5", channel="phone", gender="", visits_30d="")
    response = shoppers_client.post("/", data=form_data(wrong))
    assert response.status_code == 400
    parsed = field_messages(response.data.decode())
    assert set(parsed.messages) == {"age", "income", "channel", "gender", "visits_30d"}
    assert parsed.invalid_inputs == set(parsed.messages)
    assert parsed.messages["age"] == ["'old' is not a number"]
    assert parsed.messages["income"] == ["must be between 0 and 1,000,000 EUR / year"]
    assert parsed.messages["channel"] == [
        "'phone' was not seen in training: choose one of mixed, online, store"
    ]
    assert parsed.messages["gender"] == ["required: choose a value"]
    assert parsed.messages["visits_30d"] == ["required: enter a value"]


# --- the API -------------------------------------------------------------------------------------


def test_api_scores_a_batch_of_table_rows_in_order_echoing_their_ids(shoppers_client, shoppers_service):
    customers = [{"member_id": f"m-{i}", **c} for i, c in enumerate(SHOPPERS.values())]
    response = shoppers_client.post(SCORE, json={"customers": customers})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model_id"] == shoppers_service.model.model_id
    assert body["schema_hash"] == shoppers_service.model.spec.schema_hash()
    results = body["results"]
    assert [r["member_id"] for r in results] == [c["member_id"] for c in customers]
    expected = shoppers_service.score(list(SHOPPERS.values()))
    assert [r["segment_id"] for r in results] == [a.segment_id for a in expected]
    assert len({r["segment_id"] for r in results}) == 4
    assert all(r["ignored_fields"] == [] for r in results)


def test_api_rejects_bad_fields_with_a_400_naming_each(shoppers_client):
    customer = dict(YOUNG, age="x", channel="phone", region=None, colour="red", customer_id="c1",
                    last_purchase="2024-04-01", household_size=13)  # fmt: skip
    del customer["spend_12m"]
    response = shoppers_client.post(SCORE, json=customer)
    assert response.status_code == 400
    errors = _errors(response)
    assert errors == {
        "age": "must be a number",
        "channel": "'phone' was not seen in training: choose one of mixed, online, store",
        "region": "must not be null: the model needs a value",
        "household_size": "must be <= 12 people",
        "spend_12m": "is required",
        "colour": "is not a customer feature",
        "customer_id": "is not a customer feature",  # this model's id column is member_id
        "last_purchase": "is not a customer feature",  # no dates for a table
    }


def test_api_batch_errors_carry_the_index(shoppers_client):
    body = {"customers": [YOUNG, dict(YOUNG, gender="robot"), dict(YOUNG, as_of="2024-05-01")]}
    response = shoppers_client.post(SCORE, json=body)
    assert response.status_code == 400
    errors = _errors(response)
    assert set(errors) == {"customers[1].gender", "customers[2].as_of"}
    assert "choose one of female, male, other" in errors["customers[1].gender"]


def test_segments_lists_the_columns_with_labels_and_choices(shoppers_client, shoppers_service):
    body = shoppers_client.get("/api/v1/segments").get_json()
    fields = {f["name"]: f for f in body["fields"]}
    assert list(fields) == list(shoppers_service.model.spec.feature_names)
    assert fields["channel"]["choices"] == shoppers_service.model.categories["channel"]
    assert fields["channel"]["label"] == "Shopping channel"
    assert fields["income"]["label"] == "Yearly income (EUR / year)"
    assert fields["age"]["choices"] == []
    assert all(f["used"] and not f["nullable"] for f in fields.values())
    assert len(body["segments"]) == 4


def test_openapi_document_describes_the_tables_columns(shoppers_client, shoppers_service):
    document = yaml.safe_load(shoppers_client.get("/api/v1/openapi.yaml").data)
    customer = document["components"]["schemas"]["Customer"]
    spec = shoppers_service.model.spec
    assert list(customer["properties"]) == ["member_id", *spec.feature_names]
    assert customer["required"] == list(spec.feature_names)
    assert customer["properties"]["channel"]["enum"] == shoppers_service.model.categories["channel"]
    limits = spec.ranges["age"]
    assert (customer["properties"]["age"]["minimum"], customer["properties"]["age"]["maximum"]) == (
        limits.minimum,
        limits.maximum,
    )
    assert "as_of" not in document["components"]["schemas"]["Result"]["properties"]
    assert "member_id" in document["components"]["schemas"]["Result"]["properties"]
    assert "segmenter train --table" in document["info"]["description"]
    examples = document["paths"]["/api/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    for example in examples["examples"].values():  # the documented examples are valid requests
        assert shoppers_client.post(SCORE, json=example["value"]).status_code == 200, example


def test_the_segments_page_shows_columns_by_label(shoppers_client):
    page = html.unescape(shoppers_client.get("/segments").data.decode())
    assert "median Yearly income" in page
    assert "most common Shopping channel" in page


# --- which models are served ---------------------------------------------------------------------


def _copy_with_manifest(shoppers_dir, tmp_path, edit) -> str:
    copy = tmp_path / "model"
    shutil.copytree(shoppers_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return str(copy)


def _heavy_income(manifest: dict) -> None:
    manifest["source_spec"]["heavy_tailed"].remove("income")


def _spec_without_age(manifest: dict) -> None:
    """A spec that still parses (the strict reader refuses a range or label of a column it lacks)."""
    spec = manifest["spec"]
    spec["numeric"].remove("age")
    for key in ("ranges", "labels"):
        spec.get(key, {}).pop("age", None)


@pytest.mark.parametrize(("edit", "words"), [(_heavy_income, "source_spec hashes to"),
                                             (_spec_without_age, "edited by hand")])  # fmt: skip
def test_a_manifest_that_contradicts_itself_is_refused(shoppers_dir, tmp_path, caplog, edit, words):
    model_dir = _copy_with_manifest(shoppers_dir, tmp_path, edit)
    with pytest.raises(SchemaMismatchError, match=words):
        create_app(model_dir, registry=CollectorRegistry())
    assert main(["serve", "--model-dir", model_dir, "--bind", "127.0.0.1:0"]) == 2
    assert f"cannot serve {model_dir}" in caplog.text
    assert words in caplog.text


def _fitted(spec: FeatureSpec, manifest: dict) -> SegmentModel:
    rows = [
        {"data": d, "visits": v, "plan": p}
        for d, v, p in [(1, 2, "a"), (2, 3, "a"), (9, 30, "b"), (8, 40, "b")]
    ]
    return SegmentModel(build_pipeline(spec, k=2, seed=0).fit(to_frame(rows, spec)), spec, manifest)


def test_a_column_named_like_the_forms_own_attributes_is_refused_by_name():
    model = _fitted(FeatureSpec("member", numeric=("data", "visits")), {})
    with pytest.raises(SchemaMismatchError, match=r"columns \['data'\], which the web form and API use"):
        served(model)


def test_null_is_unknown_only_for_columns_the_training_table_had_gaps_in():
    spec = FeatureSpec("member", numeric=("visits",), categorical=("plan",))
    imputed = {"visits": {"count": 3, "share": 0.01, "with": "median"}}
    service = SegmentService(_fitted(spec, {"imputed": imputed}))
    assert not service.events
    assert service.date_fields == {}
    assert {n: f.nullable for n, f in service.fields.items()} == {"visits": True, "plan": False}
    row, errors = service.validate({"member": "m1", "visits": None, "plan": "b"})
    assert errors == []
    assert row == {"member": "m1", "visits": None, "plan": "b"}
    assert service.result_dict(service.score([row])[0], row)["member"] == "m1"
    problems = {e.field: e.problem for e in service.validate({"visits": 3, "plan": None})[1]}
    assert problems == {"plan": "must not be null: the model needs a value"}


def test_an_event_model_keeps_its_dates_and_a_table_model_shaped_like_one_too(service):
    assert service.events
    assert service.id_column == "customer_id"
    assert service.date_fields == {"last_purchase": "recency_days", "first_seen": "tenure_days"}
    assert takes_events(service.model.spec)
    lookalike = FeatureSpec("customer_id", numeric=("recency_days",))
    assert takes_events(lookalike)
    assert not takes_events(
        FeatureSpec("customer_id", numeric=("recency_days",), heavy_tailed=("recency_days",))
    )
    assert not takes_events(FeatureSpec("member_id", numeric=("recency_days",)))
