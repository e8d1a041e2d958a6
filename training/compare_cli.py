"""``segmenter compare``: score the same customers with two models and print how they differ.

Examples::

    segmenter compare --model-a artifacts/cdnow --model-b artifacts/cdnow-2 --events cdnow
    segmenter compare --model-a models/table --model-b models/table-2 \\
        --table customers.csv --spec customers.spec.json --out compare.html

Customers from events are one row each, as of the end of the history (what the stream holds for
them once it has read it all), computed by the same aggregator as training (``training.sources``
with ``snapshots=0``); a table is read as ``segmenter train --table`` reads it. The figures are
``training.compare``'s; ``--out PAGE.html`` also writes them to one self-contained page (nothing is
written without it).

Both models are loaded like any artifact (with a key from ``--model-key-file`` / the environment,
only if signed with it) and must take the same input schema as each other and as the data (otherwise
exit 2, one line naming both).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from model.errors import SchemaMismatchError, SegmenterError

logger = logging.getLogger(__name__)

__all__ = ["add_arguments", "input_schema", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``segmenter compare``."""
    parser.add_argument("--model-a", required=True, metavar="DIR", help="the model in service (or older)")
    parser.add_argument("--model-b", required=True, metavar="DIR", help="the candidate")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", metavar="cdnow|PATH.jsonl", help="event history: 'cdnow' or a JSONL file")
    source.add_argument("--table", metavar="PATH.csv", help="customer table (needs --spec)")
    parser.add_argument("--spec", metavar="SPEC.json", help="FeatureSpec JSON declaring the table's columns")
    parser.add_argument("--out", metavar="PAGE.html", help="also write the comparison to this HTML page")
    parser.add_argument(
        "--max-invalid-share", type=float, default=0.01, metavar="SHARE",
        help="JSONL input: stop when more than this share of the lines are invalid (default 0.01)",
    )  # fmt: skip
    parser.add_argument(
        "--model-key-file",
        default=os.environ.get("SEGMENTER_MODEL_KEY_FILE"),
        metavar="PATH",
        help="file holding the key the artifacts are verified with [env SEGMENTER_MODEL_KEY_FILE; "
        "or the key itself in SEGMENTER_MODEL_KEY]",
    )


def input_schema(model) -> str:
    """The schema hash of the input a model takes: the full spec its features were selected from."""
    return str(model.manifest.get("source_schema_hash") or model.spec.schema_hash())


def _load_models(args: argparse.Namespace):
    from model.artifact import load_artifact
    from model.signing import UNVERIFIED_WARNING, resolve_model_key

    key = resolve_model_key(getattr(args, "model_key_file", None), os.environ)
    if key is None:
        logger.warning("%s", UNVERIFIED_WARNING)
    models = []
    for flag, directory in (("--model-a", args.model_a), ("--model-b", args.model_b)):
        try:
            models.append(load_artifact(directory, key=key))
        except SegmenterError as exc:
            raise type(exc)(f"{flag} {directory}: {exc}") from None
    a, b = models
    if input_schema(a) != input_schema(b):
        raise SchemaMismatchError(
            f"--model-a {a.model_id} takes input schema {input_schema(a)} (features "
            f"{list(a.spec.feature_names)}) but --model-b {b.model_id} takes {input_schema(b)} (features "
            f"{list(b.spec.feature_names)}): compare models of the same input"
        )
    return a, b


def _customers(args: argparse.Namespace):
    """One row per customer (raw features) and a description of where they come from."""
    from training import sources

    if args.table:
        if not args.spec:
            raise ValueError("--table needs --spec SPEC.json declaring its columns")
        data = sources.load_table(args.table, args.spec, 0.0, seed=0)
        return data, f"{args.table}"
    if args.spec:
        raise ValueError(f"--spec {args.spec} applies to --table; events have the aggregator's features")
    if args.events == "cdnow":
        data = sources.load_cdnow(0, snapshots=0)
    else:
        data = sources.load_events_file(args.events, 0.0, 0, args.max_invalid_share, snapshots=0)
    return data, f"{args.events}, as of the {data.description['features_as_of']}"


def run(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Compare; print the figures (and write ``--out``); 0 done, 2 bad input or mismatched schemas."""
    from model.pipeline import to_frame
    from training.compare import Side, compare, format_comparison, render_html

    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        logger.error("segmenter compare: --out %s: %s is not a directory", out, out.parent)
        return 2
    try:
        a, b = _load_models(args)
        data, described = _customers(args)
    except (ValueError, OSError) as exc:
        logger.error("segmenter compare: %s", exc)
        return 2
    if data.spec.schema_hash() != input_schema(a):
        raise SchemaMismatchError(
            f"the models take input schema {input_schema(a)} (features {list(a.spec.feature_names)}) but "
            f"{args.table or args.events} gives {data.spec.schema_hash()} (features "
            f"{list(data.spec.feature_names)})"
        )
    ids_a = a.score_arrays(to_frame(data.frame, a.spec))[0]
    ids_b = b.score_arrays(to_frame(data.frame, b.spec))[0]
    found = compare(ids_a, ids_b, Side.of(a), Side.of(b))
    (stdout or sys.stdout).write(format_comparison(found, described))
    if out is not None:
        out.write_text(render_html(found, described), encoding="utf-8")
        logger.info("wrote %s", out)
    return 0
