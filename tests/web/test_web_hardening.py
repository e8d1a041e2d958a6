"""Issue 10, item 10 (b–d) through the app: bounded metric labels, security headers, chunked bodies.

The slow-client part (a) and a chunked body through gunicorn are in test_web_gunicorn.py.
"""

from __future__ import annotations

import io
import json
import random
import re
import string

import pytest
from web_helpers import LOYAL

from deploy.web.app import DEFAULT_MAX_BODY
from deploy.web.metrics import METHODS

SCORE = "/api/v1/score"
PAGES = ["/", "/segments", "/api/v1/segments", "/api/v1/openapi.yaml", "/healthz", "/metrics", "/nowhere"]


def _request_series(client) -> set[tuple[str, str, str]]:
    """(route, method, status) of every `segmenter_web_requests_total` series."""
    text = client.get("/metrics").data.decode()
    pattern = r'^segmenter_web_requests_total\{method="([^"]*)",route="([^"]*)",status="([^"]*)"\}'
    return {(m[2], m[1], m[3]) for m in re.finditer(pattern, text, re.MULTILINE)}


def test_random_methods_and_paths_do_not_make_new_series(app, client):
    """Issue 10.10b: 1,000 random methods made 1,040 series."""
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    rng = random.Random(10)
    for _ in range(200):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
        path = "/" + "".join(rng.choices(string.ascii_lowercase + "/", k=rng.randint(1, 30)))
        client.open(rng.choice(["/healthz", path]), method=method)
        client.get(path)
    series = _request_series(client)
    assert {method for _, method, _ in series} <= METHODS | {"other"}
    assert {route for route, _, _ in series} <= rules | {"other"}
    assert ("other", "other", "405") in series or ("/healthz", "other", "405") in series
    assert ("other", "GET", "404") in series
    assert len(series) < 30, sorted(series)


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(client, path):
    """Issue 10.10c: a Content-Security-Policy and a Referrer-Policy, on pages, API and errors."""
    response = client.get(path)
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers.get("Referrer-Policy") == "no-referrer"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("path", ["/", "/segments"])
def test_pages_need_nothing_the_policy_forbids(client, service, path):
    """No inline script or style (the policy would block it) and nothing from another origin."""
    html = client.get(path).data.decode()
    if path == "/":  # the result page too, with its charts
        html += client.post("/", data={k: str(v) for k, v in LOYAL.items()}).data.decode()
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html), "style attributes need 'unsafe-inline'"
    assert not re.search(r"<script(?![^>]*\ssrc=)", html), "inline scripts need 'unsafe-inline'"
    assert not re.search(r"\s\bon[a-z]+=", html), "event handler attributes are inline scripts"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "everything comes from this origin"


def _chunked(client, body: bytes):
    """A POST whose body has no Content-Length, as gunicorn hands a chunked request to the app."""
    return client.post(
        SCORE,
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_413_like_a_sized_one(client):
    """Issue 10.10d: a chunked 10 MB body got 400 "Unterminated string"."""
    big = json.dumps({"customers": [LOYAL] * 65_000}).encode()
    assert len(big) > 10_000_000
    sized = client.post(SCORE, data=big, content_type="application/json")
    chunked = _chunked(client, big)
    assert (sized.status_code, chunked.status_code) == (413, 413)
    assert chunked.get_json()["error"] == sized.get_json()["error"] == "request_entity_too_large"


def test_a_chunked_body_within_the_limit_is_scored(client):
    small = _chunked(client, json.dumps(LOYAL).encode())
    assert small.status_code == 200, small.get_json()
    exact = json.dumps({"customers": [LOYAL]}).encode()
    padded = exact[:-1] + b" " * (DEFAULT_MAX_BODY - len(exact)) + b"}"  # exactly the limit
    assert len(padded) == DEFAULT_MAX_BODY
    assert _chunked(client, padded).status_code == 200
    assert _chunked(client, padded + b" ").status_code == 413
