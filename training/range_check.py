"""Training data outside the spec's declared ranges: counted per column, and kept as it is.

A spec's ``ranges`` are the contract for scoring inputs: the web form and the API reject a value
outside them, and the stream scores it but counts it (``segmenter_features_out_of_range_total``).
Training does not clip or drop such values: they are what the data says, and clipping would hide
a range that is wrong (a declared maximum of 1,000 for spend that reaches 3,099) as surely as
dropping rows would bias the model. Instead training warns, prints the counts in its summary, keeps
them in the manifest (``data.out_of_range``) and shows them in the report, so the user fixes the
range or the data. Customers whose values lie outside the range train the model but cannot be
scored through the form or the API until the range is widened.

>>> from model.spec import FeatureRange, FeatureSpec
>>> spec = FeatureSpec("id", numeric=("spend", "orders"),
...                    ranges={"spend": FeatureRange("EUR", 0, 1000), "orders": FeatureRange("", 0, 50)})
>>> frame = pd.DataFrame({"spend": [5.0, 3099.0, -1.0, 1200.0, None], "orders": [1, 2, 3, 4, 5]})
>>> found = out_of_range(frame, spec)
>>> list(found), found["spend"]["below_minimum"], found["spend"]["above_maximum"]
(['spend'], 1, 2)
>>> found["spend"]["observed_min"], found["spend"]["observed_max"]
(-1.0, 3099.0)
>>> describe(found)
'spend: 1 below the minimum 0, 2 above the maximum 1,000 (observed -1 .. 3,099)'
"""

from __future__ import annotations

import pandas as pd

from model.spec import FeatureSpec

__all__ = ["ADVICE", "describe", "out_of_range"]

ADVICE = (
    "training keeps these values as they are, but the form and the API reject them when scoring: "
    "widen the range in the spec or fix the data"
)


def out_of_range(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, dict]:
    """For each column of ``frame`` with values outside its declared range: how many lie below the
    minimum and above the maximum, the bounds, and the observed minimum and maximum (missing values
    are not counted). Columns inside their range, or without one, are left out."""
    found = {}
    for name, bounds in spec.ranges.items():
        if name not in frame:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        below = int((values < bounds.minimum).sum()) if bounds.minimum is not None else 0
        above = int((values > bounds.maximum).sum()) if bounds.maximum is not None else 0
        if below or above:
            found[name] = {
                "below_minimum": below, "above_maximum": above,
                "minimum": bounds.minimum, "maximum": bounds.maximum,
                "observed_min": float(values.min()), "observed_max": float(values.max()),
            }  # fmt: skip
    return found


def _number(value: float) -> str:
    return format(value, ",.6g")


def describe(found: dict[str, dict]) -> str:
    """One line: per column, the counts below and above the range and the observed span."""
    return "; ".join(f"{name}: {_column(v)}" for name, v in found.items())


def _column(v: dict) -> str:
    counts = []
    if v["below_minimum"]:
        counts.append(f"{v['below_minimum']:,} below the minimum {_number(v['minimum'])}")
    if v["above_maximum"]:
        counts.append(f"{v['above_maximum']:,} above the maximum {_number(v['maximum'])}")
    return f"{', '.join(counts)} (observed {_number(v['observed_min'])} .. {_number(v['observed_max'])})"
