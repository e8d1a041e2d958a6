"""The k rule (issue 12, point 7): the largest k whose silhouette is within 0.05 of the best and whose
bootstrap refits agree (mean ARI >= 0.9), every segment >= the minimum share; else the most stable k
within the tolerance. Hand-made tables for the rule itself, small synthetic blobs for ``select_k``."""

import numpy as np
import pytest

from training import selection
from training.selection import choose_k, select_k


def row(k, silhouette, ari, admissible=True):
    return {"k": k, "admissible": admissible, "silhouette": silhouette, "ari_mean": ari, "reason": ""}


def test_the_largest_stable_k_near_the_best_silhouette_wins_and_each_row_says_why():
    table = [
        row(2, 0.40, 0.99),
        row(3, 0.37, 0.95),
        row(4, 0.36, 0.93),
        row(5, 0.36, 0.70),  # near, but refits disagree
        row(6, 0.34, 0.97),  # stable, but less well separated than the tolerance allows
        row(7, 0.30, None, admissible=False) | {"reason": "smallest segment 1.0% < 2%"},
    ]
    k, reason = choose_k(table)
    assert k == 4
    assert reason.startswith("k=4 is the largest k with silhouette within 0.05 of the best (0.400 at k=2)")
    assert "ARI 0.930" in reason
    assert [r["chosen"] for r in table] == [False, False, True, False, False, False]
    assert [r["reason"] for r in table] == [
        "a larger k qualifies",
        "a larger k qualifies",
        "chosen",
        "bootstrap ARI 0.700 < 0.9",
        "silhouette below 0.350",
        "smallest segment 1.0% < 2%",
    ]


def test_the_tolerance_and_the_stability_bar_are_parameters():
    table = [row(2, 0.40, 0.99), row(3, 0.37, 0.95), row(4, 0.36, 0.93)]
    assert choose_k(table, silhouette_tolerance=0.02)[0] == 2
    assert choose_k(table, min_stability=0.94)[0] == 3


def test_with_no_stable_k_near_the_best_the_most_stable_of_them_is_chosen_and_the_reason_says_so():
    table = [row(2, 0.40, 0.85), row(3, 0.39, 0.88), row(4, 0.38, 0.62), row(5, 0.20, 0.99)]
    k, reason = choose_k(table)
    assert k == 3
    assert reason.startswith("no k with silhouette within 0.05 of the best")
    assert "k=3 is the most stable of them (ARI 0.880" in reason


def test_no_admissible_k_is_an_error_naming_each_reason():
    table = [row(2, 0.5, None, admissible=False) | {"reason": "smallest segment 1.0% < 2%"}]
    with pytest.raises(ValueError, match=r"no k in \[2\] is admissible.*1\.0% < 2%"):
        choose_k(table)


def test_select_k_prefers_four_stable_groups_to_the_two_with_the_best_silhouette():
    """Two pairs of blobs: k=2 separates the pairs best, k=4 finds every blob almost as well and just
    as reproducibly; k=3 is near too but splits one pair arbitrarily, so its refits disagree."""
    rng = np.random.default_rng(0)
    centres = [(0, 0), (6, 0), (15.5, 0), (21.5, 0)]
    points = np.vstack([rng.normal(c, 1.0, size=(400, 2)) for c in centres])
    chosen = select_k(points, range(2, 7), silhouette_sample=2000, stability_sample=1600, stability_rounds=3)
    by_k = {r["k"]: r for r in chosen.table}
    assert by_k[2]["silhouette"] == max(r["silhouette"] for r in chosen.table), "silhouette alone: k=2"
    assert chosen.k == 4
    assert by_k[4]["ari_mean"] >= 0.99
    assert by_k[3]["ari_mean"] < 0.9
    assert by_k[3]["reason"].startswith("bootstrap ARI")
    assert chosen.stability["ari_mean"] == by_k[4]["ari_mean"]
    assert chosen.stability["n_points"] == 1600
    assert min(by_k[4]["shares"]) > 0.2


def test_the_progress_bar_counts_k_values_not_a_rate_that_reads_as_thousands(monkeypatch):
    """The bar as tqdm renders it once all k are done (read from the bar: what reached the terminal
    depends on tqdm's refresh interval)."""
    bars = []

    class Recording(selection.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(selection, "tqdm", Recording)
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(c, 0.5, size=(100, 2)) for c in [(0, 0), (5, 5)]])
    select_k(points, range(2, 5), silhouette_sample=200, stability_sample=200, stability_rounds=2)
    (k_bar,) = [bar for bar in bars if bar.desc == "choosing k"]
    assert (k_bar.total, k_bar.n, k_bar.unit) == (3, 3, "k")
    shown = k_bar.format_meter(**k_bar.format_dict)
    assert shown.startswith("choosing k: 3/3 k values"), shown
    assert "k/s" not in shown, shown
    assert "s/k" not in shown, shown
