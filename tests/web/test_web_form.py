"""The form: generated from the full feature spec, messages beside bad fields, CSRF, result and segments."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from web_helpers import LAPSED, LOYAL, field_messages, form_data

from deploy.web.app import create_app
from model.features import EVENT_FEATURE_SPEC


def test_form_offers_every_feature_with_its_unit(client, service):
    page = client.get("/").data.decode()
    for name in EVENT_FEATURE_SPEC.feature_names:
        assert f'id="{name}"' in page, name
    for name, limits in EVENT_FEATURE_SPEC.ranges.items():
        assert f"{name.replace('_', ' ')} ({limits.unit})" in page
    unused = [n for n, f in service.fields.items() if not f.used]
    assert page.count("optional, ignored by this model") == len(unused)
    assert 'id="ignored-note"' in page


def test_valid_customer_shows_segment_profile_chart_and_pushes(client, service):
    response = client.post("/", data=form_data(LOYAL))
    assert response.status_code == 200
    page = response.data.decode()
    expected = service.score([LOYAL])[0]
    assert f'<h1 class="h2 card-title" id="segment-name">{expected.segment_name}</h1>' in page
    chart = page[page.index('id="distance-chart"') :]
    assert chart.index("<svg") < chart.index("</figure>")
    assert chart[: chart.index("</svg>")].count("<rect") == service.model.k
    assert 'id="pushes"' in page
    assert 'id="profile-table"' in page


def test_missing_and_invalid_fields_get_messages_beside_them(client):
    data = form_data(dict(LOYAL, frequency="twelve", recency_days="-4", monetary_total=""))
    response = client.post("/", data=data)
    assert response.status_code == 400
    parsed = field_messages(response.data.decode())
    assert set(parsed.messages) == {"frequency", "recency_days", "monetary_total"}
    assert parsed.invalid_inputs == {"frequency", "recency_days", "monetary_total"}
    assert parsed.messages["frequency"] == ["'twelve' is not a number"]
    assert "between 0 and 3,650 days" in parsed.messages["recency_days"][0]
    assert "required" in parsed.messages["monetary_total"][0]
    assert 'value="twelve"' in response.data.decode(), "what was typed is kept"


def test_ignored_fields_are_validated_too(client, service):
    unused_number = next(n for n, f in service.fields.items() if not f.used and f.kind == "number")
    response = client.post("/", data=form_data(dict(LOYAL, **{unused_number: "-1"})))
    assert response.status_code == 400
    assert set(field_messages(response.data.decode()).messages) == {unused_number}


def test_realistic_customers_land_in_different_segments(client, service):
    def segment(customer):
        page = client.post("/", data=form_data(customer)).data.decode()
        return re.search(r'id="segment-name">([^<]+)<', page).group(1)

    assert segment(LOYAL) != segment(LAPSED)
    # Each segment's own median customer is a realistic member of it: different segments again.
    medians = [p["median"] for p in service.model.profiles]
    landed = {segment(m) for m in medians}
    assert len(landed) >= min(2, service.model.k)


def test_csrf_is_enforced_when_enabled(model_dir):
    app = create_app(model_dir, config={"TESTING": True}, registry=CollectorRegistry())
    client = app.test_client()
    refused = client.post("/", data=form_data(LOYAL))
    assert refused.status_code == 400
    assert "could not be verified" in refused.data.decode()
    page = client.get("/").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    accepted = client.post("/", data={**form_data(LOYAL), "csrf_token": token})
    assert accepted.status_code == 200
    api = client.post("/api/v1/score", json=LOYAL)
    assert api.status_code == 200, "the JSON API takes no cookies, so it is exempt"


def test_segments_page_shows_sizes_projection_and_metrics(client, service):
    page = client.get("/segments").data.decode()
    for profile in service.model.profiles:
        assert profile["name"] in page
        assert f"{profile['size']:,}" in page
    projection = page[page.index('id="projection-chart"') :]
    assert projection[: projection.index("</svg>")].count("<circle") >= len(service.projection["x"])
    assert "silhouette" in page
    assert client.get("/segments/report").status_code == 200


def test_unknown_page_is_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


# LOYAL with dates: as of 2024-05-01, last purchase 6 days and first event 520 days before.
DATES = {"last_purchase": "2024-04-25", "first_seen": "2022-11-28", "as_of": "2024-05-01"}
LOYAL_BY_DATE = {**{k: v for k, v in LOYAL.items() if k not in ("recency_days", "tenure_days")}, **DATES}


def test_dates_instead_of_days_give_the_same_segment_and_say_as_of(client, service):
    page = client.get("/").data.decode()
    for name in DATES:
        assert f'id="{name}"' in page, name
    response = client.post("/", data=form_data(LOYAL_BY_DATE))
    assert response.status_code == 200, field_messages(response.data.decode()).messages
    page = response.data.decode()
    expected = service.score([LOYAL])[0]
    assert f'id="segment-name">{expected.segment_name}</h1>' in page
    assert 'id="as-of"' in page
    assert "2024-05-01" in page


def test_a_bad_date_gets_its_message_beside_it(client):
    for change, field, words in [
        ({"first_seen": "2024-05-02"}, "first_seen", "after as_of (2024-05-01)"),
        ({"last_purchase": "25.04.2024"}, "last_purchase", "YYYY-MM-DD"),
        ({"tenure_days": "520"}, "first_seen", "not both"),
    ]:
        response = client.post("/", data=form_data(dict(LOYAL_BY_DATE, **change)))
        assert response.status_code == 400, change
        messages = field_messages(response.data.decode()).messages
        assert set(messages) == {field}, change
        assert words in messages[field][0], change
