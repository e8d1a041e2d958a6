"""The web app over a model whose segment ids are not its cluster indices (a retrain with --previous):
every page and answer speaks ids, and names, profiles and distances follow them."""

from __future__ import annotations

import json
import shutil

import pytest
from prometheus_client import CollectorRegistry
from web_helpers import LAPSED, LOYAL, form_data

from deploy.web.app import create_app

TEST_CONFIG = {"TESTING": True, "WTF_CSRF_ENABLED": False}


@pytest.fixture(scope="module")
def renumbered_app(model_dir, tmp_path_factory):
    """The session's CDNOW model published under ids 40, 41, ... in reverse cluster order."""
    out = tmp_path_factory.mktemp("web-ids") / "model"
    shutil.copytree(model_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    ids = [40 + i for i in reversed(range(manifest["k"]))]
    manifest["segment_ids"] = ids
    for profile, segment in zip(manifest["profiles"], ids, strict=True):
        profile["segment_id"] = segment
    (out / "manifest.json").write_text(json.dumps(manifest))  # no key: the manifest is not signed
    return create_app(out, config=TEST_CONFIG, registry=CollectorRegistry())


def test_the_api_answers_with_ids_and_distances_in_their_order(renumbered_app):
    model = renumbered_app.extensions["segmenter"]["service"].model
    client = renumbered_app.test_client()
    body = client.post("/api/v1/score", json={"customers": [LOYAL, LAPSED]}).get_json()
    assert body["segment_ids"] == model.segment_ids
    for result in body["results"]:
        index = body["segment_ids"].index(result["segment_id"])
        assert result["distances"][index] == result["distance"] == min(result["distances"])
        assert result["segment_name"] == model.segment_names[index]
    assert body["results"][0]["segment_id"] != body["results"][1]["segment_id"]

    segments = client.get("/api/v1/segments").get_json()["segments"]
    assert [s["segment_id"] for s in segments] == model.segment_ids
    for s, profile in zip(segments, model.profiles, strict=True):
        assert (s["name"], s["size"]) == (profile["name"], profile["size"])


def test_the_result_page_and_segments_page_show_ids(renumbered_app):
    service = renumbered_app.extensions["segmenter"]["service"]
    client = renumbered_app.test_client()
    page = client.post("/", data=form_data(LOYAL)).data.decode()
    chosen = service.score([LOYAL])[0]
    assert chosen.segment_id >= 40
    assert f"belongs to segment {chosen.segment_id}" in page
    assert f"{chosen.segment_id}: {chosen.segment_name}" in page, "the distance bars are labelled by id"
    other = service.runner_up(chosen)
    assert other in service.model.segment_ids
    assert other != chosen.segment_id
    assert service.model.segment_name(other) in page, "the runner-up is named"
    assert service.explain(LOYAL, chosen), "the pushes are computed on the right centroids"
    assert service.profile(chosen.segment_id)["segment_id"] == chosen.segment_id

    segments = client.get("/segments").data.decode()
    for segment, name in zip(service.model.segment_ids, service.model.segment_names, strict=True):
        assert f"<td>{segment}</td><td>{name}</td>" in segments
        assert f"{segment}: {name}" in segments, "the projection's legend too"
