"""Segment names on synthetic customers with known segments: the name says what sets each segment
apart, a group of related columns once and by its label, and never against the segment's profile."""

import json

import numpy as np
import pandas as pd
import pytest

from model.artifact import MANIFEST_FILE
from model.spec import FeatureSpec
from training.profiles import segment_profiles
from training.sources import load_table
from training.train import TrainOptions, train

SPEC = FeatureSpec(
    "holder",
    numeric=("policy_a_count", "policy_a_amount", "balance", "calls", "n_purchases", "purchases_frequency",
             "claims"),
    heavy_tailed=("policy_a_amount", "balance"),
    labels={"policy_a": "policy A", "balance": "account balance", "calls": "service calls"},
    groups={"policy_a": ("policy_a_count", "policy_a_amount")},
)  # fmt: skip
INSURED, RICH, CALLERS, BASE = range(4)


def holders(n: int = 250, seed: int = 0, callers_buy: str = "twice") -> tuple[pd.DataFrame, np.ndarray]:
    """Four segments of ``n``: INSURED hold much of policy A (count and amount), RICH a high balance,
    CALLERS call a lot and buy little (median 2 purchases, or exactly 1 with ``callers_buy="once"``),
    BASE is everyone else. ``claims`` is zero for most, large for 40 % of BASE: a higher mean with the
    same median (0) as everyone, which no name may call "high"."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(4), n)
    size = len(truth)

    def by(segment: int, special, usual):
        return np.where(truth == segment, special, usual)

    few = np.ones(size) if callers_buy == "once" else rng.poisson(2.0, size)
    frame = pd.DataFrame(
        {
            "holder": [f"h{i:04d}" for i in range(size)],
            "policy_a_count": by(INSURED, rng.poisson(6, size), rng.poisson(0.5, size)).astype(float),
            "policy_a_amount": by(INSURED, rng.lognormal(7, 0.4, size), rng.lognormal(3, 0.4, size)),
            "balance": by(RICH, rng.lognormal(9, 0.3, size), rng.lognormal(6, 0.3, size)),
            "calls": by(CALLERS, rng.poisson(10, size), rng.poisson(1, size)).astype(float),
            "n_purchases": by(CALLERS, few, rng.poisson(8, size)).astype(float),
            "purchases_frequency": by(CALLERS, rng.beta(1, 9, size), rng.beta(5, 5, size)),
            "claims": by(BASE, np.where(rng.random(size) < 0.4, rng.lognormal(8, 0.3, size), 0.0), 0.0),
        }
    ).set_index("holder")
    return frame, truth


def words(profile: dict) -> dict[str, dict]:
    """facet -> its word record."""
    return {w["facet"]: w for w in profile["name_basis"]}


def assert_never_against_the_profile(profile: dict) -> None:
    facets = [w["facet"] for w in profile["name_basis"]]
    assert len(facets) == len(set(facets)), f"a group named twice: {profile['name']}"
    for word in profile["name_basis"]:
        above = word["median"] > word["population_median"]
        below = word["median"] < word["population_median"]
        assert above if word["direction"] == "high" else below, (profile["name"], word)


def test_names_say_what_sets_each_known_segment_apart_with_a_group_once_and_its_label():
    frame, truth = holders()
    profiles = segment_profiles(frame, truth, SPEC, 4)
    names = [p["name"] for p in profiles]
    assert len(set(names)) == 4, names
    for profile in profiles:
        assert_never_against_the_profile(profile)
        assert "policy_a" not in profile["name"], "labels, not column names"
        assert profile["name"].count("policy A") <= 1, profile["name"]
        assert "claims" not in profile["name"], "same median as everyone: neither high nor low"
    insured, rich, callers = profiles[INSURED], profiles[RICH], profiles[CALLERS]
    assert insured["name"].startswith("high policy A"), names
    assert words(insured)["policy_a"]["kind"] == "group"
    assert rich["name"].startswith("high account balance"), names
    assert words(callers)["calls"]["direction"] == "high", names
    assert "high service calls" in callers["name"], names
    assert words(callers)["frequency"]["word"] == "infrequent", "median 2 purchases is not one-time"
    assert "one-time" not in " ".join(names)


def test_one_timers_only_when_the_median_purchase_count_is_one():
    frame, truth = holders(callers_buy="once")
    callers = segment_profiles(frame, truth, SPEC, 4)[CALLERS]
    assert callers["median"]["n_purchases"] == 1
    assert words(callers)["frequency"]["word"] == "one-time", callers["name"]
    assert "one-timer" in callers["name"]


def test_a_trait_two_segments_share_names_neither_first():
    """Two segments both hold policy A; one of them also calls a lot: its name leads with the calls."""
    frame, truth = holders(seed=1)
    both = (truth == CALLERS) | (truth == INSURED)
    rng = np.random.default_rng(2)
    frame.loc[both, "policy_a_count"] = rng.poisson(6, both.sum()).astype(float)
    frame.loc[both, "policy_a_amount"] = rng.lognormal(7, 0.4, both.sum())
    profiles = segment_profiles(frame, truth, SPEC, 4)
    callers = profiles[CALLERS]
    assert callers["name_basis"][0]["facet"] != "policy_a", callers["name"]
    assert "high service calls" in callers["name"]
    assert len({p["name"] for p in profiles}) == 4


def test_a_grouped_table_trains_end_to_end_and_the_report_and_manifest_carry_the_names(tmp_path):
    frame, _ = holders(n=120)
    frame.reset_index().to_csv(tmp_path / "holders.csv", index=False)
    (tmp_path / "holders.json").write_text(json.dumps(SPEC.to_dict()))
    data = load_table(tmp_path / "holders.csv", tmp_path / "holders.json", 0.1, seed=0)
    summary = train(data, tmp_path / "m", TrainOptions(k_min=4, k_max=4, stability_rounds=2))
    manifest = json.loads((tmp_path / "m" / MANIFEST_FILE).read_text())
    names = manifest["segment_names"]
    assert len(set(names)) == 4
    assert sum(name.startswith("high policy A") for name in names) == 1, names
    assert sum(name.startswith("high account balance") for name in names) == 1, names
    assert [p["name"] for p in summary["segments"]] == names
    report = (tmp_path / "m" / "report.html").read_text()
    assert all(name in report for name in names)


@pytest.mark.parametrize("seed", [3, 4])
def test_names_are_unique_and_never_contradict_the_profile_on_any_seed(seed):
    frame, truth = holders(seed=seed)
    profiles = segment_profiles(frame, truth, SPEC, 4)
    assert len({p["name"] for p in profiles}) == 4
    for profile in profiles:
        assert_never_against_the_profile(profile)
