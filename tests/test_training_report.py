"""The training report and summary read as words: no Python reprs, an opening warning for unstable
segments, and algorithms that found no clustering listed with the reason instead of numbers."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from deploy.cli import main
from model.artifact import MANIFEST_FILE
from training.selection import compare_algorithms

# What a rendered Python value looks like: None, a dict, a list, a bool, NaN.
REPR = re.compile(r"\bNone\b|\{'|\['|\[\d|\bTrue\b|\bFalse\b|\bnan\b")


def text_of(report: Path) -> str:
    """The report's HTML without embedded images and style sheet (base64 and CSS are not prose)."""
    document = report.read_text(encoding="utf-8")
    document = re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', document)
    return re.sub(r"<style>.*?</style>", "", document, flags=re.S)


def write_table(directory: Path, n: int = 300) -> list[str]:
    """A round 6-D cloud (no real segments: unstable refits, DBSCAN finds only noise), some values
    missing; returns the ``segmenter train`` source arguments."""
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(6)]
    table = pd.DataFrame(rng.normal(size=(n, 6)), columns=columns)
    table.loc[3:8, "x1"] = np.nan
    table.insert(0, "member", [f"m{i:04d}" for i in range(n)])
    table["plan"] = rng.choice(["basic", "pro"], n)
    table.to_csv(directory / "t.csv", index=False)
    spec = {"id_column": "member", "numeric": columns, "categorical": ["plan"], "labels": {"x0": "first"}}
    (directory / "t.json").write_text(json.dumps(spec))
    return ["--table", str(directory / "t.csv"), "--spec", str(directory / "t.json")]


def test_the_report_opens_with_the_stability_warning_and_renders_no_python_values(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", *write_table(tmp_path), "--out", str(out), "--k-max", "3"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    text = text_of(out / "report.html")
    body = text.split("<h1>", 1)[1].split("</h1>", 1)[1]
    assert body.lstrip().startswith('<div class="warning">'), body[:300]
    assert re.search(r"refits agree on \d+ % of customer pairs: treat these segments with care", body[:400])
    assert "How this is computed" in body[:2000]
    assert "Rand index" in body[:2000]
    shown = [text[max(m.start() - 80, 0) : m.end() + 40] for m in REPR.finditer(text)]
    assert shown == [], shown
    assert REPR.findall(printed) == [], printed
    assert manifest["holdout"]["shares"], "the held-out shares (a list) are in the report, as percentages"
    assert f"{manifest['holdout']['shares'][0]:.1%}" in text
    rows = {row["algorithm"]: row for row in manifest["algorithm_comparison"]}
    assert rows["dbscan"]["note"].startswith("no usable clustering: all "), rows["dbscan"]
    assert "silhouette" not in rows["dbscan"]
    assert rows["dbscan"]["note"] in text


def test_a_stable_model_has_no_warning_in_its_report(tmp_path):
    rng = np.random.default_rng(1)
    busy = np.arange(200) % 2 == 0
    visits = rng.poisson(np.where(busy, 20, 2))
    table = pd.DataFrame({"member": [f"m{i}" for i in range(200)], "visits": visits})
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.json").write_text(json.dumps({"id_column": "member", "numeric": ["visits"]}))
    argv = ["train", "--table", str(tmp_path / "t.csv"), "--spec", str(tmp_path / "t.json"), "--k-max", "2"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    text = text_of(tmp_path / "m" / "report.html")
    assert 'class="warning"' not in text
    assert "treat these segments with care" not in text


def test_algorithms_without_a_usable_clustering_say_why_instead_of_scores():
    rng = np.random.default_rng(0)
    scattered = rng.uniform(-50, 50, size=(400, 4))  # too sparse for DBSCAN's eps: all noise
    rows = {row["algorithm"]: row for row in compare_algorithms(scattered, 3)}
    assert rows["dbscan"]["note"] == (
        "no usable clustering: all 400 points are noise with eps=0.5, min_samples=20"
    )
    assert rows["kmeans"]["n_clusters"] == 3
    blob = rng.normal(0, 0.01, size=(400, 4))  # one dense blob: DBSCAN finds one cluster
    dbscan = next(row for row in compare_algorithms(blob, 3) if row["algorithm"] == "dbscan")
    assert dbscan["note"].startswith("no usable clustering: one cluster (")
    assert not {"silhouette", "davies_bouldin", "min_share", "shares"} & set(dbscan)
