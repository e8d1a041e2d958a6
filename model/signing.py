"""Signing model artifacts: HMAC-SHA256 over the manifest and the model bytes, checked before unpickling.

A ``model.joblib`` is a pickle, and unpickling runs whatever code the file names. The manifest's
sha256 catches accidents (a truncated copy, a flipped byte) but not an attacker, who rewrites the hash
too. A signature made with a key the operator holds does: ``segmenter train`` (or ``segmenter sign``)
writes ``model.sig`` beside the artifact, and :func:`model.artifact.load_artifact` checks it against
the exact bytes it is about to parse and unpickle, refusing with :class:`ArtifactSignatureError`
before ``joblib.load`` runs.

What is signed: ``DOMAIN``, the length of ``manifest.json`` (8 bytes, big-endian), the bytes of
``manifest.json`` exactly as they are on disk, then the bytes of ``model.joblib``. Signing the file
bytes rather than a re-encoded manifest means nothing is parsed before the signature is checked; the
length prefix keeps the boundary between the two files unambiguous.

The key is held in :class:`ModelKey`, whose ``repr`` and ``str`` never show it. The composition roots
(the CLIs, the web app's ``from_environment``) read it with :func:`resolve_model_key` from
``--model-key-file PATH`` (env ``SEGMENTER_MODEL_KEY_FILE``) or ``SEGMENTER_MODEL_KEY``.

>>> key = ModelKey(b"0123456789abcdef-not-a-real-key")
>>> key
ModelKey('***')
>>> sig = sign(key, b'{"model_id": "m"}', b"model bytes")
>>> verify(key, b'{"model_id": "m"}', b"model bytes", sig)
True
>>> verify(key, b'{"model_id": "x"}', b"model bytes", sig)
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

from model.errors import ConfigError

__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIN_KEY_BYTES",
    "SIGNATURE_FILE",
    "UNVERIFIED_WARNING",
    "ModelKey",
    "decode_signature_file",
    "encode_signature_file",
    "resolve_model_key",
    "sign",
    "verify",
]

SIGNATURE_FILE = "model.sig"
ALGORITHM = "hmac-sha256"
DOMAIN = b"segmenter-artifact-v1\x00"
KEY_ENV = "SEGMENTER_MODEL_KEY"
KEY_FILE_ENV = "SEGMENTER_MODEL_KEY_FILE"
MIN_KEY_BYTES = 16
UNVERIFIED_WARNING = (
    "model artifacts are loaded unverified: loading a model executes code; set SEGMENTER_MODEL_KEY "
    "(or --model-key-file) to the key `segmenter train` signed them with to verify them before loading"
)


class ModelKey:
    """The artifact signing key. Its ``repr``/``str`` are ``***``; it refuses to be pickled."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError("a model key is bytes")
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the model key is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
                "(for example: openssl rand -hex 32)"
            )
        self._key = key

    def __repr__(self) -> str:
        return "ModelKey('***')"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a ModelKey is not pickled (it would leave the process in the clear)")

    def mac(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def _message(manifest_bytes: bytes, model_bytes: bytes) -> bytes:
    return DOMAIN + struct.pack(">Q", len(manifest_bytes)) + manifest_bytes + model_bytes


def sign(key: ModelKey, manifest_bytes: bytes, model_bytes: bytes) -> str:
    """The hex HMAC-SHA256 of the manifest bytes and the model bytes."""
    return key.mac(_message(manifest_bytes, model_bytes))


def verify(key: ModelKey, manifest_bytes: bytes, model_bytes: bytes, signature: str) -> bool:
    """Whether ``signature`` is the HMAC of these bytes under ``key`` (constant-time comparison)."""
    expected = sign(key, manifest_bytes, model_bytes)
    return hmac.compare_digest(expected.encode(), str(signature).encode())


def encode_signature_file(signature: str) -> bytes:
    return (json.dumps({"algorithm": ALGORITHM, "signature": signature}) + "\n").encode()


def decode_signature_file(data: bytes) -> str:
    """The hex signature in a ``model.sig``; ``ValueError`` naming the problem if it is malformed."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(body, dict) or body.get("algorithm") != ALGORITHM:
        raise ValueError(f"algorithm is not {ALGORITHM!r}")
    signature = body.get("signature")
    if not isinstance(signature, str) or len(signature) != 64:
        raise ValueError("no 64-hex-digit signature")
    return signature


def resolve_model_key(key_file: str | os.PathLike | None, environ: Mapping[str, str]) -> ModelKey | None:
    """The configured key: ``key_file`` (or ``SEGMENTER_MODEL_KEY_FILE``), else ``SEGMENTER_MODEL_KEY``.

    None when neither is set. A key file that is missing, unreadable or empty is a :class:`ConfigError`
    (never silently "no key": that would turn verification off). Surrounding whitespace is stripped, so
    a file ending in a newline holds the same key as the variable without one.
    """
    key_file = key_file or environ.get(KEY_FILE_ENV) or None
    if key_file:
        path = Path(key_file)
        try:
            data = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the model key file {path}: {exc.strerror or exc}") from exc
        if not data:
            raise ConfigError(f"the model key file {path} is empty")
        return ModelKey(data)
    value = environ.get(KEY_ENV)
    if value is None:
        return None
    data = value.strip().encode()
    if not data:
        raise ConfigError(f"{KEY_ENV} is set but empty")
    return ModelKey(data)
