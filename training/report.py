"""The training report: ONE self-contained HTML file (figures embedded as base64 PNG, no external links).

It opens with a warning in plain words when the bootstrap refits disagree (mean ARI below 0.8). Then
sections: summary, data and EDA (distributions, missing values, correlations), k selection (the rule,
why this k won, curves
and table), silhouette plot, 2-D projection coloured by segment, segment profiles, held-out check,
algorithm comparison, bootstrap stability, and time per training step.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model.spec import FeatureSpec
from training import plots
from training.range_check import ADVICE

logger = logging.getLogger(__name__)

__all__ = ["ReportInputs", "html_page", "write_report"]

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
img{max-width:100%}.note{color:#555;font-size:0.9em}
.warning{border:2px solid #b00;background:#fff3f3;padding:0.5em 1em;margin:1em 0}
"""


@dataclass
class ReportInputs:
    """Everything the report shows; built by :mod:`training.train`."""

    title: str
    summary: dict
    frame: pd.DataFrame  # training customers, raw model features
    spec: FeatureSpec  # the features the model uses
    missing_share: dict[str, float]  # every source feature, dropped ones included
    dropped: dict[str, str]
    selection_table: list[dict]
    points: np.ndarray  # transformed training matrix
    labels: np.ndarray
    profiles: list[dict]
    projection: dict
    comparison: list[dict] = field(default_factory=list)
    stability: dict = field(default_factory=dict)
    holdout: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    imputed: dict[str, dict] = field(default_factory=dict)  # feature -> count, share, with
    k_reason: str = ""  # why the chosen k won (training.selection.choose_k)
    stability_warning: str = ""  # training.selection.stability_warning; opens the report when set


def _table(rows, columns: list[str] | None = None) -> str:
    frame = pd.DataFrame([{key: _cell(value) for key, value in row.items()} for row in rows])
    if columns:
        frame = frame[[c for c in columns if c in frame]]
    return frame.to_html(index=False, escape=True, na_rep="—", float_format=lambda v: f"{v:,.4g}")


def _cell(value):
    """A table cell people can read: nested values as text, no Python reprs (None -> the dash)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list | tuple):
        return _plain(value)
    return value


def _plain(value) -> str:
    """A value as words: dicts as ``key: value; ...``, lists of shares as percentages, ``None`` as a dash.

    >>> _plain({"silhouette": 0.28983, "calinski_harabasz": 158787.8, "note": None})
    'silhouette: 0.2898; calinski harabasz: 158,788; note: —'
    >>> _plain({"shares": [0.25, 0.75], "invalid_events": {"lines": 2}})
    'shares: 25.0%, 75.0%; invalid events: (lines: 2)'
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        parts = [f"{str(k).replace('_', ' ')}: {_nested(v)}" for k, v in value.items()]
        return "; ".join(parts) or "—"
    if isinstance(value, list | tuple):
        numbers = all(isinstance(v, float) and 0 <= v <= 1 for v in value)
        return ", ".join(f"{v:.1%}" if numbers else _plain(v) for v in value) or "—"
    if isinstance(value, float):  # no exponents: 158,788 rather than 1.588e+05
        return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.4g}"
    return str(value)


def _nested(value) -> str:
    return f"({_plain(value)})" if isinstance(value, dict) and value else _plain(value)


def _stability_opening(r: ReportInputs) -> str:
    """The warning the report opens with when the refits disagree, and how its number is computed."""
    if not r.stability_warning:
        return ""
    rounds, points = r.stability.get("rounds", 0), r.stability.get("n_points", 0)
    how = (
        f"How this is computed: the chosen k was refitted {rounds} times, each time on a bootstrap "
        f"resample of {points:,} training rows, and every refit assigned those same rows. For each of "
        f"the {rounds * (rounds - 1) // 2} pairs of refits, the Rand index is the share of pairs of rows "
        "that both refits treat alike (in one segment, or apart); the percentage is its mean. The "
        "adjusted Rand index (ARI) corrects that share for chance: 1 is the same segments every time, "
        "0 no better than chance. Different refits drawing different segments means a customer's "
        "segment depends on the luck of the sample: try fewer segments (--k-max), fewer or other "
        "columns, or pass --require-stable to make training fail instead."
    )
    return (
        f'<div class="warning"><p><b>Unstable segments: {html.escape(r.stability_warning)}.</b></p>'
        f"{_note(how)}</div>"
    )


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _section(title: str, *parts: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n" + "\n".join(parts)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _profiles_table(profiles: list[dict], spec: FeatureSpec) -> str:
    rows = []
    for p in profiles:
        row = {"segment": p["segment_id"], "name": p["name"], "rows": p["size"], "share": p["share"]}
        row["why this name"] = "; ".join(_basis(word, spec) for word in p.get("name_basis", [])) or "—"
        row |= {f"median {spec.label(n)}": p["median"][n] for n in spec.numeric}
        row |= {f"mode {spec.label(n)}": p["mode"][n] for n in spec.categorical}
        row["stands out"] = ", ".join(
            f"{spec.label(t['feature'])} {t['z']:+.2f}σ" for t in p["top_features"][:3]
        )
        rows.append(row)
    return _table(rows)


def _ranges_section(r: ReportInputs) -> str:
    """Training values outside the spec's declared ranges, per column (``training.range_check``)."""
    outside = r.summary.get("data", {}).get("out_of_range") or {}
    if not outside:
        said = "Every value lies inside its declared range." if r.spec.ranges else "No ranges declared."
        return _section("Declared ranges", _note(said))
    rows = [{"feature": name} | counts for name, counts in outside.items()]
    return _section("Declared ranges", _note(f"Values outside the spec's ranges: {ADVICE}."), _table(rows))


def _basis(word: dict, spec: FeatureSpec) -> str:
    """One word of a name and its evidence: "lapsed: recency_days median 352 vs 160 overall (+1.07σ)"."""
    return (
        f"{word['word']}: {spec.label(word['column'])} median {_plain(word['median'])} vs "
        f"{_plain(word['population_median'])} overall ({word['z']:+.2f}σ)"
    )


def _body(r: ReportInputs) -> list[str]:
    names = [p["name"] for p in r.profiles]
    dropped = [{"feature": k, "why dropped": v} for k, v in r.dropped.items()]
    imputed = [{"feature": k} | v for k, v in r.imputed.items()]
    summary = [{"item": k, "value": _plain(v)} for k, v in r.summary.items()]
    return [
        _section("Summary", _table(summary)),
        _section(
            "Data",
            _note(
                f"{len(r.frame):,} training rows ({r.frame.index.get_level_values(0).nunique():,} customers; "
                f"as of: {r.summary.get('data', {}).get('features_as_of', 'a customer table, no clock')}); "
                f"features used: {', '.join(r.spec.feature_names)}."
            ),
            _table(dropped) if dropped else _note("No feature was dropped."),
            "<h3>Distributions</h3>",
            _img(plots.distributions_png(r.frame, r.spec), "feature distributions"),
            "<h3>Missing values</h3>",
            _img(plots.missing_png(r.missing_share), "missing values"),
            "<h3>Imputed values</h3>",
            _note(
                "Missing values of the features used are filled in, at training and at scoring: numeric "
                "ones with the training median (plus a missing-indicator column), categorical ones with "
                "the category 'missing'. Counts are of the training customers."
            ),
            _table(imputed) if imputed else _note("No value was imputed."),
            "<h3>Correlations</h3>",
            _img(plots.correlation_png(r.frame, r.spec), "correlations") if len(r.spec.numeric) > 1 else "",
        ),
        _ranges_section(r),
        _section(
            "Choosing k",
            _note(
                "Rule: the largest k whose silhouette is within a tolerance of the best and whose mean "
                "bootstrap ARI (agreement between refits on resampled rows) reaches the threshold, every "
                "segment holding at least the minimum share; if none is that stable, the most stable k "
                "within the tolerance."
            ),
            f"<p><b>{html.escape(r.k_reason)}</b></p>" if r.k_reason else "",
            _img(plots.k_selection_png(r.selection_table, len(names)), "k selection"),
            _table(
                r.selection_table,
                [
                    "k",
                    "silhouette",
                    "ari_mean",
                    "ari_min",
                    "min_share",
                    "davies_bouldin",
                    "calinski_harabasz",
                    "admissible",
                    "chosen",
                    "reason",
                    "seconds",
                ],
            ),
        ),
        _section("Silhouette", _img(plots.silhouette_png(r.points, r.labels, names, r.seed), "silhouette")),
        _section("2-D projection (PCA)", _img(plots.projection_png(r.projection, names), "projection")),
        _section(
            "Segment profiles",
            _note(
                "Names say what sets a segment apart from everyone and from the other segments, one "
                "word per group of related columns, and only what the medians bear out (a 'high' "
                "column's median is above the overall median). z-scores are of the segment mean vs all "
                "customers (heavy-tailed features in log1p space)."
            ),
            _profiles_table(r.profiles, r.spec),
        ),
        _section("Held-out customers", _table([r.holdout]) if r.holdout else _note("No held-out set.")),
        _section(
            "Algorithm comparison",
            _table(
                r.comparison,
                [
                    "algorithm",
                    "n_points",
                    "n_clusters",
                    "noise_share",
                    "silhouette",
                    "davies_bouldin",
                    "calinski_harabasz",
                    "min_share",
                    "seconds",
                    "note",
                ],
            ),
        ),
        _section(
            "Bootstrap stability (adjusted Rand index between refits)",
            _note(
                "ari_mean / ari_min: adjusted Rand index between pairs of refits on bootstrap resamples "
                "(1 = the same segments, 0 = chance); agreement_mean: the mean share of pairs of rows "
                "two refits treat alike (the Rand index)."
            ),
            _table([{k: v for k, v in r.stability.items() if k != "ari_pairs"}]),
        ),
        _section("Time per step (seconds)", _table([r.timings])),
    ]


def html_page(title: str, parts: list[str]) -> str:
    """One self-contained HTML document: the report's style, ``title`` as heading, then ``parts``
    (already HTML). ``segmenter compare`` renders its page with this too."""
    title = html.escape(title)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><h1>{title}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_report(path: str | Path, inputs: ReportInputs) -> Path:
    """Render ``inputs`` to one HTML file at ``path`` and return the path."""
    path = Path(path)
    document = html_page(inputs.title, [_stability_opening(inputs), *_body(inputs)])
    path.write_text(document, encoding="utf-8")
    logger.info("wrote report %s (%d kB)", path, len(document) // 1024)
    return path
