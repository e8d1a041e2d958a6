"""Fuzzing the API with random JSON: bad input is always a 4xx with a JSON body, never a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.features import EVENT_FEATURE_SPEC

NAMES = [*EVENT_FEATURE_SPEC.feature_names, EVENT_FEATURE_SPEC.id_column, "customers"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=20,
)
# Mostly well-formed customers with random values, so the fuzz reaches the validation of every field.
CUSTOMER = st.fixed_dictionaries({}, optional={name: SCALARS for name in NAMES[:-1]})
BODIES = JSON | CUSTOMER | st.builds(lambda cs: {"customers": cs}, st.lists(CUSTOMER | JSON, max_size=5))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(response) -> None:
    assert response.status_code < 500, response.data[:300]
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code == 200:
        results = body.get("results") or [body["result"]]
        assert all(r["segment_id"] >= 0 for r in results)
    else:
        assert body["error"]
        assert body["message"]


@FUZZ
@given(body=BODIES)
def test_random_json_bodies_never_cause_a_server_error(client, body):
    raw = json.dumps(body, allow_nan=True)
    _check(client.post("/api/v1/score", data=raw, content_type="application/json"))


@FUZZ
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_random_bytes_never_cause_a_server_error(client, raw, content_type):
    _check(client.post("/api/v1/score", data=raw, content_type=content_type or None))


FORM_VALUE = st.text(max_size=30) | st.floats(allow_nan=True).map(repr) | st.integers().map(str)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(NAMES), FORM_VALUE, max_size=len(NAMES)))
def test_random_form_posts_never_cause_a_server_error(client, data):
    response = client.post("/", data=data)
    assert response.status_code in (200, 400), response.data[:300]
