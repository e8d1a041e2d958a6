"""``model.errors.DEAD_LETTER_REASONS`` lists every dead-letter reason the code gives, and so do the docs."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from model.errors import DEAD_LETTER_REASONS, InvalidEvent

ROOT = Path(__file__).resolve().parent.parent


def _reasons_in_code() -> dict[str, str]:
    """Every string literal given as ``reason=`` or as the reason of ``_dead_letter(record, reason, ...)``."""
    found: dict[str, str] = {}
    for package in ("model", "consumer", "training"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                values = [k.value for k in node.keywords if k.arg == "reason"]
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in {"_dead_letter", "dead_letter"}:
                    values += node.args[1:2] if name == "_dead_letter" else node.args[2:3]
                for value in values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_reason_the_code_gives_is_listed():
    found = _reasons_in_code()
    assert {"missing_key", "internal_error", "implausible_timestamp"} <= set(found), found
    default = inspect.signature(InvalidEvent).parameters["reason"].default
    unlisted = {reason: where for reason, where in found.items() if reason not in DEAD_LETTER_REASONS}
    assert not unlisted, f"add to model.errors.DEAD_LETTER_REASONS: {unlisted}"
    assert default in DEAD_LETTER_REASONS
    given = set(found) | {default}
    assert set(DEAD_LETTER_REASONS) <= given, f"listed but never given: {set(DEAD_LETTER_REASONS) - given}"


def test_the_docstring_and_the_readme_name_every_reason():
    import model.errors

    readme = (ROOT / "README.md").read_text()
    for reason in DEAD_LETTER_REASONS:
        assert re.search(rf"``{reason}``", model.errors.__doc__), f"model/errors.py docstring lacks {reason}"
        assert f"`{reason}`" in readme, f"README lacks the dead-letter reason {reason}"
