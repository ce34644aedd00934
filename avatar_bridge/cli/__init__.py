"""The ``avatar-bridge`` command line: one typer app, one module per command group.

Errors of avatar-bridge's own hierarchy become one line on stderr and a non-zero exit code;
tracebacks are for bugs only.
"""

from __future__ import annotations

import logging
import sys

import typer
from typer.exceptions import Abort, Exit, TyperException

from avatar_bridge.errors import AvatarBridgeError

app = typer.Typer(
    name="avatar-bridge",
    help=(
        "Read a real face from a camera or a video, down to its micro-expressions, and drive an avatar "
        "with it.\n\n"
        "[bold]Typical uses[/]\n\n"
        "- try it on a real face video:  [cyan]avatar-bridge demo[/]\n\n"
        "- AU + blendshape curves:  [cyan]avatar-bridge export interview.mp4 -o curves[/]\n\n"
        "- drive a VMC app live:  [cyan]avatar-bridge live --source 0 --sink vmc:// --profile vrm0[/]\n\n"
        "- the rigs we map onto:  [cyan]avatar-bridge profiles list[/]\n\n"
        "Each command explains itself: avatar-bridge COMMAND --help"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Command modules register themselves on ``app`` when imported. Add one import line per module.
from avatar_bridge.cli import avatar as _avatar  # noqa: E402,F401
from avatar_bridge.cli import calibrate as _calibrate  # noqa: E402,F401
from avatar_bridge.cli import export as _export  # noqa: E402,F401
from avatar_bridge.cli import live as _live  # noqa: E402,F401
from avatar_bridge.cli import micro as _micro  # noqa: E402,F401
from avatar_bridge.cli import profiles as _profiles  # noqa: E402,F401
from avatar_bridge.cli import synth as _synth  # noqa: E402,F401
from avatar_bridge.cli.helptext import reflow_app  # noqa: E402

reflow_app(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: run the app and turn errors into one line."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer (not standalone) turns Ctrl-C into a returned 130, not an exception
            typer.secho("interrupted", err=True)
            return 130
    except AvatarBridgeError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        return 1
    except Exit as e:
        return e.exit_code
    except TyperException as e:  # usage errors: bad option, missing argument...
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            typer.secho(f"error: {e.format_message()}", err=True, fg="red")
        return e.exit_code
    except (Abort, KeyboardInterrupt):
        typer.secho("interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
