"""The shoppers example table: reproducible from its script, true to its spec, and its four known
segments are what `segmenter train` finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from model.artifact import load_artifact
from training.example_tables import SEGMENTS
from training.sources import load_table

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "training" / "examples"
FILES = ("shoppers.csv", "shoppers.spec.json", "shoppers.truth.csv")


def _python(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTER_MODEL_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, env=env,
                          check=False)  # fmt: skip


def test_the_script_reproduces_the_committed_files_byte_for_byte(tmp_path):
    done = _python("-m", "training.example_tables", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_the_table_keeps_to_its_spec_and_the_truth_is_not_a_feature():
    spec = json.loads((EXAMPLES / "shoppers.spec.json").read_text())
    data = load_table(EXAMPLES / "shoppers.csv", EXAMPLES / "shoppers.spec.json", 0.1, seed=0)
    frame = data.frame
    assert len(frame) == 3000
    assert len(data.spec.feature_names) == 12
    assert frame.notna().all().all()
    for name in data.spec.numeric:
        limits = data.spec.ranges[name]
        assert limits.minimum <= frame[name].min(), name
        assert frame[name].max() <= limits.maximum, name
        assert limits.unit, name
        assert limits.help, name
    assert set(data.spec.labels) == set(data.spec.feature_names)
    assert all(data.spec.label(n) != n for n in data.spec.feature_names), "every label is readable"
    assert data.spec.group_of("spend_12m") == data.spec.group_of("orders_12m") != "spend_12m"
    assert set(frame["channel"]) == {"store", "online", "mixed"}
    truth = pd.read_csv(EXAMPLES / "shoppers.truth.csv")
    assert "segment" not in json.dumps(spec)
    assert set(truth["segment"]) == set(SEGMENTS)
    assert truth["member_id"].tolist() == frame.index.tolist()
    # Money and counts are heavy-tailed: the largest spend is many times the median.
    assert frame["spend_12m"].max() > 20 * frame["spend_12m"].median()


def test_segmenter_train_finds_the_four_known_segments(tmp_path):
    out = tmp_path / "shoppers"
    # k up to 6: k=4 must win against finer partitions, not be the largest k tried.
    done = _python("-m", "deploy.cli", "train", "--log-level", "WARNING",
                   "--table", str(EXAMPLES / "shoppers.csv"), "--spec", str(EXAMPLES / "shoppers.spec.json"),
                   "--out", str(out), "--k-max", "6", "--no-report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = load_artifact(out)
    assert model.k == len(SEGMENTS)
    assert model.manifest["dropped_features"] == {}
    table = pd.read_csv(EXAMPLES / "shoppers.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(EXAMPLES / "shoppers.truth.csv")["segment"]
    labels, _, _ = model.score_arrays(table)
    ari = adjusted_rand_score(truth, labels)
    assert ari >= 0.9, f"adjusted Rand index {ari:.3f} against the true segments"
    # Every true segment has a model segment of its own: the majorities differ.
    majority = pd.crosstab(truth, labels).to_numpy().argmax(axis=1)
    assert len(np.unique(majority)) == len(SEGMENTS)
