"""Signed artifacts end to end through the commands: `train` signs, `sign` signs an existing artifact,
`consume` and `serve` (its check and every gunicorn worker) refuse unsigned or wrongly signed
artifacts when a key is configured — without ever unpickling them — and warn once when none is."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shutil

import pytest
from malicious_artifact import plant_malicious_model

from deploy.cli import main
from deploy.web import serve
from deploy.web.app import from_environment
from model.artifact import SIGNATURE_FILE, load_artifact
from model.errors import ArtifactSignatureError
from model.events import encode_event
from model.signing import KEY_ENV, KEY_FILE_ENV, ModelKey
from model.synthetic import synthetic_events

KEY_TEXT = "cli-test-model-key-0123456789abcdef"
KEY = ModelKey(KEY_TEXT.encode())


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets") / "model-key"
    path.write_text(KEY_TEXT + "\n")
    return path


@pytest.fixture(scope="module")
def signed_model(tmp_path_factory, key_file):
    """`segmenter train --model-key-file` on a small synthetic event history."""
    root = tmp_path_factory.mktemp("signed")
    events = root / "events.jsonl"
    events.write_bytes(b"\n".join(encode_event(e) for e in synthetic_events(800, seed=3)) + b"\n")
    out = root / "model"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            ["train", "--events", str(events), "--out", str(out), "--k-max", "3", "--no-report",
             "--model-key-file", str(key_file)]
        )  # fmt: skip
    assert code in (0, 1), code  # 1: trained, a held-out segment is small; still a valid artifact
    return out


@pytest.fixture
def malicious(signed_model, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(signed_model, directory)
    marker = tmp_path / "pwned"
    plant_malicious_model(directory, marker)
    return directory, marker


def consume(model_dir, *extra):
    return main(
        ["consume", "--model-dir", str(model_dir), "--bootstrap-servers", "127.0.0.1:9",
         "--metrics-port", "0", "--exit-when-idle", *extra]
    )  # fmt: skip


def test_train_with_a_key_signs_the_artifact(signed_model):
    assert (signed_model / SIGNATURE_FILE).is_file()
    assert load_artifact(signed_model, key=KEY).k >= 2
    with pytest.raises(ArtifactSignatureError):
        load_artifact(signed_model, key=ModelKey(b"some-other-key-0123456789"))


def test_consume_refuses_the_malicious_artifact_with_exit_2(malicious, monkeypatch, caplog):
    directory, marker = malicious
    monkeypatch.setenv(KEY_ENV, KEY_TEXT)
    with caplog.at_level(logging.ERROR):
        assert consume(directory) == 2
    assert not marker.exists(), "the scorer unpickled an artifact whose signature did not match"
    assert "does not match" in caplog.text
    assert str(directory) in caplog.text
    assert KEY_TEXT not in caplog.text


def test_serve_refuses_the_malicious_artifact_with_exit_2(malicious, key_file, caplog):
    directory, marker = malicious
    with caplog.at_level(logging.ERROR):
        code = main(["serve", "--model-dir", str(directory), "--bind", "127.0.0.1:1", "--model-key-file",
                     str(key_file)])  # fmt: skip
    assert code == 2
    assert not marker.exists(), "segmenter serve unpickled an artifact whose signature did not match"
    assert "does not match" in caplog.text


def test_serve_refuses_an_unsigned_artifact_with_exit_2(signed_model, tmp_path, monkeypatch, caplog):
    directory = tmp_path / "model"
    shutil.copytree(signed_model, directory)
    (directory / SIGNATURE_FILE).unlink()
    monkeypatch.setenv(KEY_ENV, KEY_TEXT)
    with caplog.at_level(logging.ERROR):
        assert main(["serve", "--model-dir", str(directory), "--bind", "127.0.0.1:1"]) == 2
    assert "unsigned" in caplog.text


def _serve_args(model_dir, *extra: str) -> argparse.Namespace:
    """``segmenter serve`` arguments as its own parser builds them (defaults included)."""
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_args(["--model-dir", str(model_dir), "--bind", "127.0.0.1:1", *extra])


def test_a_gunicorn_worker_refuses_the_malicious_artifact(malicious, key_file, monkeypatch):
    directory, marker = malicious
    args = _serve_args(directory, "--workers", "1", "--model-key-file", str(key_file))
    env = serve.server_environment(args, base={})
    assert env[KEY_FILE_ENV] == str(key_file.resolve()), "workers get the key file, not the key"
    assert KEY_TEXT not in json.dumps(env)
    for name in ("SEGMENTER_MODEL_DIR", KEY_FILE_ENV):
        monkeypatch.setenv(name, env[name])
    with pytest.raises(ArtifactSignatureError):
        from_environment()
    assert not marker.exists()


def test_serve_accepts_the_signed_artifact_and_so_do_its_workers(signed_model, key_file, monkeypatch):
    args = _serve_args(signed_model, "--model-key-file", str(key_file))
    assert serve._check(args) is None
    monkeypatch.setenv("SEGMENTER_MODEL_DIR", str(signed_model))
    monkeypatch.setenv(KEY_ENV, KEY_TEXT)
    assert from_environment().extensions["segmenter"]["service"].model.k >= 2


def test_without_a_key_serve_warns_once_that_loading_executes_code(signed_model, caplog):
    args = _serve_args(signed_model)
    with caplog.at_level(logging.WARNING):
        assert serve._check(args) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "executes code" in warnings[0]
    assert KEY_ENV in warnings[0]


@pytest.mark.parametrize("command", ["consume", "serve", "sign", "train"])
def test_a_missing_or_empty_key_file_is_exit_2_with_one_clear_line(command, signed_model, tmp_path, caplog):
    empty = tmp_path / "empty-key"
    empty.write_text("")
    for key_file, problem in ((tmp_path / "missing", "cannot read the model key file"), (empty, "is empty")):
        caplog.clear()
        argv = {
            "consume": ["consume", "--model-dir", str(signed_model), "--metrics-port", "0"],
            "serve": ["serve", "--model-dir", str(signed_model), "--bind", "127.0.0.1:1"],
            "sign": ["sign", "--model-dir", str(signed_model)],
            "train": ["train", "--events", "nowhere.jsonl", "--out", str(tmp_path / "out")],
        }[command]
        with caplog.at_level(logging.ERROR):
            assert main([*argv, "--model-key-file", str(key_file)]) == 2
        assert problem in caplog.text, caplog.text
        assert "Traceback" not in caplog.text


def test_sign_signs_an_unsigned_artifact_and_needs_a_key(signed_model, tmp_path, key_file, caplog):
    directory = tmp_path / "model"
    shutil.copytree(signed_model, directory)
    (directory / SIGNATURE_FILE).unlink()
    with caplog.at_level(logging.ERROR):
        assert main(["sign", "--model-dir", str(directory)]) == 2
    assert "no model key" in caplog.text
    assert main(["sign", "--model-dir", str(directory), "--model-key-file", str(key_file)]) == 0
    assert load_artifact(directory, key=KEY).k >= 2
