"""``segmenter train``: fit a model on events or a customer table; write model, manifest and report.

Examples::

    segmenter train --events cdnow --out models/cdnow
    segmenter train --events history.jsonl --snapshots 2w --out models/shop
    segmenter train --table training/examples/customers.csv \\
        --spec training/examples/customers.spec.json --out models/table

An event history becomes one row per customer as of the end of the history and of each snapshot date
(``--snapshots``: ``monthly`` by default, whole days such as ``30d``/``1w``, or ``none``); k is the
largest one whose silhouette is near the best and whose bootstrap refits agree (see
``training.selection``), and the summary prints the table and why that k won.

With a key in ``SEGMENTER_MODEL_KEY`` (or a file named by ``--model-key-file``) the artifact is signed
(``model.sig``), and scorers and the web app configured with the same key load only signed artifacts.

``--previous DIR`` retrains a model: the new segments are matched to those of the model in ``DIR``
(loaded and, with a key, verified like any artifact; it must take the same input schema) and keep its
segment ids (``training.lineage``); the manifest records the lineage, and a running scorer hot-reloads
only a model that descends from the one it serves.

Invalid lines of a JSONL file (the events the stream dead-letters) are skipped and counted by reason;
more than ``--max-invalid-share`` of the lines (default 1%) stops training. ``--out`` is checked before
any work: it must be a writable directory, and one that already holds a different model is replaced
only with ``--force`` (the same run again, which trains the same model, may replace it).

Bootstrap refits of the chosen k that disagree (mean adjusted Rand index below 0.8) are a warning in
the log, the summary and at the top of the report; ``--require-stable`` makes them a failure.

Exit codes: 0 trained and validated; 1 a held-out segment fell below ``--min-share``, or
``--require-stable`` and unstable segments (nothing is written either way); 2 bad input or settings
(one line; the traceback only with ``--log-level DEBUG``); 130 interrupted (Ctrl-C / SIGINT).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from model.artifact import MANIFEST_FILE, MODEL_FILE
from model.errors import SegmenterError
from model.pipeline import CENTROID_ALGORITHMS

logger = logging.getLogger(__name__)

__all__ = ["EXIT_HOLDOUT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "add_arguments", "format_summary", "run"]

EXIT_HOLDOUT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``segmenter train``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", metavar="cdnow|PATH.jsonl", help="event history: 'cdnow' or a JSONL file")
    source.add_argument(
        "--table", metavar="PATH.csv", help="customer table, one row per customer (needs --spec)"
    )
    parser.add_argument("--spec", metavar="SPEC.json", help="FeatureSpec JSON declaring the table's columns")
    parser.add_argument(
        "--out", required=True, metavar="DIR",
        help="model directory to write (checked before any work; created if absent)",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="replace a different model already in --out (without it, only the same model is replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--snapshots", metavar="monthly|DAYS|none", default=None,
        help="--events: rows as of the end of the history and of snapshot dates every month (default "
        "monthly), every N days (30d, 2w), or none (end of history only)",
    )  # fmt: skip
    parser.add_argument("--k-min", type=int, default=2, help="smallest k tried (default 2)")
    parser.add_argument("--k-max", type=int, default=8, help="largest k tried (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for every step (default 0)")
    parser.add_argument("--algorithm", choices=CENTROID_ALGORITHMS, default="kmeans", help="default kmeans")
    parser.add_argument(
        "--min-share",
        type=float,
        default=0.02,
        help="reject k with a segment below this share (default 0.02)",
    )
    parser.add_argument(
        "--holdout-share", type=float, default=0.1, help="share of customers held out for JSONL/table input"
    )
    parser.add_argument(
        "--max-invalid-share", type=float, default=0.01, metavar="SHARE",
        help="JSONL input: invalid lines are skipped and counted by reason (as the stream dead-letters "
        "them); stop when more than this share of the lines are invalid (default 0.01 = 1%%)",
    )  # fmt: skip
    parser.add_argument(
        "--require-stable", action="store_true",
        help="fail (exit 1, nothing written) instead of warning when bootstrap refits of the chosen k "
        "disagree (mean adjusted Rand index below 0.8)",
    )  # fmt: skip
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument(
        "--previous", metavar="DIR",
        help="the model this one replaces: matched segments keep its segment ids (and names), new ones "
        "get fresh ids; it must take the same input (verified with the model key like any artifact)",
    )  # fmt: skip
    parser.add_argument(
        "--model-key-file",
        default=os.environ.get("SEGMENTER_MODEL_KEY_FILE"),
        metavar="PATH",
        help="file holding the key that signs the artifact [env SEGMENTER_MODEL_KEY_FILE; "
        "or the key itself in SEGMENTER_MODEL_KEY]",
    )


def _snapshots(args: argparse.Namespace):
    """The parsed ``--snapshots`` (``ValueError`` if it does not parse, or is given with ``--table``)."""
    from training.snapshots import DEFAULT_SNAPSHOTS, parse_snapshots

    if args.table and args.snapshots is not None:
        raise ValueError("--snapshots applies to --events; a customer table has no clock")
    return parse_snapshots(DEFAULT_SNAPSHOTS if args.snapshots is None else args.snapshots)


def _options(args: argparse.Namespace):
    from training.train import TrainOptions

    _snapshots(args)
    if not 2 <= args.k_min <= args.k_max:
        raise ValueError(f"need 2 <= --k-min <= --k-max, got {args.k_min} and {args.k_max}")
    if not 0 < args.min_share < 1 or not 0 <= args.holdout_share < 1:
        raise ValueError(f"--min-share {args.min_share} / --holdout-share {args.holdout_share} out of range")
    if not 0 <= args.max_invalid_share <= 1:
        raise ValueError(f"--max-invalid-share must be between 0 and 1, got {args.max_invalid_share}")
    return TrainOptions(
        k_min=args.k_min, k_max=args.k_max, algorithm=args.algorithm, seed=args.seed,
        min_share=args.min_share, report=not args.no_report, replace=args.force,
        require_stable=args.require_stable,
    )  # fmt: skip


def _source(args: argparse.Namespace) -> str:
    """What ``TrainingData.description["source"]`` will say for these arguments."""
    return str(args.table) if args.table else str(args.events)


def _differences(manifest: dict, args: argparse.Namespace, options) -> list[str]:
    """How the model in ``manifest`` was trained differently from this run (empty: the same way)."""
    ours = {"source": _source(args), "seed": options.seed, "algorithm": options.algorithm,
            "min_share": options.min_share}  # fmt: skip
    theirs = {"source": manifest.get("data", {}).get("source")} | {
        key: manifest.get(key) for key in ("seed", "algorithm", "min_share")
    }
    if "snapshots" in manifest.get("data", {}) and not args.table:
        from model.clock import format_duration

        snapshots = _snapshots(args)
        ours["snapshots"] = snapshots if snapshots == "monthly" else format_duration(snapshots)
        theirs["snapshots"] = manifest["data"]["snapshots"]
    recorded = manifest.get("training_options", {})
    ours |= {key: getattr(options, key) for key in ("k_min", "k_max") if key in recorded}
    theirs |= {key: recorded[key] for key in ("k_min", "k_max") if key in recorded}
    return [f"{key} {theirs[key]!r}, not {ours[key]!r}" for key in ours if theirs[key] != ours[key]]


def _prepare_out(args: argparse.Namespace, options) -> list[Path]:
    """Check ``--out`` before any work; return the directories created for it (removed on failure).

    Refuses a file, a path under a file, an unwritable directory, and (without ``--force``) a directory
    holding a model trained from another source or with other settings.
    """
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory")
    if (out / MANIFEST_FILE).exists() and not args.force:
        try:
            manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
            differences = _differences(manifest, args, options)
        except (OSError, ValueError, AttributeError) as exc:
            manifest, differences = {}, [f"its manifest cannot be read: {exc}"]
        if differences:
            raise ValueError(
                f"--out {out} already holds model {manifest.get('model_id', '?')} "
                f"({'; '.join(differences)}): pass --force to replace it, or choose another --out"
            )
        logger.info(
            "--out %s holds model %s; it is replaced only by the same model", out, manifest["model_id"]
        )
    created, ancestor = [], out
    while not ancestor.exists():
        created.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"cannot write --out {out}: {ancestor} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=out, prefix=".write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        _remove_empty(created)
        raise ValueError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    return created


def _remove_empty(created: list[Path]) -> None:
    for directory in created:  # deepest first
        try:
            directory.rmdir()
        except OSError:
            return


def _state(out: Path) -> tuple:
    return tuple((out / name).stat().st_mtime_ns if (out / name).exists() else None
                 for name in (MODEL_FILE, MANIFEST_FILE))  # fmt: skip


def _load(args: argparse.Namespace):
    from training import sources

    if args.table:
        if not args.spec:
            raise ValueError("--table needs --spec SPEC.json declaring its columns")
        return sources.load_table(args.table, args.spec, args.holdout_share, args.seed)
    snapshots = _snapshots(args)
    if args.events == "cdnow":
        return sources.load_cdnow(args.seed, snapshots)
    return sources.load_events_file(
        args.events, args.holdout_share, args.seed, args.max_invalid_share, snapshots
    )


def _invalid(data: dict) -> list[str]:
    invalid = data.get("invalid_events")
    if invalid is None:
        return []
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in invalid["by_reason"].items())
    share = invalid["skipped"] / max(invalid["lines"], 1)
    return [
        f"invalid    {invalid['skipped']:,} of {invalid['lines']:,} lines skipped ({share:.2%})"
        + (f": {reasons}" if reasons else "")
    ]


def _imputed(imputed: dict[str, dict]) -> str:
    return ", ".join(f"{name} {v['count']:,} ({v['with']})" for name, v in imputed.items()) or "none"


def _dropped(dropped: dict[str, str]) -> str:
    return ", ".join(f"{name} ({why.split(' in the ')[0]})" for name, why in dropped.items()) or "none"


def _out_of_range(data: dict) -> list[str]:
    from training.range_check import describe

    outside = data.get("out_of_range")
    if not outside:
        return []
    return [f"ranges     outside the spec (kept; the form and API reject them): {describe(outside)}"]


def _data(data: dict) -> list[str]:
    line = f"data       {data.get('source')}: {data.get('customers')} customers"
    if "rows" not in data:
        return [line + f", {data.get('training_customers')} used for fitting"]
    return [
        line + f", {data.get('training_customers')} used for fitting ({data.get('training_rows')} rows)",
        f"as of      {data.get('features_as_of')}",
    ]


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _k_table(table: list[dict], reason: str) -> list[str]:
    """The k-selection table and the sentence saying why the chosen k won."""
    lines = [f"{'k':>4} {'silhouette':>10} {'ARI':>6} {'min share':>9}  verdict"]
    for row in table:
        mark = "*" if row.get("chosen") else " "
        lines.append(
            f"{mark}{row['k']:>3} {_fmt(row['silhouette'], '.3f'):>10} {_fmt(row.get('ari_mean'), '.3f'):>6} "
            f"{row['min_share']:>9.1%}  {row['reason']}"
        )
    return [*lines, f"why k      {reason}"]


def _unstable(warning: str) -> list[str]:
    return [f"WARNING    {warning}"] if warning else []


def _lineage(lineage: dict | None) -> list[str]:
    """How the segments map onto the previous model's (nothing without ``--previous``)."""
    if not lineage or not lineage.get("parent_model_id"):
        return []
    kept = [m for m in lineage["mapping"] if m["previous_id"] is not None]
    fresh = [m for m in lineage["mapping"] if m["previous_id"] is None]
    lines = [
        "",
        f"lineage    from {lineage['parent_model_id']}: {len(kept)} segment{'s' * (len(kept) != 1)} kept "
        f"their ids, {len(fresh)} new, {len(lineage['retired'])} retired {lineage['retired']}",
    ]
    for m in kept:
        lines.append(f"{m['id']:>10} = previous {m['previous_id']} (similarity {m['similarity']:.2f})")
    for m in fresh:
        lines.append(f"{m['id']:>10}   new (closest previous segment: similarity {m['similarity']:.2f})")
    return lines


def format_summary(summary: dict) -> str:
    """The end-of-run table: model, k choice, metrics, segments with training and held-out shares,
    step times."""
    metrics = ", ".join(f"{k} {v}" for k, v in summary["metrics"].items())
    stability = summary["stability"]
    held = summary["holdout"].get("shares") or [None] * summary["k"]
    counted = "rows" if "rows" in summary["data"] else "customers"
    width = max([34, *(len(p["name"]) for p in summary["segments"])])  # names with labels can be long
    lines = [
        f"model      {summary['model_id']}  ->  {summary['out']}",
        *_data(summary["data"]),
        *_invalid(summary["data"]),
        "",
        *_k_table(summary["k_selection"], summary["k_choice"]["reason"]),
        "",
        f"chosen     {summary['algorithm']} k={summary['k']}  ({metrics})",
        f"stability  mean ARI {stability['ari_mean']} between {stability['rounds']} bootstrap refits "
        f"on {stability['n_points']} points",
        *_unstable(summary.get("stability_warning", "")),
        f"dropped    {_dropped(summary['dropped_features'])}",
        f"imputed    {_imputed(summary.get('imputed', {}))}",
        *_out_of_range(summary["data"]),
        "",
        f"{'seg':>3}  {'name':<{width}} {counted:>9} {'share':>7} {'held-out':>8}",
    ]
    for profile, share in zip(summary["segments"], held, strict=True):
        shown = "-" if share is None else f"{share:.1%}"
        name, size, share_ = profile["name"], profile["size"], profile["share"]
        lines.append(f"{profile['segment_id']:>3}  {name:<{width}} {size:>9} {share_:>7.1%} {shown:>8}")
    lines += _lineage(summary.get("lineage"))
    lines += ["", "seconds    " + "  ".join(f"{k} {v:.2f}" for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Train; print the summary table; 0 ok, 1 a check failed (held-out, --require-stable), 2 bad input,
    130 interrupted."""
    from model.signing import resolve_model_key

    debug = str(getattr(args, "log_level", "INFO")).upper() == "DEBUG"
    try:
        key = resolve_model_key(getattr(args, "model_key_file", None), os.environ)
    except SegmenterError as exc:
        logger.error("training refused: %s", exc, exc_info=debug)
        return EXIT_USAGE
    if key is None:
        logger.warning(
            "no model key (SEGMENTER_MODEL_KEY or --model-key-file): the artifact is not signed, "
            "and scorers that verify signatures will refuse it"
        )
    created: list[Path] = []
    out = Path(args.out)
    before = _state(out)
    code = EXIT_USAGE
    try:
        code = _train(args, key, stdout or sys.stdout, created, debug)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        left = "left as it was" if _state(out) == before else "may hold a partly written model"
        logger.error("training interrupted (Ctrl-C / SIGINT): --out %s %s", out, left)
    finally:
        if code != 0:
            _remove_empty(created)
    return code


def _previous(args: argparse.Namespace, key):
    """The ``--previous`` model, loaded (and verified with ``key``) before any work; None without it."""
    if not getattr(args, "previous", None):
        return None
    from model.artifact import load_artifact

    try:
        model = load_artifact(args.previous, key=key)
    except SegmenterError as exc:
        raise type(exc)(f"--previous {args.previous}: {exc}") from None
    logger.info("--previous %s: model %s, segment ids %s", args.previous, model.model_id, model.segment_ids)
    return model


def _train(args: argparse.Namespace, key, stdout: TextIO, created: list[Path], debug: bool) -> int:
    from training.train import HoldoutCheckError, UnstableSegmentsError, train

    try:
        options = _options(args)
        previous = _previous(args, key)
        created += _prepare_out(args, options)
        data = _load(args)
        summary = train(data, args.out, options, signing_key=key, previous=previous)
    except (HoldoutCheckError, UnstableSegmentsError) as exc:
        logger.error("%s", exc, exc_info=debug)
        return EXIT_HOLDOUT_FAILED
    except (ValueError, OSError, SegmenterError) as exc:
        logger.error("training failed: %s", exc, exc_info=debug)
        return EXIT_USAGE
    if key is not None:
        logger.info("artifact signed: %s", Path(args.out) / "model.sig")
    stdout.write(format_summary(summary))
    return 0
