"""Every command's --help reads as paragraphs in an 80-column terminal: lines break where the
terminal runs out of room, or before a list item or a command, never where the source file did."""

from __future__ import annotations

import click
import pytest
import typer.main
from typer.testing import CliRunner

from avatar_bridge.cli import app
from avatar_bridge.cli.helptext import KEEP_BREAK_BEFORE, reflow

WIDTH = 80


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_reflow_keeps_meaningful_breaks_only():
    text = (
        "First line\nstill first.\n\nA paragraph\nwrapped twice\nin the source.\n- a list item\n- another"
        "\n\nExample: x\nthen: y"
    )
    assert reflow(text) == (
        "First line still first.\n\nA paragraph wrapped twice in the source.\n- a list item\n- another"
        "\n\nExample: x\nthen: y"
    )


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "avatar-bridge")
def test_help_breaks_lines_only_where_the_terminal_is_full(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH), "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    text = [line.rstrip() for line in lines[start:end]]
    assert any(text), f"{path}: no help text"
    for a, b in zip(text, text[1:], strict=False):
        if not a or not b or b.strip().startswith(KEEP_BREAK_BEFORE):
            continue
        first_word = b.split()[0]
        assert len(a) + 1 + len(first_word) > WIDTH - 2, f"{path}: a short line ({a!r}) before {b!r}"
