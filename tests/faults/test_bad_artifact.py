"""A tampered or incompatible model artifact: refused at start with a clear message and a non-zero
exit; refused at hot reload while the last good model keeps serving and the refusal is counted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from scorer_process import read, topics_named
from waiting import wait_for

from consumer.backends import TopicSpec, make_backend
from consumer.metrics import ScorerMetrics
from consumer.model_source import ModelSource
from consumer.runner import RunnerSettings, ScorerRunner
from model.features import EVENT_FEATURE_SPEC
from model.spec import FeatureSpec

pytestmark = [pytest.mark.faults]


def replace_file(path, data: bytes) -> None:
    """Write like training does, by renaming a finished file into place.

    The scorer here runs in a thread of the test process: between a plain write's truncate and its
    write the GIL may hand it several batches, each checking the (empty) file.
    """
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def tamper(directory) -> None:
    """Flip one byte in the middle of the pickled pipeline (the manifest's sha256 no longer matches)."""
    path = directory / "model.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    replace_file(path, bytes(data))


def make_incompatible(directory) -> str:
    """Rewrite the manifest, consistently, as if the model had been trained on one feature fewer."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    spec = FeatureSpec.from_dict(manifest["spec"])
    narrower = spec.restricted_to(set(list(spec.feature_names)[1:]))
    manifest.update(
        spec=narrower.to_dict(),
        feature_names=list(narrower.feature_names),
        schema_hash=narrower.schema_hash(),
        source_schema_hash=None,
        model_id=f"{manifest['model_id']}-narrow",
    )
    replace_file(path, json.dumps(manifest).encode())
    return narrower.schema_hash()


def consume_once(model_dir) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "deploy.cli", "consume", "--model-dir", str(model_dir),
        "--bootstrap-servers", "127.0.0.1:9", "--metrics-port", "0", "--exit-when-idle",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_tampered_artifact_stops_the_scorer_at_start(model_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    tamper(broken)
    done = consume_once(broken)
    assert done.returncode != 0
    assert str(broken / "model.joblib") in done.stderr, done.stderr[-2000:]
    assert "sha256" in done.stderr
    assert "Traceback" not in done.stderr, "a clear message, not a stack trace"


def test_an_incompatible_artifact_stops_the_scorer_at_start(model_dir, tmp_path):
    other = tmp_path / "model"
    shutil.copytree(model_dir, other)
    schema = make_incompatible(other)
    done = consume_once(other)
    assert done.returncode != 0
    assert str(other) in done.stderr, done.stderr[-2000:]
    # Any consistent model serves (table models too); this manifest contradicts its own pipeline.
    assert schema in done.stderr, "it names the schema the manifest declares"
    assert "was fitted on columns ['recency_days'" in done.stderr, "and the columns the model takes"
    assert "Traceback" not in done.stderr


def test_a_bad_artifact_at_hot_reload_is_refused_and_the_old_model_keeps_serving(
    model_dir, tmp_path, stream, unique_name
):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    metrics = ScorerMetrics()
    source = ModelSource(
        live,
        expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash(),
        check_interval_s=0,
        on_reload=lambda result, _detail: metrics.record_model_reload(result),
    )
    serving = source().model_id
    backend = make_backend("memory")
    topics = topics_named(unique_name)
    backend.ensure_topics([TopicSpec(topics.input, 3)])
    runner = ScorerRunner(
        backend, RunnerSettings(topics=topics, batch_size=50, poll_timeout_s=0.05), source, metrics=metrics
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    third = len(stream) // 3

    def produce(pairs) -> None:
        with backend.producer() as producer:
            for key, value in pairs:
                producer.produce(topics.input, key, value)

    def refused() -> float:
        return metrics.registry.get_sample_value("segmenter_model_reloads_total", {"result": "refused"})

    thread.start()
    try:
        produce(stream[:third])
        wait_for(lambda: runner.summary.events >= third, what="the first third scored")
        tamper(live)
        wait_for(lambda: refused() >= 1, what="the tampered artifact refused")
        produce(stream[third : 2 * third])
        make_incompatible(live)
        wait_for(lambda: refused() >= 2, what="the incompatible artifact refused")
        produce(stream[2 * third :])
        wait_for(lambda: runner.summary.events >= len(stream), what="the whole stream scored")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert refused() == 2
    assert source().model_id == serving
    updates = [json.loads(r.value) for r in read(backend, topics.output)]
    assert len(updates) == runner.summary.updates > 0
    assert {u["model_id"] for u in updates} == {serving}, "every update came from the last good model"
