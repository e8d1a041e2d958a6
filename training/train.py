"""Training orchestration: features -> k selection -> fit -> profiles -> held-out check -> stream drift
reference -> artifact + report.

k is chosen by ``training.selection.choose_k``: the largest k whose silhouette is within 0.05 of the
best and whose bootstrap refits agree (mean ARI >= 0.9), every segment >= ``min_share``; the table
and the sentence saying why are in the summary, the manifest (``k_selection``, ``k_choice``) and the
report. The stability reported is the chosen k's, measured during selection. When its mean ARI is
below ``warn_stability`` (0.8) training logs a warning in plain words (how many customer pairs the refits
agree on), the summary and the manifest carry it (``stability_warning``) and the report opens with it;
with ``require_stable`` training raises ``UnstableSegmentsError`` instead and writes nothing.

The preprocessing is fitted once and the candidate clusterers work on its output; the saved
``Pipeline`` is that same fitted preprocessor followed by the chosen fitted clusterer, so the model
that is judged is byte-for-byte the model that is served.

The manifest holds two drift references. ``segment_distribution`` / ``feature_baselines`` describe the
training rows (for events: every customer as of the end of the history and of each snapshot date).
For event sources, ``stream_segment_distribution`` / ``stream_feature_baselines`` describe what the
scorer's drift monitor observes: a row after each event, as of its time, replayed on a seeded sample
(see ``training.stream_reference``); the live drift monitor compares the stream with those.

Training refuses, before any work, fewer than ``MIN_CUSTOMERS_PER_SEGMENT`` training rows per segment
of ``k_max``. All rows of one customer are on the same side of the held-out split. A held-out check
that fails raises ``HoldoutCheckError`` and writes nothing. With ``TrainOptions(replace=False)`` an
existing artifact in ``out`` is replaced only by the same model (same ``model_sha256``). Missing
values of the features kept are imputed (numeric: the training median; categorical: the category
``'missing'``), and the counts per column are in the summary, the manifest (``imputed``) and the
report. Values outside the spec's declared ranges are kept as they are and counted per column, with a
warning (``training.range_check``; manifest ``data.out_of_range``).

Segment ids: ``train(..., previous=model)`` matches the new clusters to ``previous``'s segments
(``training.lineage``) and records ``segment_ids`` (the published id of each cluster index) and
``lineage`` in the manifest; matched segments keep their ids and, while their profile still says it,
their names. Without ``previous`` the ids are 0..k-1 and the lineage is just this model. The
manifest's per-segment lists (``segment_names``, ``profiles``, ``segment_distribution``, held-out
shares, ``segment_radii`` for the next retrain's matching) stay in cluster-index order; each
profile's ``segment_id`` is the published id.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from model.artifact import MANIFEST_FILE, save_artifact
from model.drift import categorical_baseline, numeric_baseline
from model.errors import SegmenterError
from model.pipeline import MISSING_CATEGORY, build_clusterer, build_preprocessor, to_frame, usable_spec
from model.scoring import SegmentModel
from model.signing import ModelKey
from training import lineage, selection
from training.plots import projection
from training.profiles import segment_profiles
from training.range_check import ADVICE, describe, out_of_range
from training.report import ReportInputs, write_report
from training.sources import TrainingData, customer_ids
from training.stream_reference import stream_reference

logger = logging.getLogger(__name__)

__all__ = ["MIN_CUSTOMERS_PER_SEGMENT", "HoldoutCheckError", "TrainOptions", "UnstableSegmentsError", "train"]

PROJECTION_FILE = "projection.json"
REPORT_FILE = "report.html"
MIN_CUSTOMERS_PER_SEGMENT = 5


class HoldoutCheckError(SegmenterError):
    """A held-out segment fell below ``min_share``; nothing was written. ``holdout`` has the shares."""

    def __init__(self, message: str, holdout: dict) -> None:
        super().__init__(message)
        self.holdout = holdout


class UnstableSegmentsError(SegmenterError):
    """``require_stable`` and the bootstrap refits disagree (mean ARI below ``warn_stability``); nothing
    was written."""


@dataclass(frozen=True)
class TrainOptions:
    """Knobs of one training run (all seeded by ``seed``)."""

    k_min: int = 2
    k_max: int = 8
    algorithm: str = "kmeans"
    seed: int = 0
    min_share: float = 0.02
    silhouette_sample: int = 5_000
    fit_sample: int = 50_000
    compare_sample: int = 50_000
    stability_rounds: int = 5
    stability_sample: int = 30_000
    silhouette_tolerance: float = selection.SILHOUETTE_TOLERANCE
    min_stability: float = selection.MIN_STABILITY
    warn_stability: float = selection.WARN_STABILITY  # below this mean ARI: a warning, or refusal
    require_stable: bool = False  # refuse (write nothing) instead of warning
    report: bool = True
    replace: bool = True  # False: replace an artifact already in ``out`` only by the same model


class _Steps:
    """Times named steps into ``seconds`` (wall clock, for the summary and the report)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        logger.info("step %s ...", name)
        yield
        self.seconds[name] = round(time.perf_counter() - started, 3)
        logger.info("step %s took %.2f s", name, self.seconds[name])


def _shares(labels: np.ndarray, k: int) -> list[float]:
    counts = np.bincount(labels, minlength=k)
    return (counts / max(counts.sum(), 1)).round(4).tolist()


def _baselines(frame, spec) -> dict[str, dict]:
    out = {name: numeric_baseline(frame[name].to_numpy(dtype=float)) for name in spec.numeric}
    return out | {name: categorical_baseline(frame[name].tolist()) for name in spec.categorical}


def _holdout(model: SegmentModel, frame, min_share: float) -> dict:
    if frame.empty:
        return {}
    labels, _, _ = model.score_arrays(frame)
    shares = _shares(model.indices_of(labels), model.k)  # by cluster index, as the manifest's lists
    return {
        "customers": len(frame),
        "shares": shares,
        "min_share": min(shares),
        "ok": min(shares) >= min_share,
    }


@dataclass
class _Fitted:
    """What fitting produced: the chosen k's selection, the pipeline, training labels and metrics."""

    selection: selection.Selection
    pipeline: Pipeline
    points: np.ndarray
    labels: np.ndarray
    metrics: dict


def _fit(raw, spec, options: TrainOptions, steps: _Steps) -> _Fitted:
    with steps.step("preprocess"):
        preprocessor = build_preprocessor(spec).fit(raw)
        points = np.asarray(preprocessor.transform(raw), dtype=float)
    with steps.step("select_k"):
        chosen = selection.select_k(
            points, range(options.k_min, options.k_max + 1), algorithm=options.algorithm, seed=options.seed,
            min_share=options.min_share, silhouette_sample=options.silhouette_sample,
            fit_sample=options.fit_sample, stability_rounds=options.stability_rounds,
            stability_sample=options.stability_sample, silhouette_tolerance=options.silhouette_tolerance,
            min_stability=options.min_stability,
        )  # fmt: skip
    with steps.step("fit"):
        clusterer = build_clusterer(options.algorithm, chosen.k, options.seed).fit(points)
        labels = clusterer.predict(points)
        metrics = selection.evaluate(points, labels, options.seed, options.silhouette_sample)
    pipeline = Pipeline([("features", preprocessor), ("cluster", clusterer)])
    metrics = {key: metrics[key] for key in ("silhouette", "davies_bouldin", "calinski_harabasz")}
    return _Fitted(chosen, pipeline, points, labels, metrics)


def _compare(points: np.ndarray, k: int, options: TrainOptions, steps: _Steps) -> list:
    rng = np.random.default_rng(options.seed)
    rows = np.sort(rng.choice(len(points), min(len(points), options.compare_sample), replace=False))
    with steps.step("compare"):
        return selection.compare_algorithms(points[rows], k, seed=options.seed)


def _check_size(data: TrainingData, n_fit: int, options: TrainOptions) -> None:
    needed = MIN_CUSTOMERS_PER_SEGMENT * options.k_max
    if n_fit >= needed:
        return
    held = len(data.frame) - n_fit
    source = data.description.get("source", "the data")
    what = "customer" if data.history_ms is None else "customer row"
    raise ValueError(
        f"{n_fit} {what}{'s' * (n_fit != 1)} to fit on ({len(data.frame)} in {source}, {held} held out): "
        f"--k-max {options.k_max} needs at least {needed} ({MIN_CUSTOMERS_PER_SEGMENT} per segment); "
        "lower --k-max or bring more customers"
    )


def _imputed(raw, spec) -> dict[str, dict]:
    """Per feature with gaps: how many training values were missing and what fills them."""
    counts = raw.isna().sum()
    fill = {name: "median" for name in spec.numeric} | {
        name: repr(MISSING_CATEGORY) for name in spec.categorical
    }
    return {
        name: {"count": int(counts[name]), "share": round(float(counts[name]) / max(len(raw), 1), 4),
               "with": fill[name]}
        for name in spec.feature_names if counts[name]
    }  # fmt: skip


def _check_holdout(holdout: dict, training_shares: list[float], out: Path, min_share: float) -> None:
    if not holdout or holdout["ok"]:
        return
    raise HoldoutCheckError(
        f"held-out check failed: the smallest segment holds {holdout['min_share']:.1%} of the "
        f"{holdout['customers']} held-out customers, below --min-share {min_share:.0%} (held-out shares "
        f"{holdout['shares']}, training shares {training_shares}); nothing written to {out}",
        holdout,
    )


def _check_stability(stability: dict, out: Path, options: TrainOptions) -> str:
    """The warning for unstable segments (logged), or ``""``; with ``require_stable`` a refusal."""
    threshold = options.warn_stability
    if options.require_stable and selection.stability_warning(stability, threshold):
        facts = selection.stability_warning(stability, threshold, "the segments are not reproducible")
        raise UnstableSegmentsError(f"--require-stable: {facts}; nothing written to {out}")
    warning = selection.stability_warning(stability, threshold)
    if warning:
        logger.warning("%s", warning)
    return warning


def _model_sha256(pipeline: Pipeline) -> str:
    """The ``model_sha256`` ``save_artifact`` will record (the same joblib dump)."""
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _check_replace(out: Path, pipeline: Pipeline) -> None:
    try:
        existing = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"--out {out} holds a manifest that cannot be read ({exc}); pass --force to replace it"
        ) from None
    if existing.get("model_sha256") != _model_sha256(pipeline):
        raise ValueError(
            f"--out {out} holds model {existing.get('model_id')}, and this run trained a different model; "
            "nothing written: pass --force to replace it, or choose another --out"
        )


def train(
    data: TrainingData,
    out: str | Path,
    options: TrainOptions = TrainOptions(),
    *,
    signing_key: ModelKey | None = None,
    previous: SegmentModel | None = None,
) -> dict:
    """Fit, validate and save a model from ``data`` into ``out``; return the run's summary.

    With ``signing_key`` the artifact is signed (``model.sig``), so scorers holding the key load it.
    With ``previous`` (a loaded model of the same input schema) the segments keep its ids (module
    docstring). Raises ``ValueError`` for too few customers and ``SchemaMismatchError`` for a
    ``previous`` of another schema (both before any work), and ``HoldoutCheckError`` when a held-out
    segment falls below ``min_share`` (nothing is written).
    """
    out, steps = Path(out), _Steps()
    held = customer_ids(data.frame).isin(list(data.holdout_ids))
    _check_size(data, int((~held).sum()), options)
    if previous is not None:
        lineage.check_schema(previous, data.spec)
    outside = out_of_range(data.frame, data.spec)
    if outside:
        logger.warning("values outside the spec's ranges: %s; %s", describe(outside), ADVICE)
    spec, dropped = usable_spec(data.spec, data.frame[~held])
    raw = to_frame(data.frame[~held], spec)
    imputed = _imputed(raw, spec)
    if imputed:
        logger.info("imputed missing values: %s", imputed)
    fitted = _fit(raw, spec, options, steps)
    k = fitted.selection.k
    unstable = _check_stability(fitted.selection.stability, out, options)
    with steps.step("profiles"):
        profiles = segment_profiles(raw, fitted.labels, spec, k, people=data.spec)
    lineage_ = _lineage(previous, data.frame[~held], fitted.labels, profiles, steps)
    names = [p["name"] for p in profiles]
    with steps.step("holdout"):
        model = SegmentModel(fitted.pipeline, spec, {"segment_names": names, "algorithm": options.algorithm})
        holdout = _holdout(model, to_frame(data.frame[held], spec), options.min_share)
    _check_holdout(holdout, _shares(fitted.labels, k), out, options.min_share)
    stream = {}
    if data.stream_sample is not None:
        with steps.step("stream_reference"):
            stream = stream_reference(model, data.stream_sample)
    comparison = _compare(fitted.points, k, options, steps)
    stability, k_choice = fitted.selection.stability, _k_choice(fitted.selection, options)
    proj = projection(fitted.points, fitted.labels, options.seed)
    if not options.replace:
        _check_replace(out, fitted.pipeline)
    recorded = {k: v for k, v in asdict(options).items() if k not in ("report", "replace", "require_stable")}
    with steps.step("save"):
        manifest = save_artifact(
            out, fitted.pipeline, spec, signing_key=signing_key,
            algorithm=options.algorithm, k=k, seed=options.seed, segment_names=names, profiles=profiles,
            metrics=fitted.metrics, segment_distribution=_shares(fitted.labels, k),
            feature_baselines=_baselines(raw, spec), source_spec=data.spec.to_dict(),
            source_schema_hash=data.spec.schema_hash(), dropped_features=dropped,
            data=data.description | _training_counts(raw) | {"out_of_range": outside}, holdout=holdout,
            k_selection=fitted.selection.table, k_choice=k_choice, algorithm_comparison=comparison,
            stability=stability,
            stability_warning=unstable,
            training_seconds=steps.seconds, min_share=options.min_share, imputed=imputed,
            training_options=recorded, **lineage_.manifest_fields(), **stream,
            segment_radii=lineage.segment_radii(fitted.points, fitted.labels, model.centroids_scaled),
        )  # fmt: skip
        if not options.report:
            (out / REPORT_FILE).unlink(missing_ok=True)  # an earlier model's report would mislead
        projected = proj | {"segment_names": names, "segment_ids": lineage_.segment_ids}
        (out / PROJECTION_FILE).write_text(json.dumps(projected), encoding="utf-8")
    summary = {
        "model_id": manifest["model_id"], "out": str(out), "k": k, "algorithm": options.algorithm,
        "metrics": fitted.metrics, "segments": profiles, "holdout": holdout, "stability": stability,
        "dropped_features": dropped, "imputed": imputed, "data": manifest["data"], "timings": steps.seconds,
        "stream_shares": stream.get("stream_segment_distribution"), "k_selection": fitted.selection.table,
        "k_choice": k_choice, "stability_warning": unstable, "segment_ids": lineage_.segment_ids,
        "lineage": lineage_.manifest_fields()["lineage"],
    }  # fmt: skip
    if options.report:
        with steps.step("report"):
            missing = data.frame[list(data.spec.feature_names)].isna().mean().round(4).to_dict()
            inputs = ReportInputs(
                f"Customer segments — {manifest['model_id']}", _report_summary(summary), raw, spec, missing,
                dropped, fitted.selection.table, fitted.points, fitted.labels, profiles, proj, comparison,
                stability, holdout, steps.seconds, options.seed, imputed, k_choice["reason"],
                stability_warning=unstable,
            )  # fmt: skip
            write_report(out / REPORT_FILE, inputs)
    return summary


def _lineage(previous: SegmentModel | None, rows, labels: np.ndarray, profiles: list[dict], steps: _Steps):
    """Match the new clusters to ``previous``'s segments (on the training ``rows``, which it scores);
    publish the ids, and carried names, in ``profiles`` (``segment_id``, ``name``)."""
    k = len(profiles)
    if previous is None:
        found = lineage.first_lineage(k)
    else:
        with steps.step("lineage"):
            found = lineage.match_previous(previous, rows, labels, k)
            for profile, name in zip(profiles, lineage.carry_names(found, previous, profiles), strict=True):
                profile["name"] = name
        logger.info("segment ids %s, from %s: %s", found.segment_ids, previous.model_id, found.mapping)
    for profile, segment in zip(profiles, found.segment_ids, strict=True):
        profile["segment_id"] = segment
    return found


def _training_counts(raw) -> dict:
    return {"training_customers": int(customer_ids(raw).nunique()), "training_rows": len(raw)}


def _k_choice(chosen: selection.Selection, options: TrainOptions) -> dict:
    return {
        "k": chosen.k,
        "reason": chosen.reason,
        "rule": "largest k with silhouette within silhouette_tolerance of the best and mean bootstrap "
        "ARI >= min_stability, every segment >= min_share; else the most stable k within the tolerance",
        "silhouette_tolerance": options.silhouette_tolerance,
        "min_stability": options.min_stability,
        "min_share": options.min_share,
    }


def _report_summary(summary: dict) -> dict:
    keep = ("model_id", "k", "algorithm", "metrics", "data")
    return {key: summary[key] for key in keep} | {
        "why this k": summary["k_choice"]["reason"],
        "stability (mean ARI)": summary["stability"]["ari_mean"],
        "held-out shares": summary["holdout"].get("shares"),
        "stream shares (drift reference)": summary["stream_shares"],
    }
