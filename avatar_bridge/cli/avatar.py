"""``avatar-bridge avatar``: build the default avatar, export avatars as GLB."""

from __future__ import annotations

from pathlib import Path

import typer

from avatar_bridge.cli import app
from avatar_bridge.errors import InputError

avatar_app = typer.Typer(
    help="Build and export the avatars the virtual camera renders.", no_args_is_help=True
)
app.add_typer(avatar_app, name="avatar")

_SHARED_CANONICAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "canonical_face_mesh.obj"


@avatar_app.command("build")
def build(
    canonical: Path = typer.Option(
        _SHARED_CANONICAL, help="MediaPipe canonical face mesh OBJ (468 vertices)."
    ),
    out: Path = typer.Option(None, help="Output folder (default: the packaged models folder)."),
) -> None:
    """Fit one target per ARKit blendshape to real tracked sample videos; write default_avatar.npz + .md."""
    from avatar_bridge import sample_media
    from avatar_bridge.recording import load_recording
    from avatar_bridge.render.build import DEFAULT_RECORDINGS, build_avatar, write_default_avatar
    from avatar_bridge.resources import data_dir

    if not canonical.is_file():
        raise InputError(f"canonical face mesh not found: {canonical} (pass --canonical PATH)")
    recordings = {name: load_recording(sample_media.sample_recording(name)) for name in DEFAULT_RECORDINGS}
    avatar, fit = build_avatar(canonical, recordings)
    path = write_default_avatar(avatar, fit, canonical, out or data_dir("models"))
    typer.echo(
        f"wrote {path} ({fit.frames} frames, {len(fit.excited)} channels fitted, held-out RMS "
        f"{fit.rms_neutral_cm:.3f} -> {fit.rms_model_cm:.3f} cm)"
    )


@avatar_app.command("export")
def export(
    avatar: str = typer.Argument(..., help="default, ict or an avatar file (.npz/.glb/.gltf/.obj)."),
    out: Path = typer.Argument(
        ..., help="Output .glb (morph targets) or .npz (avatar-bridge's compact file)."
    ),
) -> None:
    """Write an avatar as GLB with morph targets (Blender, three.js, Unity) or as compact .npz."""
    from avatar_bridge.render import load_avatar, save_avatar
    from avatar_bridge.render.gltf import save_glb

    a = load_avatar(avatar)
    suffix = out.suffix.lower()
    if suffix == ".glb":
        save_glb(a, out)
    elif suffix == ".npz":
        save_avatar(a, out)
    else:
        raise InputError(f"{out}: export to .glb or .npz")
    typer.echo(f"wrote {out} ({a.num_vertices} vertices, {len(a.target_names)} targets)")
