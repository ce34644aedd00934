"""``avatar-bridge profiles list | show | validate | match``: the rig profiles, as data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from avatar_bridge.cli import app
from avatar_bridge.errors import InputError
from avatar_bridge.retarget import (
    available_profiles,
    load_profile,
    match_names,
    parse_profile,
    profile_to_toml,
    read_rig_names,
    write_profile,
)

profiles_app = typer.Typer(
    help="Rig profiles: which tracked channels drive which shapes of a rig.", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")
console = Console()
err = Console(stderr=True)


@profiles_app.command("list")
def list_profiles() -> None:
    """The shipped profiles."""
    table = Table(box=None)
    for col in ("profile", "targets", "spellings", "description"):
        table.add_column(col)
    for name in available_profiles():
        p = load_profile(name)
        table.add_row(name, str(len(p.targets)), ", ".join(p.spellings), p.description)
    console.print(table)


@profiles_app.command("show")
def show(
    name: str = typer.Argument(..., help="A shipped profile name or a profile .toml file."),
    spelling: str = typer.Option(None, help="Write target names in this spelling (apple, unity, suffix)."),
) -> None:
    """Every target of a profile and the sources that drive it."""
    p = load_profile(name, spelling=spelling)
    console.print(f"[bold]{p.name}[/]: {p.description} ({len(p.targets)} targets, mirror={p.mirror})")
    table = Table(box=None)
    for col in ("target", "sources", "gain", "offset", "curve", "clamp"):
        table.add_column(col)
    for t in p.targets:
        src = " + ".join(f"{w:g}*{s}" for s, w in t.sources.items())
        curve = t.curve.value + (f" {t.exponent:g}" if t.curve.value == "power" else "")
        table.add_row(t.name, src, f"{t.gain:g}", f"{t.offset:g}", curve, f"{t.clamp[0]:g}..{t.clamp[1]:g}")
    console.print(table)


@profiles_app.command("validate")
def validate(file: Path = typer.Argument(..., help="A profile .toml file.")) -> None:
    """Check a profile file; every unknown source, duplicate target or bad number is named."""
    p = parse_profile(file)
    console.print(f"ok: {file} is profile {p.name!r} with {len(p.targets)} targets")


@profiles_app.command("match")
def match(
    names: list[str] = typer.Argument(
        ..., help="A text file (one name per line), a mesh file (.glb/.gltf/...), or the names themselves."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the profile here (default: print it)."),
    name: str = typer.Option("matched", help="Name of the written profile."),
    strict: bool = typer.Option(False, help="Fail (exit 1, nothing written) when any name is unmatched."),
) -> None:
    """Write a profile for a rig's own shape-key names, with a report of how each one matched."""
    looks_like_file = len(names) == 1 and ("/" in names[0] or "\\" in names[0] or Path(names[0]).suffix)
    if looks_like_file and not Path(names[0]).is_file():  # a typo must not become a shape name
        raise InputError(f"names file not found: {names[0]}")
    spec = names[0] if len(names) == 1 and Path(names[0]).is_file() else names
    rig = read_rig_names(spec)
    result = match_names(rig, profile_name=name)
    err.print(result.report(), highlight=False)
    if result.profile is None:
        raise InputError("no name matched a tracked channel or a shipped profile target; no profile written")
    if strict and result.unmatched:
        unmatched = ", ".join(result.unmatched)
        raise InputError(f"--strict: {len(result.unmatched)} name(s) unmatched: {unmatched}")
    header = "written by 'avatar-bridge profiles match'; unmatched: " + (
        ", ".join(result.unmatched) or "none"
    )
    if out is None:
        typer.echo(profile_to_toml(result.profile, header))
    else:
        write_profile(result.profile, out, header)
        err.print(f"wrote {out} ({len(result.profile.targets)} targets)")
