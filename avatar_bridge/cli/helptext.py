"""Help texts that the terminal wraps, not the source file.

Typer's rich help keeps every line break of a docstring, so a paragraph hard-wrapped at the
source's 110 columns comes out ragged in an 80-column terminal. ``reflow`` joins a paragraph's
lines into one, keeping the breaks that carry meaning: before a list item (``- ``), an indented
line and a command line (``avatar-bridge ...``, ``then: ...``).
"""

from __future__ import annotations

import inspect

import typer

#: A line starting with one of these keeps its line break.
KEEP_BREAK_BEFORE = ("- ", " ", "avatar-bridge ", "then: ")


def reflow(text: str) -> str:
    """``text`` with each paragraph's soft line breaks turned into spaces."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.split("\n"):
            if lines and not line.startswith(KEEP_BREAK_BEFORE) and "\b" not in lines[0]:
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def reflow_app(app: typer.Typer) -> None:
    """Reflow the help of ``app``, its commands and its sub-apps, once, after they are registered."""
    if isinstance(app.info.help, str):
        app.info.help = reflow(app.info.help)
    for command in app.registered_commands:
        doc = command.help if isinstance(command.help, str) else inspect.getdoc(command.callback)
        if doc:
            command.help = reflow(doc)
    for group in app.registered_groups:
        reflow_app(group.typer_instance)
