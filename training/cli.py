"""``segmenter train``: fit a model on events or a customer table; write model, manifest and report.

Examples::

    segmenter train --events cdnow --out models/cdnow
    segmenter train --events history.jsonl --out models/shop
    segmenter train --table training/examples/customers.csv \\
        --spec training/examples/customers.spec.json --out models/table

With a key in ``SEGMENTER_MODEL_KEY`` (or a file named by ``--model-key-file``) the artifact is signed
(``model.sig``), and scorers and the web app configured with the same key load only signed artifacts.

Exit codes: 0 trained and validated; 1 trained, but a held-out segment fell below ``--min-share``
(the artifact is written; look at the report before deploying it); 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from model.errors import SegmenterError
from model.pipeline import CENTROID_ALGORITHMS

logger = logging.getLogger(__name__)

__all__ = ["add_arguments", "format_summary", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``segmenter train``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", metavar="cdnow|PATH.jsonl", help="event history: 'cdnow' or a JSONL file")
    source.add_argument(
        "--table", metavar="PATH.csv", help="customer table, one row per customer (needs --spec)"
    )
    parser.add_argument("--spec", metavar="SPEC.json", help="FeatureSpec JSON declaring the table's columns")
    parser.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
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
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument(
        "--model-key-file",
        default=os.environ.get("SEGMENTER_MODEL_KEY_FILE"),
        metavar="PATH",
        help="file holding the key that signs the artifact [env SEGMENTER_MODEL_KEY_FILE; "
        "or the key itself in SEGMENTER_MODEL_KEY]",
    )


def _options(args: argparse.Namespace):
    from training.train import TrainOptions

    if not 2 <= args.k_min <= args.k_max:
        raise ValueError(f"need 2 <= --k-min <= --k-max, got {args.k_min} and {args.k_max}")
    if not 0 < args.min_share < 1 or not 0 <= args.holdout_share < 1:
        raise ValueError(f"--min-share {args.min_share} / --holdout-share {args.holdout_share} out of range")
    return TrainOptions(
        k_min=args.k_min, k_max=args.k_max, algorithm=args.algorithm, seed=args.seed,
        min_share=args.min_share, report=not args.no_report,
    )  # fmt: skip


def _load(args: argparse.Namespace):
    from training import sources

    if args.table:
        if not args.spec:
            raise ValueError("--table needs --spec SPEC.json declaring its columns")
        return sources.load_table(args.table, args.spec, args.holdout_share, args.seed)
    if args.events == "cdnow":
        return sources.load_cdnow(args.seed)
    return sources.load_events_file(args.events, args.holdout_share, args.seed)


def _dropped(dropped: dict[str, str]) -> str:
    return ", ".join(f"{name} ({why.split(' in the ')[0]})" for name, why in dropped.items()) or "none"


def format_summary(summary: dict) -> str:
    """The end-of-run table: model, metrics, segments with training and held-out shares, step times."""
    metrics = ", ".join(f"{k} {v}" for k, v in summary["metrics"].items())
    stability = summary["stability"]
    held = summary["holdout"].get("shares") or [None] * summary["k"]
    lines = [
        f"model      {summary['model_id']}  ->  {summary['out']}",
        f"data       {summary['data'].get('source')}: {summary['data'].get('customers')} customers, "
        f"{summary['data'].get('training_customers')} used for fitting",
        f"chosen     {summary['algorithm']} k={summary['k']}  ({metrics})",
        f"stability  mean ARI {stability['ari_mean']} between {stability['rounds']} bootstrap refits",
        f"dropped    {_dropped(summary['dropped_features'])}",
        "",
        f"{'seg':>3}  {'name':<34} {'customers':>9} {'share':>7} {'held-out':>8}",
    ]
    for profile, share in zip(summary["segments"], held, strict=True):
        shown = "-" if share is None else f"{share:.1%}"
        name, size, share_ = profile["name"], profile["size"], profile["share"]
        lines.append(f"{profile['segment_id']:>3}  {name:<34} {size:>9} {share_:>7.1%} {shown:>8}")
    lines += ["", "seconds    " + "  ".join(f"{k} {v:.2f}" for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Train; print the summary table; 0 ok, 1 held-out check failed, 2 bad input."""
    from model.signing import resolve_model_key
    from training.train import train

    stdout = stdout or sys.stdout
    try:
        key = resolve_model_key(getattr(args, "model_key_file", None), os.environ)
    except SegmenterError as exc:
        logger.error("training refused: %s", exc)
        return 2
    if key is None:
        logger.warning(
            "no model key (SEGMENTER_MODEL_KEY or --model-key-file): the artifact is not signed, "
            "and scorers that verify signatures will refuse it"
        )
    try:
        options = _options(args)
        data = _load(args)
        summary = train(data, args.out, options, signing_key=key)
    except (ValueError, OSError, SegmenterError) as exc:
        logger.error("training failed: %s", exc)
        return 2
    if key is not None:
        logger.info("artifact signed: %s", Path(args.out) / "model.sig")
    stdout.write(format_summary(summary))
    if summary["holdout"] and not summary["holdout"]["ok"]:
        logger.error(
            "held-out check failed: smallest held-out segment %.1f%% < %.0f%%",
            100 * summary["holdout"]["min_share"], 100 * options.min_share,
        )  # fmt: skip
        return 1
    return 0
