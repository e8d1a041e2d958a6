"""The example customer tables in ``training/examples/``, written from a seed: ``python -m
training.example_tables`` rewrites them byte for byte.

``shoppers.csv`` is a shop's customer table of 3,000 members (id ``member_id``) with demographics
and behaviour, declared by ``shoppers.spec.json`` (12 feature columns with units, ranges, labels and
a group). It is drawn from four known segments; each member's true segment is in
``shoppers.truth.csv``, which the spec does not declare, so training never sees it and a test can
measure how well training recovers it (adjusted Rand index).

====================  ======  =====================================================================
segment               share   who they are
====================  ======  =====================================================================
young bargain hunters  30%    early twenties, modest income, online, many small orders and visits,
                              many returns, members for about a year
affluent families      25%    around forty, high income, households of 3-6, mixed channels,
                              regular large orders
lapsed store shoppers  25%    older, long-standing store customers with no order for 7+ months
loyal big spenders     20%    high income, members for years, frequent large orders, recent
====================  ======  =====================================================================

Gender and region are drawn alike in every segment: columns that separate nobody, as real tables
have. No value is missing: the four segments are what the columns say.

>>> table, truth = shoppers(n=8)
>>> list(table.columns) == [ID_COLUMN, *SHOPPERS_SPEC["numeric"], *SHOPPERS_SPEC["categorical"]]
True
>>> sorted(set(truth["segment"])) <= sorted(SEGMENTS)
True
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["EXAMPLES", "ID_COLUMN", "SEGMENTS", "SHOPPERS_SPEC", "shoppers", "write_shoppers"]

EXAMPLES = Path(__file__).resolve().parent / "examples"
ID_COLUMN = "member_id"
SEED = 20240501
ROWS = 3000
SEGMENTS = {  # name -> share of the members
    "young bargain hunters": 0.30,
    "affluent families": 0.25,
    "lapsed store shoppers": 0.25,
    "loyal big spenders": 0.20,
}
_RANGES = {  # column -> (unit, minimum, maximum, help); the generated data stays inside them
    "age": ("years", 18, 100, "age at the last profile update"),
    "income": ("EUR / year", 0, 1_000_000, "yearly household income before tax"),
    "household_size": ("people", 1, 12, "people living in the household"),
    "tenure_months": ("months", 0, 600, "months since the member joined"),
    "orders_12m": ("orders", 0, 500, "orders placed, cancelled ones not counted"),
    "spend_12m": ("EUR", 0, 100_000, "amount spent, returns not deducted"),
    "days_since_last_order": ("days", 0, 3650, "0 = ordered today"),
    "returns_12m": ("returns", 0, 500, "orders sent back"),
    "visits_30d": ("visits", 0, 1000, "visits to a store or the web site"),
}
SHOPPERS_SPEC = {
    "id_column": ID_COLUMN,
    "numeric": list(_RANGES),
    "categorical": ["gender", "region", "channel"],
    # Money and counts: log-transformed before scaling, so big spenders do not dominate.
    "heavy_tailed": ["income", "orders_12m", "spend_12m", "returns_12m", "visits_30d"],
    "ranges": {
        name: {"unit": unit, "minimum": low, "maximum": high, "help": text}
        for name, (unit, low, high, text) in _RANGES.items()
    },
    "labels": {
        "age": "Age",
        "income": "Yearly income",
        "household_size": "Household size",
        "tenure_months": "Member for",
        "orders_12m": "Orders in the last 12 months",
        "spend_12m": "Spend in the last 12 months",
        "days_since_last_order": "Days since the last order",
        "returns_12m": "Returns in the last 12 months",
        "visits_30d": "Visits in the last 30 days",
        "gender": "Gender",
        "region": "Region",
        "channel": "Shopping channel",
    },
    "groups": {"orders and spend": ["orders_12m", "spend_12m"]},
}
CHANNELS = ("store", "online", "mixed")


def _segment_columns(name: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The numeric columns and channel of ``n`` members of segment ``name`` (before rounding)."""
    normal, lognormal, poisson, uniform = rng.normal, rng.lognormal, rng.poisson, rng.uniform
    if name == "young bargain hunters":
        orders = 4 + poisson(10, n)
        return {
            "age": normal(24, 3.5, n), "income": lognormal(np.log(26_000), 0.3, n),
            "household_size": 1 + poisson(0.4, n), "tenure_months": uniform(1, 24, n),
            "orders_12m": orders, "spend_12m": orders * lognormal(np.log(22), 0.25, n),
            "days_since_last_order": rng.exponential(12, n), "returns_12m": rng.binomial(orders, 0.3),
            "visits_30d": 8 + poisson(14, n), "channel": _channel(rng, n, (0.02, 0.9, 0.08)),
        }  # fmt: skip
    if name == "affluent families":
        orders = 6 + poisson(10, n)
        return {
            "age": normal(42, 5, n), "income": lognormal(np.log(95_000), 0.25, n),
            "household_size": 3 + poisson(1.0, n), "tenure_months": uniform(24, 96, n),
            "orders_12m": orders, "spend_12m": orders * lognormal(np.log(140), 0.25, n),
            "days_since_last_order": rng.exponential(20, n), "returns_12m": rng.binomial(orders, 0.06),
            "visits_30d": 2 + poisson(5, n), "channel": _channel(rng, n, (0.2, 0.2, 0.6)),
        }  # fmt: skip
    if name == "lapsed store shoppers":
        days = uniform(220, 1100, n)
        # No order in the last 12 months means none counted in the 12-month columns either.
        orders = np.where(days < 365, 1 + poisson(0.3, n), 0)
        return {
            "age": normal(60, 8, n), "income": lognormal(np.log(42_000), 0.3, n),
            "household_size": 1 + poisson(0.8, n), "tenure_months": uniform(60, 240, n),
            "orders_12m": orders, "spend_12m": orders * lognormal(np.log(45), 0.35, n),
            "days_since_last_order": days, "returns_12m": np.zeros(n),
            "visits_30d": poisson(0.2, n), "channel": _channel(rng, n, (0.92, 0.03, 0.05)),
        }  # fmt: skip
    orders = 30 + poisson(25, n)  # loyal big spenders
    return {
        "age": normal(50, 7, n), "income": lognormal(np.log(140_000), 0.3, n),
        "household_size": 1 + poisson(1.2, n), "tenure_months": uniform(96, 300, n),
        "orders_12m": orders, "spend_12m": orders * lognormal(np.log(180), 0.3, n),
        "days_since_last_order": rng.exponential(4, n), "returns_12m": rng.binomial(orders, 0.04),
        "visits_30d": 15 + poisson(20, n), "channel": _channel(rng, n, (0.15, 0.35, 0.5)),
    }  # fmt: skip


def _channel(rng: np.random.Generator, n: int, shares: tuple[float, float, float]) -> np.ndarray:
    return rng.choice(np.array(CHANNELS), n, p=shares)


def shoppers(n: int = ROWS, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, truth)``: ``n`` members in random segment order, and each member's true segment."""
    rng = np.random.default_rng(seed)
    counts = [round(share * n) for share in SEGMENTS.values()]
    counts[0] += n - sum(counts)
    parts = [pd.DataFrame(_segment_columns(name, c, rng)) for name, c in zip(SEGMENTS, counts, strict=True)]
    members = pd.concat(parts, ignore_index=True)
    truth = np.repeat(list(SEGMENTS), counts)
    order = rng.permutation(n)
    members, truth = members.iloc[order].reset_index(drop=True), truth[order]
    members["gender"] = rng.choice(np.array(["female", "male", "other"]), n, p=(0.5, 0.47, 0.03))
    members["region"] = rng.choice(np.array(["north", "south", "east", "west"]), n)
    table = _rounded(members)
    table.insert(0, ID_COLUMN, [f"mem-{i:05d}" for i in range(1, n + 1)])
    return table, pd.DataFrame({ID_COLUMN: table[ID_COLUMN], "segment": truth})


def _rounded(members: pd.DataFrame) -> pd.DataFrame:
    """Whole numbers where people count, cents for money, everything inside the spec's ranges; as text,
    so the CSV is the same bytes whatever pandas' float formatting."""
    out = {}
    for name in _RANGES:
        _, low, high, _ = _RANGES[name]
        values = np.clip(members[name].to_numpy(dtype=float), low, high)
        if name == "spend_12m":
            out[name] = [f"{v:.2f}" for v in values]
        elif name == "income":
            out[name] = [f"{round(v, -2):.0f}" for v in values]
        else:
            out[name] = [f"{v:.0f}" for v in np.floor(values)]
    return pd.DataFrame(out | {c: members[c].astype(str) for c in SHOPPERS_SPEC["categorical"]})


def write_shoppers(directory: str | Path = EXAMPLES) -> list[Path]:
    """Write ``shoppers.csv``, ``shoppers.spec.json`` and ``shoppers.truth.csv``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table, truth = shoppers()
    paths = [directory / name for name in ("shoppers.csv", "shoppers.spec.json", "shoppers.truth.csv")]
    table.to_csv(paths[0], index=False, lineterminator="\n")
    paths[1].write_text(json.dumps(SHOPPERS_SPEC, indent=2) + "\n", encoding="utf-8")
    truth.to_csv(paths[2], index=False, lineterminator="\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(EXAMPLES), help="directory to write (default: %(default)s)")
    for path in write_shoppers(parser.parse_args(argv).out):
        print(path)  # noqa: T201 - the command's output: the files it wrote
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
