"""Fixtures of the web tests: one model trained on CDNOW and one on the shoppers example table per
session, apps over them, test clients."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from deploy.cli import main
from deploy.web.app import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "training" / "examples"
TEST_CONFIG = {"TESTING": True, "WTF_CSRF_ENABLED": False}  # CSRF stays on in the app; see test_web_form


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model trained once per session with `segmenter train` on the real CDNOW history (~15 s)."""
    out = tmp_path_factory.mktemp("web-model") / "cdnow"
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        code = main(["train", "--events", "cdnow", "--out", str(out), "--k-max", "5"])
    # 1 = trained, but a held-out segment is small: still a valid artifact to serve.
    assert code in (0, 1), f"training failed with exit code {code}: {summary.getvalue()}"
    assert (out / "manifest.json").is_file()
    return out


@pytest.fixture(scope="module")
def app(model_dir):
    return create_app(model_dir, config=TEST_CONFIG, registry=CollectorRegistry())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def service(app):
    return app.extensions["segmenter"]["service"]


@pytest.fixture(scope="session")
def shoppers_dir(tmp_path_factory) -> Path:
    """A model trained once per session with `segmenter train --table` on the shoppers example (its
    4 known segments; k fixed at 4 and no report, so it takes a few seconds)."""
    out = tmp_path_factory.mktemp("web-model") / "shoppers"
    table = ["--table", str(EXAMPLES / "shoppers.csv"), "--spec", str(EXAMPLES / "shoppers.spec.json")]
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        code = main(["train", *table, "--out", str(out), "--k-min", "4", "--k-max", "4", "--no-report"])
    assert code == 0, f"training failed with exit code {code}: {summary.getvalue()}"
    return out


@pytest.fixture(scope="module")
def shoppers_app(shoppers_dir):
    return create_app(shoppers_dir, config=TEST_CONFIG, registry=CollectorRegistry())


@pytest.fixture
def shoppers_client(shoppers_app):
    return shoppers_app.test_client()


@pytest.fixture(scope="module")
def shoppers_service(shoppers_app):
    return shoppers_app.extensions["segmenter"]["service"]
