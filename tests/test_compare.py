"""`segmenter compare`: two models on the same customers, on small synthetic data (blobs in a customer
table trained through the CLI, and synthetic events in a JSONL file)."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest

from deploy.cli import main
from model.artifact import load_artifact
from model.events import encode_event
from model.synthetic import synthetic_events
from training.compare import Side, compare, format_comparison, render_html
from training.sources import from_events
from training.train import TrainOptions, train

CENTRES = [(0, 0), (30, 0), (0, 30)]


def _train(table: list[str], out, *more: str) -> None:
    assert (
        main(["train", *table, "--out", str(out), "--k-min", "3", "--k-max", "3", "--no-report", *more]) == 0
    )


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """A table of 3 blobs of 100 points (x, y), a model of it, its child (--previous, another seed),
    and a model of the same table through another spec (x only)."""
    root = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        np.concatenate([rng.normal(c, 1.0, size=(100, 2)) for c in CENTRES]), columns=["x", "y"]
    )
    table.insert(0, "id", [f"c{i}" for i in range(len(table))])
    table.to_csv(root / "blobs.csv", index=False)
    (root / "xy.json").write_text(json.dumps({"id_column": "id", "numeric": ["x", "y"]}))
    (root / "x.json").write_text(json.dumps({"id_column": "id", "numeric": ["x"]}))
    xy = ["--table", str(root / "blobs.csv"), "--spec", str(root / "xy.json")]
    _train(xy, root / "a")
    _train(xy, root / "b", "--previous", str(root / "a"), "--seed", "2")
    _train(["--table", str(root / "blobs.csv"), "--spec", str(root / "x.json")], root / "x")
    return root, xy


def _compare(root, a: str, b: str, *more: str) -> int:
    return main(["compare", "--model-a", str(root / a), "--model-b", str(root / b), *more])


def test_a_model_compared_with_itself_agrees_fully_and_the_cli_prints_the_figures(blobs, capsys):
    root, xy = blobs
    capsys.readouterr()
    assert _compare(root, "a", "a", *xy) == 0
    printed = capsys.readouterr().out
    model = load_artifact(root / "a")
    assert f"model A    {model.model_id}  k=3" in printed
    assert "lineage    the same model" in printed
    assert "customers  300 (" in printed
    assert "agreement  100.0% in the same segment id" in printed
    assert "ARI        1.000" in printed
    for segment in model.segment_ids:  # the diagonal holds every customer of the segment
        assert re.search(rf"^{segment} .* 100 \(100\.0%\)", printed, re.M), printed
    assert printed.count("33.3%") == 6, "each model's share of each of the 3 segments"


def test_a_child_trained_with_previous_on_the_same_data_agrees(blobs, capsys):
    root, xy = blobs
    capsys.readouterr()
    assert _compare(root, "a", "b", *xy) == 0
    printed = capsys.readouterr().out
    assert "lineage    B descends from A (its child)" in printed
    agreement = float(re.search(r"agreement  ([\d.]+)%", printed).group(1))
    assert agreement >= 95.0
    assert float(re.search(r"ARI        ([\d.]+)", printed).group(1)) >= 0.9

    capsys.readouterr()
    assert _compare(root, "b", "a", *xy) == 0
    assert "A descends from B: B is the older model" in capsys.readouterr().out


def test_a_model_of_another_schema_is_exit_2_with_one_line_naming_both(blobs, caplog):
    root, xy = blobs
    with caplog.at_level(logging.ERROR):
        assert _compare(root, "a", "x", *xy) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    a, x = load_artifact(root / "a"), load_artifact(root / "x")
    assert a.model_id in line
    assert x.model_id in line
    assert "input schema" in line


def test_data_of_another_schema_than_the_models_is_exit_2(blobs, caplog, tmp_path):
    root, _ = blobs
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(encode_event(e) + b"\n" for e in synthetic_events(20, seed=1)))
    with caplog.at_level(logging.ERROR):
        assert _compare(root, "a", "a", "--events", str(events)) == 2
    assert "the models take input schema" in caplog.text
    assert str(events) in caplog.text
    with caplog.at_level(logging.ERROR):
        assert _compare(root, "a", "a", "--events", str(events), "--spec", str(root / "xy.json")) == 2
    assert "applies to --table" in caplog.text


def test_the_html_page_holds_the_table_and_no_python_reprs(blobs, tmp_path):
    root, xy = blobs
    page = tmp_path / "compare.html"
    assert _compare(root, "a", "b", *xy, "--out", str(page)) == 0
    text = page.read_text(encoding="utf-8")
    assert "<h2>Transitions</h2>" in text
    assert text.count("<table") == 3
    b = load_artifact(root / "b")
    for segment in b.segment_ids:  # a column per segment of B, named
        assert f"<th>{segment} {b.segment_name(segment)}</th>" in text
    assert re.search(r"<td>\d+ \(\d+\.\d%\)</td>", text), "cells: customers (share of the A row)"
    assert "http" not in text
    assert "<script" not in text
    assert "None" not in text
    assert "{'" not in text
    assert '{"' not in text
    assert "nan" not in text


def test_compare_counts_the_transitions_by_segment_id():
    a = Side("m1", [4, 2], ["lapsed", "loyal"], [])
    b = Side("m9", [2, 4, 7], ["loyal", "lapsed", "new"], [])  # another order, a fresh id
    ids_a, ids_b = np.array([4, 4, 4, 2, 2]), np.array([4, 4, 7, 2, 4])
    found = compare(ids_a, ids_b, a, b)
    assert found.counts.tolist() == [[1, 1, 0], [0, 2, 1]]  # rows ids 2, 4; columns 2, 4, 7
    assert found.agreement == pytest.approx(0.6)
    assert found.row_shares()[1].round(3).tolist() == [0.0, 0.667, 0.333]
    share_a, share_b = found.shares()
    assert share_a.tolist() == [0.4, 0.6]
    assert share_b.tolist() == [0.2, 0.6, 0.2]
    text = format_comparison(found)
    assert "unrelated: no common ancestor" in text
    assert "the same id need not be the same segment" in text
    assert "4 lapsed" in text
    assert re.search(r"^7 +- +- +- +new +1 +20\.0%$", text, re.M), "id 7: nothing in A, new in B"
    assert re.search(r"^4 lapsed +- +2 \(66\.7%\) +1 \(33\.3%\)$", text, re.M), "A's 4: its row"
    assert "None" not in render_html(found)
    with pytest.raises(ValueError, match="2 and 3"):
        compare(ids_a[:2], ids_b[:3], a, b)


def test_events_from_a_jsonl_file_are_one_row_per_customer(tmp_path, capsys):
    events = list(synthetic_events(200, seed=3))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
    options = TrainOptions(k_min=3, k_max=3, stability_rounds=2, report=False, compare_sample=500)
    train(from_events(events, "synthetic:200", snapshots=0), tmp_path / "m", options)
    assert main(["compare", "--model-a", str(tmp_path / "m"), "--model-b", str(tmp_path / "m"),
                 "--events", str(path)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "customers  200 (" in printed, "every customer once, as of the end of the history"
    assert "as of the end of history" in printed
    assert "agreement  100.0%" in printed


def test_with_a_model_key_unsigned_models_are_refused_naming_the_flag(blobs, caplog, monkeypatch):
    root, xy = blobs
    monkeypatch.setenv("SEGMENTER_MODEL_KEY", "0123456789abcdef-test-key")
    with caplog.at_level(logging.ERROR):
        assert _compare(root, "a", "b", *xy) == 2
    assert f"--model-a {root / 'a'}" in caplog.text
    assert "unsigned" in caplog.text
