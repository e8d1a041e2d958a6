"""Training end to end: CDNOW through `segmenter train` (trained ONCE for the whole module, and every
acceptance check of issue 12 asserted on that run), customer tables, reproducibility, and the
regression test for the original bug (every customer landed in cluster 0)."""

import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deploy.cli import main
from model.artifact import MANIFEST_FILE, MODEL_FILE, load_artifact
from model.events import Event
from model.features import EVENT_FEATURE_SPEC, batch_features, snapshot_features
from training.datasets import cdnow_events, cdnow_holdout_ids
from training.snapshots import snapshot_times
from training.sources import load_table
from training.train import TrainOptions, train

DAY_MS = 86_400_000
EXAMPLES = Path(__file__).resolve().parents[1] / "training" / "examples"


@pytest.fixture(scope="module")
def cdnow_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdnow")
    assert main(["train", "--events", "cdnow", "--out", str(out)]) == 0
    return out


def purchases(customer, days_and_amounts, start_ms):
    return [
        Event(f"{customer}-{i}", customer, "purchase", start_ms + day * DAY_MS, amount=amount, quantity=1)
        for i, (day, amount) in enumerate(days_and_amounts)
    ]


def test_cdnow_training_writes_model_manifest_projection_and_a_self_contained_report(cdnow_model):
    for name in (MODEL_FILE, MANIFEST_FILE, "report.html", "projection.json"):
        assert (cdnow_model / name).stat().st_size > 0, name
    manifest = json.loads((cdnow_model / MANIFEST_FILE).read_text())
    report = (cdnow_model / "report.html").read_text()
    assert "data:image/png;base64," in report
    assert 'src="http' not in report
    assert all(name in report for name in manifest["segment_names"])
    assert abs(sum(manifest["segment_distribution"]) - 1) < 1e-3
    assert set(manifest["feature_baselines"]) == set(manifest["feature_names"])
    # The stream's drift reference: the whole of CDNOW fits under the sample cap; one row per event (the
    # scorer scores every event), as of its time.
    assert abs(sum(manifest["stream_segment_distribution"]) - 1) < 1e-3
    assert set(manifest["stream_feature_baselines"]) == set(manifest["feature_names"])
    reference = manifest["stream_reference"]
    assert (reference["customers"], reference["events"], reference["rows"]) == (23_570, 69_659, 69_659)
    data = manifest["data"]
    assert data["features_as_of"] == (
        "end of history 1998-06-30 and 17 monthly snapshots (1997-02-01 .. 1998-06-01)"
    )
    assert data["snapshots"] == "monthly"
    assert (data["customers"], data["training_customers"]) == (23_570, 23_570 - 2_357)
    assert 17 * 20_000 < data["rows"] < 18 * 23_570
    assert {"age", "income", "gender", "country"} <= set(manifest["dropped_features"])
    assert "why this k" in report
    assert html.escape(manifest["k_choice"]["reason"]) in report
    assert manifest["source_schema_hash"] == EVENT_FEATURE_SPEC.schema_hash()
    projection = json.loads((cdnow_model / "projection.json").read_text())
    assert len(projection["x"]) == len(projection["segment"]) > 100


def test_cdnow_gives_segments_people_can_act_on_including_a_lapsed_one(cdnow_model):
    """Issue 12's acceptance: >= 4 segments, each >= 2 %, stable under bootstrap refits, recency among
    the features (it is no longer constant), and a high-recency segment named as such."""
    manifest = json.loads((cdnow_model / MANIFEST_FILE).read_text())
    assert manifest["k"] >= 4, manifest["k_choice"]
    assert min(manifest["segment_distribution"]) >= 0.02
    assert min(manifest["holdout"]["shares"]) >= 0.02
    assert manifest["stability"]["ari_mean"] >= 0.9
    assert "recency_days" in manifest["feature_names"]
    chosen = [row for row in manifest["k_selection"] if row["chosen"]]
    assert [row["k"] for row in chosen] == [manifest["k"]]
    assert chosen[0]["ari_mean"] == manifest["stability"]["ari_mean"]
    assert manifest["k_choice"]["reason"].startswith(f"k={manifest['k']} is the largest k")
    overall = np.median([p["median"]["recency_days"] for p in manifest["profiles"]])
    lapsed = [p for p in manifest["profiles"] if p["name"].split()[0] in ("lapsed", "lost", "at")]
    assert lapsed, [p["name"] for p in manifest["profiles"]]
    for profile in lapsed:
        assert profile["z_scores"]["recency_days"] > 0.25
        assert profile["median"]["recency_days"] > max(overall, 180)
    for profile in manifest["profiles"]:  # names never contradict the profile
        words, z = profile["name"].split(), profile["z_scores"]
        assert ("lapsed" in words) == (z["recency_days"] >= 0.25), profile["name"]
        assert "active" not in words or z["recency_days"] < 0
        assert "frequent" not in words or (z["frequency"] > 0 and profile["median"]["frequency"] > 1)
        assert "one-timers" not in words or profile["median"]["frequency"] <= 1
        assert "loyal" not in words or (z["tenure_days"] > 0 and z["recency_days"] < 0.1)
        facets = [word["facet"] for word in profile["name_basis"]]
        assert len(facets) == len(set(facets)), f"one word per facet: {profile['name']}"
        for word in profile["name_basis"]:  # every word is borne out by the medians
            side = word["median"] - word["population_median"]
            assert side > 0 if word["direction"] == "high" else side < 0, (profile["name"], word)
    assert len(set(manifest["segment_names"])) == manifest["k"]


def test_held_out_cdnow_customers_fill_every_segment(cdnow_model):
    model = load_artifact(cdnow_model, expected_schema_hash=EVENT_FEATURE_SPEC.schema_hash())
    events = list(cdnow_events())
    times = snapshot_times(min(e.ts_ms for e in events), max(e.ts_ms for e in events), "monthly")
    frame = snapshot_features(events, times)
    held = frame[frame.index.get_level_values("customer_id").isin(list(cdnow_holdout_ids()))]
    assert held.index.get_level_values("customer_id").nunique() == 2_357
    segments = [a.segment_id for a in model.score(held.reset_index().to_dict(orient="records"))]
    shares = np.bincount(segments, minlength=model.k) / len(segments)
    assert shares.min() >= 0.02, shares
    np.testing.assert_allclose(shares, model.manifest["holdout"]["shares"], atol=1e-3)


def test_clearly_different_customers_get_different_segments_and_quiet_ones_lapse(cdnow_model):
    """The original bug: the deployed model put every customer in cluster 0.

    The customers are built from events and scored as of one clock time (1997-12-31), as the stream
    scores a partition as of its stream time; the one-time buyer is also scored right after its
    purchase: time moving on is what turns it from active into lapsed.
    """
    model = load_artifact(cdnow_model)
    start_ms = 852_076_800_000  # 1997-01-01
    events = (
        purchases("one-time-buyer", [(40, 15.0)], start_ms)
        + purchases("frequent-big-spender", [(d, 80.0) for d in range(0, 365, 14)], start_ms)
        + purchases("new-buyer", [(350, 20.0)], start_ms)
    )

    def segments(now_day):
        features = batch_features(events, now_ms=start_ms + now_day * DAY_MS)
        assignments = model.score(features.to_dict(orient="records"))
        return {c: a.segment_id for c, a in zip(features.index, assignments, strict=True)}

    segment, profiles = segments(365), model.profiles
    assert segment["one-time-buyer"] != segment["frequent-big-spender"]
    assert segment["one-time-buyer"] != segment["new-buyer"]
    assert profiles[segment["one-time-buyer"]]["z_scores"]["frequency"] < 0
    assert profiles[segment["frequent-big-spender"]]["z_scores"]["monetary_total"] > 0
    assert profiles[segment["frequent-big-spender"]]["z_scores"]["frequency"] > 0
    assert model.segment_names[segment["one-time-buyer"]].startswith("lapsed")
    assert not model.segment_names[segment["frequent-big-spender"]].startswith("lapsed")
    assert not model.segment_names[segments(41)["one-time-buyer"]].startswith("lapsed")


def test_same_seed_gives_the_same_model(tmp_path):
    data = load_table(EXAMPLES / "customers.csv", EXAMPLES / "customers.spec.json", 0.1, seed=5)
    options = TrainOptions(seed=5, report=False, k_max=5)
    first = train(data, tmp_path / "a", options)
    second = train(data, tmp_path / "b", options)
    a, b = load_artifact(tmp_path / "a"), load_artifact(tmp_path / "b")
    np.testing.assert_array_equal(a.centroids_scaled, b.centroids_scaled)
    rows = data.frame.reset_index().to_dict(orient="records")
    assert [x.segment_id for x in a.score(rows)] == [x.segment_id for x in b.score(rows)]
    assert first["metrics"] == second["metrics"]
    for key in ("model_sha256", "metrics", "segment_distribution", "profiles", "stability"):
        assert a.manifest[key] == b.manifest[key], key
    untimed = [
        [{k: v for k, v in row.items() if k != "seconds"} for row in m.manifest["k_selection"]]
        for m in (a, b)
    ]
    assert untimed[0] == untimed[1]


def test_a_new_customer_table_trains_with_no_code_change(tmp_path):
    rng = np.random.default_rng(11)
    n = 400
    busy = rng.random(n) < 0.4
    table = pd.DataFrame(
        {
            "member": [f"m{i}" for i in range(n)],
            "gym_visits": rng.poisson(np.where(busy, 14, 2)),
            "fees_paid": rng.lognormal(np.where(busy, 5.5, 3.5), 0.5),
            "membership": rng.choice(["day", "month", "year"], n),
        }
    )
    table.to_csv(tmp_path / "members.csv", index=False)
    spec = {"id_column": "member", "numeric": ["gym_visits", "fees_paid"], "categorical": ["membership"],
            "heavy_tailed": ["gym_visits", "fees_paid"]}  # fmt: skip
    (tmp_path / "members.json").write_text(json.dumps(spec))
    argv = ["train", "--table", str(tmp_path / "members.csv"), "--spec", str(tmp_path / "members.json")]
    assert main([*argv, "--out", str(tmp_path / "model")]) == 0
    model = load_artifact(tmp_path / "model")
    assert model.spec.feature_names == ("gym_visits", "fees_paid", "membership")
    quiet, busy_ = model.score([{"gym_visits": 1, "fees_paid": 30, "membership": "day"},
                                {"gym_visits": 15, "fees_paid": 250, "membership": "year"}])  # fmt: skip
    assert quiet.segment_id != busy_.segment_id
    assert (tmp_path / "model" / "report.html").exists()
    assert "stream_segment_distribution" not in model.manifest, "a table has no events to replay"


def test_a_table_that_does_not_match_its_spec_is_refused_by_name(tmp_path, caplog):
    pd.DataFrame({"member": ["a", "b"], "visits": [1, 2]}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "s.json").write_text(json.dumps({"id_column": "member", "numeric": ["visits", "fees"]}))
    argv = ["train", "--table", str(tmp_path / "t.csv"), "--spec", str(tmp_path / "s.json")]
    with caplog.at_level(logging.ERROR):
        assert main([*argv, "--out", str(tmp_path / "m")]) == 2
    assert "['fees']" in caplog.text
    assert not (tmp_path / "m" / MODEL_FILE).exists()
