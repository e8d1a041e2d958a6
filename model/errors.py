"""Every error the segmenter raises on purpose, in one tree.

::

    SegmenterError
     ├── InvalidEvent(field, problem, value)   one bad event: goes to the dead-letter topic, never crashes
     ├── ArtifactError                         base for every artifact problem
     │    ├── ArtifactIntegrityError           file sha256 != manifest sha256: tampered or truncated
     │    ├── ArtifactSignatureError           a key is configured and the artifact is unsigned or
     │    │                                    its HMAC does not match: refused before unpickling
     │    └── SchemaMismatchError              feature schema hash / names differ from what the caller expects
     └── ConfigError                           bad settings

Catch ``SegmenterError`` to handle anything the project raises deliberately; anything else is a bug.

Dead-letter reasons (``InvalidEvent.reason``, the ``dlq.reason`` header and the ``reason`` label of
``segmenter_events_invalid_total``), all of them, in ``DEAD_LETTER_REASONS``:

=========================  ========================================================================
``not_json``               the message is not JSON
``bad_utf8``               the message is not UTF-8
``too_large``              the message is larger than ``model.events.MAX_MESSAGE_BYTES``
``wrong_type``             the message or a field has the wrong JSON type
``missing_field``          a required field is absent
``bad_value``              a field's value is out of range or malformed (the default)
``unknown_type``           ``type`` is not one of the event types
``future_timestamp``       ``ts`` is further in the future than the allowed clock skew
``implausible_timestamp``  ``ts`` is before ``--min-event-time``
``key_mismatch``           the record key is not the event's ``customer_id``
``missing_key``            the record has no key (and ``--allow-keyless`` is off)
``internal_error``         anything else one record made the scorer raise: a bug, never a stopped stream
=========================  ========================================================================

Messages quote the offending value through :func:`shown`, which caps its length and nesting depth, so
building the message of a hostile value (a 5 KB object nested a thousand levels deep) cannot fail.

>>> err = InvalidEvent("amount", "must be >= 0", -3, reason="bad_value")
>>> err.reason, err.field, err.value
('bad_value', 'amount', -3)
>>> str(err)
"invalid event field 'amount': must be >= 0 (got -3)"
>>> isinstance(err, SegmenterError)
True
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "DEAD_LETTER_REASONS",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactSignatureError",
    "ConfigError",
    "InvalidEvent",
    "SchemaMismatchError",
    "SegmenterError",
    "shown",
]

DEAD_LETTER_REASONS = (
    "not_json",
    "bad_utf8",
    "too_large",
    "wrong_type",
    "missing_field",
    "bad_value",
    "unknown_type",
    "future_timestamp",
    "implausible_timestamp",
    "key_mismatch",
    "missing_key",
    "internal_error",
)
_MAX_VALUE_REPR = 80
# reprlib stops at ``maxlevel`` nesting levels and shortens long containers and strings on the way.
_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 4


def shown(value: Any, limit: int = _MAX_VALUE_REPR) -> str:
    """A short, bounded ``repr`` of any value, safe on hostile input (deep nesting, odd types).

    >>> deep = {}
    >>> for _ in range(5000):
    ...     deep = {"x": deep}
    >>> shown(deep)
    "{'x': {'x': {'x': {...}}}}"
    >>> shown("a" * 500)[-6:]
    "aa...'"
    """
    try:
        text = _REPR.repr(value)
    except Exception as exc:  # a value whose repr itself fails still gets a message
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SegmenterError(Exception):
    """Base of every error the project raises deliberately."""


class InvalidEvent(SegmenterError):  # noqa: N818 -- the name is the published contract
    """An event that cannot be accepted, naming the field, the problem and the offending value.

    Parameters
    ----------
    field : str
        The event field at fault (``"$"`` for the whole message, ``"attributes.age"`` for nested ones).
    problem : str
        What is wrong, as a short phrase ("is required", "must be >= 0").
    value : Any, optional
        The offending value (shortened in the message; kept whole on ``.value``).
    reason : str, optional
        Short stable code for metrics and the dead-letter topic: ``missing_field``, ``wrong_type``,
        ``bad_value``, ``not_json``, ... (the list is in this module's docstring).
    """

    def __init__(self, field: str, problem: str, value: Any = None, *, reason: str = "bad_value") -> None:
        self.field = field
        self.problem = problem
        self.value = value
        self.reason = reason
        super().__init__(self._message())

    def _message(self) -> str:
        return f"invalid event field {shown(self.field)}: {self.problem} (got {shown(self.value)})"

    def __reduce__(self):  # keep pickling (multiprocessing, joblib) working with keyword-only reason
        return (_rebuild_invalid_event, (self.field, self.problem, self.value, self.reason))


def _rebuild_invalid_event(field: str, problem: str, value: Any, reason: str) -> InvalidEvent:
    return InvalidEvent(field, problem, value, reason=reason)


class ArtifactError(SegmenterError):
    """Base for every problem with a saved model directory."""


class ArtifactIntegrityError(ArtifactError):
    """The model file's sha256 differs from the manifest: tampered with or truncated."""


class ArtifactSignatureError(ArtifactError):
    """A model key is configured and the artifact is unsigned or its signature does not match."""


class SchemaMismatchError(ArtifactError):
    """The artifact's feature schema differs from what the caller expects."""


class ConfigError(SegmenterError):
    """A setting is missing or malformed."""
