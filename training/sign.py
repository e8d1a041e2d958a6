"""``segmenter sign``: sign an existing model artifact with the model key (writes ``model.sig``).

For artifacts trained before signing existed, or trained without a key. Signing says "I trust this
model" — the model file is a pickle and loading it runs code — so sign only artifacts you trained or
otherwise vouch for. The model is never unpickled here; its sha256 must match the manifest.

Examples::

    SEGMENTER_MODEL_KEY=$(cat /run/secrets/model-key) segmenter sign --model-dir artifacts/cdnow
    segmenter sign --model-dir artifacts/cdnow --model-key-file /run/secrets/model-key

Exit codes: 0 signed; 2 no key, or the artifact is broken.
"""

from __future__ import annotations

import argparse
import logging
import os

from model.errors import SegmenterError

logger = logging.getLogger(__name__)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, metavar="DIR", help="model directory to sign")
    parser.add_argument(
        "--model-key-file",
        default=os.environ.get("SEGMENTER_MODEL_KEY_FILE"),
        metavar="PATH",
        help="file holding the signing key [env SEGMENTER_MODEL_KEY_FILE; or the key in SEGMENTER_MODEL_KEY]",
    )


def run(args: argparse.Namespace) -> int:
    from model.artifact import SIGNATURE_FILE, sign_artifact
    from model.signing import resolve_model_key

    try:
        key = resolve_model_key(args.model_key_file, os.environ)
        if key is None:
            logger.error("no model key: set SEGMENTER_MODEL_KEY or pass --model-key-file")
            return 2
        manifest = sign_artifact(args.model_dir, key)
    except (SegmenterError, OSError) as exc:
        logger.error("signing refused: %s", exc)
        return 2
    logger.info("signed %s (%s): %s", manifest.get("model_id"), args.model_dir, SIGNATURE_FILE)
    return 0
