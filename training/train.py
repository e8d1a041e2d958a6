"""Training orchestration: features -> k selection -> fit -> profiles -> held-out check -> stream drift
reference -> artifact + report.

The preprocessing is fitted once and the candidate clusterers work on its output; the saved
``Pipeline`` is that same fitted preprocessor followed by the chosen fitted clusterer, so the model
that is judged is byte-for-byte the model that is served.

The manifest holds two drift references. ``segment_distribution`` / ``feature_baselines`` describe the
training customers (one row each, as of its latest event). For event sources,
``stream_segment_distribution`` / ``stream_feature_baselines`` describe what the scorer emits: one row
per event over customers' partial histories, replayed on a seeded sample (see
``training.stream_reference``); the live drift monitor compares the stream with those.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from model.artifact import save_artifact
from model.drift import categorical_baseline, numeric_baseline
from model.pipeline import build_clusterer, build_preprocessor, to_frame, usable_spec
from model.scoring import SegmentModel
from model.signing import ModelKey
from training import selection
from training.plots import projection
from training.profiles import segment_profiles
from training.report import ReportInputs, write_report
from training.sources import TrainingData
from training.stream_reference import stream_reference

logger = logging.getLogger(__name__)

__all__ = ["TrainOptions", "train"]

PROJECTION_FILE = "projection.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class TrainOptions:
    """Knobs of one training run (all seeded by ``seed``)."""

    k_min: int = 2
    k_max: int = 8
    algorithm: str = "kmeans"
    seed: int = 0
    min_share: float = 0.02
    silhouette_sample: int = 5_000
    fit_sample: int = 200_000
    compare_sample: int = 50_000
    stability_rounds: int = 5
    report: bool = True


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
    shares = _shares(labels, model.k)
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
            fit_sample=options.fit_sample,
        )  # fmt: skip
    with steps.step("fit"):
        clusterer = build_clusterer(options.algorithm, chosen.k, options.seed).fit(points)
        labels = clusterer.predict(points)
        metrics = selection.evaluate(points, labels, options.seed, options.silhouette_sample)
    pipeline = Pipeline([("features", preprocessor), ("cluster", clusterer)])
    metrics = {key: metrics[key] for key in ("silhouette", "davies_bouldin", "calinski_harabasz")}
    return _Fitted(chosen, pipeline, points, labels, metrics)


def _diagnostics(points: np.ndarray, k: int, options: TrainOptions, steps: _Steps) -> tuple[list, dict]:
    rng = np.random.default_rng(options.seed)
    rows = np.sort(rng.choice(len(points), min(len(points), options.compare_sample), replace=False))
    with steps.step("compare"):
        comparison = selection.compare_algorithms(points[rows], k, seed=options.seed)
    with steps.step("stability"):
        stability = selection.bootstrap_stability(
            points[rows], k, algorithm=options.algorithm, seed=options.seed, rounds=options.stability_rounds
        )
    return comparison, stability


def train(
    data: TrainingData,
    out: str | Path,
    options: TrainOptions = TrainOptions(),
    *,
    signing_key: ModelKey | None = None,
) -> dict:
    """Fit, validate and save a model from ``data`` into ``out``; return the run's summary.

    With ``signing_key`` the artifact is signed (``model.sig``), so scorers holding the key load it.
    """
    out, steps = Path(out), _Steps()
    held = data.frame.index.isin(list(data.holdout_ids))
    spec, dropped = usable_spec(data.spec, data.frame[~held])
    raw = to_frame(data.frame[~held], spec)
    fitted = _fit(raw, spec, options, steps)
    k = fitted.selection.k
    with steps.step("profiles"):
        profiles = segment_profiles(raw, fitted.labels, spec, k)
        names = [p["name"] for p in profiles]
        model = SegmentModel(fitted.pipeline, spec, {"segment_names": names, "algorithm": options.algorithm})
        holdout = _holdout(model, to_frame(data.frame[held], spec), options.min_share)
    stream = {}
    if data.stream_sample is not None:
        with steps.step("stream_reference"):
            stream = stream_reference(model, data.stream_sample)
    comparison, stability = _diagnostics(fitted.points, k, options, steps)
    proj = projection(fitted.points, fitted.labels, options.seed)
    with steps.step("save"):
        manifest = save_artifact(
            out, fitted.pipeline, spec, signing_key=signing_key,
            algorithm=options.algorithm, k=k, seed=options.seed, segment_names=names, profiles=profiles,
            metrics=fitted.metrics, segment_distribution=_shares(fitted.labels, k),
            feature_baselines=_baselines(raw, spec), source_spec=data.spec.to_dict(),
            source_schema_hash=data.spec.schema_hash(), dropped_features=dropped,
            data=data.description | {"training_customers": len(raw)}, holdout=holdout,
            k_selection=fitted.selection.table, algorithm_comparison=comparison, stability=stability,
            training_seconds=steps.seconds, min_share=options.min_share, **stream,
        )  # fmt: skip
        (out / PROJECTION_FILE).write_text(json.dumps(proj | {"segment_names": names}), encoding="utf-8")
    summary = {
        "model_id": manifest["model_id"], "out": str(out), "k": k, "algorithm": options.algorithm,
        "metrics": fitted.metrics, "segments": profiles, "holdout": holdout, "stability": stability,
        "dropped_features": dropped, "data": manifest["data"], "timings": steps.seconds,
        "stream_shares": stream.get("stream_segment_distribution"),
    }  # fmt: skip
    if options.report:
        with steps.step("report"):
            missing = data.frame[list(data.spec.feature_names)].isna().mean().round(4).to_dict()
            inputs = ReportInputs(
                f"Customer segments — {manifest['model_id']}", _report_summary(summary), raw, spec, missing,
                dropped, fitted.selection.table, fitted.points, fitted.labels, profiles, proj, comparison,
                stability, holdout, steps.seconds, options.seed,
            )  # fmt: skip
            write_report(out / REPORT_FILE, inputs)
    return summary


def _report_summary(summary: dict) -> dict:
    keep = ("model_id", "k", "algorithm", "metrics", "data")
    return {key: summary[key] for key in keep} | {
        "stability (mean ARI)": summary["stability"]["ari_mean"],
        "held-out shares": summary["holdout"].get("shares"),
        "stream shares (drift reference)": summary["stream_shares"],
    }
