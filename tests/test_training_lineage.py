"""Stable segment ids across retrains (`segmenter train --previous`): figures on CDNOW, fresh ids on
synthetic blobs, and the manifest's lineage.

CDNOW is loaded once for the module and trained at k=7 (what the default run chooses on it) with two
bootstrap rounds, no report and no stream reference, so each model takes about 20 s. Agreement is
measured on every CDNOW customer as of the end of the history (the segment the stream publishes for
them); the figures are printed (``pytest -s``) and quoted in the README.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline

from deploy.cli import main
from model.artifact import MANIFEST_FILE, load_artifact
from model.pipeline import to_frame
from model.scoring import SegmentModel
from training import lineage
from training.sources import customer_ids, load_cdnow
from training.train import TrainOptions, train

CDNOW_OPTIONS = TrainOptions(report=False, stability_rounds=2, k_min=7, k_max=7, compare_sample=5_000)


@pytest.fixture(scope="module")
def cdnow():
    """CDNOW as the CLI loads it (monthly snapshots), without the stream sample (not needed here)."""
    return dataclasses.replace(load_cdnow(0), stream_sample=None)


@pytest.fixture(scope="module")
def cdnow_end(cdnow) -> pd.DataFrame:
    """One row per CDNOW customer, as of the end of the history (its last row)."""
    return cdnow.frame.groupby(level=0).tail(1)


@pytest.fixture(scope="module")
def first_model(cdnow, tmp_path_factory) -> SegmentModel:
    out = tmp_path_factory.mktemp("cdnow-seed0")
    train(cdnow, out, CDNOW_OPTIONS)
    return load_artifact(out)


def _ids(model: SegmentModel, rows: pd.DataFrame) -> np.ndarray:
    return model.score_arrays(to_frame(rows, model.spec))[0]


def test_a_model_trained_without_previous_starts_its_own_lineage(first_model):
    manifest = first_model.manifest
    assert manifest["segment_ids"] == list(range(7))
    assert manifest["lineage"]["parent_model_id"] is None
    assert manifest["lineage"]["ancestors"] == []
    assert manifest["lineage"]["ids_used"] == list(range(7))
    assert [p["segment_id"] for p in manifest["profiles"]] == list(range(7))
    assert first_model.lineage == [first_model.model_id]


def test_retraining_cdnow_with_another_seed_keeps_the_segment_ids(cdnow, cdnow_end, first_model, tmp_path):
    out = tmp_path / "seed2"
    train(cdnow, out, dataclasses.replace(CDNOW_OPTIONS, seed=2), previous=first_model)
    second = load_artifact(out)
    before, after = _ids(first_model, cdnow_end), _ids(second, cdnow_end)
    raw = second.pipeline.predict(to_frame(cdnow_end, second.spec))  # KMeans' own numbering
    kept, unmapped = float(np.mean(before == after)), float(np.mean(before == raw))
    figure = (
        f"CDNOW seed 0 -> seed 2: {kept:.1%} of {len(before):,} customers keep their segment id "
        f"(KMeans' own numbering: {unmapped:.1%})"
    )
    print(f"\n{figure}")  # noqa: T201 - the README quotes this figure (shown with -s)
    assert kept >= 0.95
    assert unmapped < 0.9, "seed 2 numbers the clusters differently: the ids are what kept them"

    recorded = json.loads((out / MANIFEST_FILE).read_text())["lineage"]
    assert recorded["parent_model_id"] == first_model.model_id
    assert recorded["ancestors"] == [first_model.model_id]
    assert recorded["retired"] == [], "the same data: every segment found again"
    assert sorted(second.segment_ids) == list(range(7))
    assert recorded["ids_used"] == list(range(7))
    assert all(m["previous_id"] == m["id"] and m["similarity"] > 0.9 for m in recorded["mapping"])
    assert second.lineage == [second.model_id, first_model.model_id]
    for segment in second.segment_ids:  # the profiles still say what the names say
        assert second.segment_name(segment) == first_model.segment_name(segment)
        assert second.profile(segment)["segment_id"] == segment


def test_retraining_on_half_the_customers_keeps_the_segment_ids(cdnow, cdnow_end, first_model, tmp_path):
    customers = customer_ids(cdnow.frame).unique()
    half = np.random.default_rng(1).choice(customers, len(customers) // 2, replace=False)
    subset = dataclasses.replace(cdnow, frame=cdnow.frame[customer_ids(cdnow.frame).isin(half)])
    train(subset, tmp_path / "half", CDNOW_OPTIONS, previous=first_model)
    second = load_artifact(tmp_path / "half")
    same = _ids(first_model, cdnow_end) == _ids(second, cdnow_end)  # both score every customer
    trained_on = customer_ids(cdnow_end).isin(half)
    figure = (
        f"CDNOW retrained on a random half of the customers: {same.mean():.1%} of all {len(same):,} "
        f"keep their segment id ({same[trained_on].mean():.1%} of the half it saw, "
        f"{same[~trained_on].mean():.1%} of the others)"
    )
    print(f"\n{figure}")  # noqa: T201 - the README quotes this figure (shown with -s)
    assert same.mean() >= 0.90
    assert same[~trained_on].mean() >= 0.90, "customers the new model never saw too"


def test_a_renumbered_model_publishes_the_previous_ids_for_every_customer(cdnow, first_model):
    """The same clusters in another order (what another KMeans seed may do): every row's id is equal."""
    order = [3, 6, 0, 5, 1, 4, 2]  # new cluster j is the first model's cluster order[j]
    pipeline = _with_centroids(first_model, first_model.centroids_scaled[order])
    rows = to_frame(cdnow.frame, first_model.spec)
    previous_ids = _ids(first_model, rows)
    renumbered = SegmentModel(pipeline, first_model.spec, {}).score_arrays(rows)[0]  # ids 0..6 = indices
    assert np.mean(first_model.indices_of(previous_ids) == renumbered) < 0.5, "really renumbered"

    found = lineage.match_previous(first_model, cdnow.frame, renumbered, 7)
    assert found.segment_ids == [first_model.segment_ids[i] for i in order]
    assert min(m["similarity"] for m in found.mapping) >= 0.98, "1% of rows lie beyond the radii"
    child = SegmentModel(pipeline, first_model.spec, found.manifest_fields() | {"model_id": "child"})
    assert np.array_equal(_ids(child, rows), previous_ids), "the same id for every one of the rows"
    assert child.spec.categorical == (), "CDNOW has no categorical features: columns are floats"
    tick = child.score_columns({n: rows[n].to_numpy(float) for n in child.spec.numeric}, len(rows))
    assert np.array_equal(tick[0], previous_ids), "ageing ticks score ids too"


def _with_centroids(model: SegmentModel, centroids: np.ndarray) -> Pipeline:
    """``model``'s preprocessing and a KMeans with exactly ``centroids``, in that order."""
    cluster = KMeans(n_clusters=len(centroids), init=centroids, n_init=1, max_iter=1).fit(centroids)
    cluster.cluster_centers_ = centroids.copy()  # the fit's rounding moved them a hair
    return Pipeline([*model.pipeline.steps[:-1], ("cluster", cluster)])


# Synthetic blobs: a customer table with two numeric columns, k given, through `segmenter train`.
CENTRES = {"A": (0, 0), "B": (30, 0), "C": (0, 30), "D": (30, 30), "E": (-30, 0), "F": (0, -30)}
SPEC = {"id_column": "id", "numeric": ["x", "y"]}


def _blobs(tmp_path, name: str, blobs: str) -> list[str]:
    """``--table`` / ``--spec`` arguments of a table of 150 points around each of ``blobs``'s centres."""
    rng = np.random.default_rng(len(blobs))
    parts = [
        pd.DataFrame(rng.normal(CENTRES[b], 1.0, size=(150, 2)), columns=["x", "y"]).assign(blob=b)
        for b in blobs
    ]
    table = pd.concat(parts, ignore_index=True)
    table.insert(0, "id", [f"{name}-{i}" for i in range(len(table))])
    table[["id", "x", "y"]].to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / f"{name}.spec.json").write_text(json.dumps(SPEC))
    return ["--table", str(tmp_path / f"{name}.csv"), "--spec", str(tmp_path / f"{name}.spec.json")]


def _train_blobs(tmp_path, name: str, blobs: str, previous: str | None = None) -> SegmentModel:
    k = str(len(blobs))
    more = [] if previous is None else ["--previous", str(tmp_path / previous)]
    args = ["train", *_blobs(tmp_path, name, blobs), "--out", str(tmp_path / name), "--k-min", k]
    assert main([*args, "--k-max", k, "--no-report", *more]) == 0
    return load_artifact(tmp_path / name)


def _id_at(model: SegmentModel, blob: str) -> int:
    x, y = CENTRES[blob]
    return model.score([{"x": x, "y": y}])[0].segment_id


def test_a_cluster_that_did_not_exist_gets_a_fresh_id(tmp_path, capsys):
    before = _train_blobs(tmp_path, "abc", "ABC")
    capsys.readouterr()
    after = _train_blobs(tmp_path, "abcd", "ABCD", previous="abc")
    printed = capsys.readouterr().out
    assert f"lineage    from {before.model_id}: 3 segments kept their ids, 1 new, 0 retired []" in printed
    assert "         3   new (closest previous segment: similarity 0.00)" in printed
    assert {b: _id_at(after, b) for b in "ABC"} == {b: _id_at(before, b) for b in "ABC"}
    assert _id_at(after, "D") == 3, "one above every id used"
    recorded = after.manifest["lineage"]
    assert recorded["ids_used"] == [0, 1, 2, 3]
    (fresh,) = [m for m in recorded["mapping"] if m["previous_id"] is None]
    assert fresh["id"] == 3
    assert fresh["similarity"] <= lineage.MATCH_THRESHOLD


def test_a_vanished_segment_s_id_is_never_given_to_a_new_one(tmp_path):
    before = _train_blobs(tmp_path, "abc", "ABC")
    vanished = _id_at(before, "B")
    after = _train_blobs(tmp_path, "ace", "ACE", previous="abc")  # B gone, E appeared
    assert _id_at(after, "E") == 3, f"not {vanished}, the id of B, which is gone"
    assert after.manifest["lineage"]["retired"] == [vanished]
    assert (_id_at(after, "A"), _id_at(after, "C")) == (_id_at(before, "A"), _id_at(before, "C"))

    later = _train_blobs(tmp_path, "acef", "ACEF", previous="ace")  # a grandchild: F appears
    assert _id_at(later, "F") == 4, "ids used anywhere in the lineage stay used"
    assert later.manifest["lineage"]["ids_used"] == [0, 1, 2, 3, 4]
    assert later.lineage == [later.model_id, after.model_id, before.model_id]


def test_a_previous_model_of_another_schema_is_exit_2_with_one_clear_line(tmp_path, caplog):
    _train_blobs(tmp_path, "abc", "ABC")
    other = tmp_path / "other.spec.json"
    other.write_text(json.dumps({"id_column": "id", "numeric": ["x"]}))
    args = ["train", "--table", str(tmp_path / "abc.csv"), "--spec", str(other), "--out", str(tmp_path / "x")]
    with caplog.at_level(logging.ERROR):
        code = main(
            [*args, "--k-min", "2", "--k-max", "2", "--no-report", "--previous", str(tmp_path / "abc")]
        )
    assert code == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "--previous model" in line
    assert "same input" in line
    assert not (tmp_path / "x" / MANIFEST_FILE).exists()

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["train", *_blobs(tmp_path, "abc", "ABC"), "--out", str(tmp_path / "y"),
                     "--previous", str(tmp_path / "missing")]) == 2  # fmt: skip
    assert f"--previous {tmp_path / 'missing'}" in caplog.text
