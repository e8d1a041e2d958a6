"""Passwords that never reach a log line: a :class:`Secret` type and a redacting log filter.

A :class:`Secret` prints as ``***`` (``repr``, ``str``, f-strings, a dataclass ``repr``), so a
settings object or an ``argparse`` namespace can be logged whole. The plain value comes out only
through :meth:`Secret.reveal`, called where a client library is built.

The client libraries then log it themselves: kafka-python's admin client logs its whole
configuration at DEBUG, ``sasl_plain_password`` included, and its protocol parser logs the raw bytes
it sends (a SASL PLAIN exchange carries the password). :class:`RedactingFilter`, installed on the log
handler by ``segmenter``'s logging setup, masks in every formatted record both the value of every
:class:`Secret` made in this process and any value written beside a password-like key
(``'sasl_plain_password': '...'``, ``sasl.password=...``).

Examples
--------
>>> password = Secret("hunter2")
>>> password, str(password), f"{password}"
(Secret('***'), '***', '***')
>>> password.reveal()
'hunter2'
>>> redact("{'sasl_plain_password': 'other', 'client_id': 'x'}")
"{'sasl_plain_password': '***', 'client_id': 'x'}"
>>> redact(repr(b"\\x00user\\x00hunter2"))
"b'\\\\x00user\\\\x00***'"
>>> redact("sasl.password=abc ssl.key.password: def")
'sasl.password=*** ssl.key.password: ***'
"""

from __future__ import annotations

import hmac
import logging
import re
import threading

__all__ = ["MASK", "RedactingFilter", "Secret", "redact", "reveal"]

MASK = "***"

_known: set[str] = set()  # the value of every Secret made in this process, and its repr forms
_known_lock = threading.Lock()

# A password-like key, a separator (`': '`, `=`, `": "`), and the value: quoted, or up to a delimiter.
_KEYED = re.compile(
    r"""(?P<key>[\w.-]*(?:password|passwd|secret)[\w.-]*)(?P<sep>['"]?\s*[:=]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s,;}\])'"]+)""",
    re.IGNORECASE,
)


class Secret:
    """A string that hides itself: ``repr`` and ``str`` give ``***``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value
        _remember(value)

    def reveal(self) -> str:
        """The plain value, for the one place that hands it to a client library."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):
        raise TypeError("a Secret is not pickled")


def reveal(value: Secret | str | None) -> str | None:
    """The plain value of ``value`` (a :class:`Secret`, a plain string or None)."""
    return value.reveal() if isinstance(value, Secret) else value


def _remember(value: str) -> None:
    if len(value) < 3:  # masking every "a" or "12" in every log line would hide more than the secret
        return
    forms = {value, repr(value)[1:-1], repr(value.encode())[2:-1]}
    with _known_lock:
        _known.update(forms)


def redact(text: str) -> str:
    """``text`` with known secret values and values of password-like keys replaced by ``***``."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return _KEYED.sub(_mask_value, text)


def _mask_value(match: re.Match) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "'\"" else ""
    if value in (MASK, f"{quote}{MASK}{quote}", "None", "null"):
        return match[0]
    return f"{match['key']}{match['sep']}{quote}{MASK}{quote}"


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message and traceback (see :func:`redact`).

    On a handler it sees every record the handler writes, whichever logger made it (a filter on a
    logger would miss records from its child loggers).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
