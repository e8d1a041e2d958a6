"""The README's settings table, made from the settings tables: ``python -m deploy.settings_table``.

One row per environment variable: its flag, the commands that take it, its default and its help.
``tests/test_settings.py`` checks that the README holds exactly this table, so a row added to a
table in ``consumer/settings.py`` or ``deploy/web/serve.py`` is a failing test until the README has it
(run this module and paste its output between the README's markers).
"""

from __future__ import annotations

import sys

from consumer.settings import CONSUME, LOGGING, REPLAY_OPTIONS, Setting
from deploy.web.serve import WEB

BEGIN = "<!-- settings table: made by `python -m deploy.settings_table`; do not edit by hand -->"
END = "<!-- end of settings table -->"

# command -> its tables, in the order its --help lists them
COMMAND_TABLES: dict[str, tuple[tuple[Setting, ...], ...]] = {
    "consume": CONSUME,
    "replay": REPLAY_OPTIONS,
    "serve": (WEB,),
}


def rows() -> list[tuple[Setting, list[str]]]:
    """Each setting (the first of those sharing an environment name) and the commands that take it."""
    found: dict[str, tuple[Setting, list[str]]] = {s.env: (s, ["all"]) for s in LOGGING}
    for command, tables in COMMAND_TABLES.items():
        for table in tables:
            for s in table:
                found.setdefault(s.env, (s, []))[1].append(command)
    return list(found.values())


def _default(s: Setting) -> str:
    if s.type is bool:
        return "off"
    if s.documented_default is not None:
        return f"`{s.documented_default}`"
    return "" if s.default is None else f"`{s.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """The table, between the README's markers.

    >>> markdown().splitlines()[1:3]
    ['| Variable | Flag | Commands | Default | Meaning |', '|---|---|---|---|---|']
    """
    lines = [BEGIN, "| Variable | Flag | Commands | Default | Meaning |", "|---|---|---|---|---|"]
    for s, commands in rows():
        meaning = s.help + (f" (one of {', '.join(s.choices)})" if s.choices else "")
        meaning += " (switch)" if s.type is bool else ""
        lines.append(
            f"| `{s.env}` | `{s.flag}` | {', '.join(commands)} | {_cell(_default(s))} | {_cell(meaning)} |"
        )
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
