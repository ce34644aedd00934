"""Importing an exported curves file as keyframed shape-key animation."""

from __future__ import annotations

from pathlib import Path

import bpy

from . import apply
from .curves import AUMapping, default_au_mapping, load_au_mapping, read_curves, shape_curves
from .keyframes import write_keys
from .names import NameMatcher
from .timemap import bake_times, scene_rate


def import_curves(
    scene: bpy.types.Scene,
    path: str | Path,
    face_id: int | None = None,
    au_mapping: str | Path | AUMapping | None = None,
    start_frame: float | None = None,
    subframes: bool = False,
) -> dict:
    """Key the target mesh's shape keys from a ``.blendshapes.csv`` or an OpenFace-format AU CSV.

    The file's time zero lands on ``start_frame`` (default the scene's start), at the scene's rate.
    AU files go through ``au_mapping`` (a TOML path or an :class:`AUMapping`; default: the add-on's
    consensus table). Raises curves.CurveFileError or ValueError with a one-line message.
    """
    s = scene.avatar_bridge
    key = apply.shape_keys(s.target)
    if key is None:
        raise ValueError("choose a target mesh with shape keys first")
    table = read_curves(path, face_id)
    if not table.timestamps:
        raise ValueError(f"{Path(path).name} has no tracked rows for face {table.face_id}")
    mapping = au_mapping if isinstance(au_mapping, AUMapping) or au_mapping is None else None
    if au_mapping is not None and mapping is None:
        mapping = load_au_mapping(au_mapping)
    channels = shape_curves(table, mapping or (default_au_mapping() if table.kind == "openface" else None))
    matcher = NameMatcher(apply.target_names(s.target), [(m.source, m.target) for m in s.mapping])
    start = float(scene.frame_start if start_frame is None else start_frame)
    rate = scene_rate(scene.render.fps, scene.render.fps_base)
    frames, idx = bake_times(table.timestamps, rate, start, origin=0.0, subframes=subframes)
    keyed, unmatched = set(), []
    for name, values in channels.items():
        targets = matcher.resolve(name)
        if not targets:
            unmatched.append(name)
            continue
        pairs = [(f, values[i]) for f, i in zip(frames, idx, strict=True) if values[i] is not None]
        if not pairs:
            continue
        for shape in targets:
            path_ = f'key_blocks["{bpy.utils.escape_identifier(shape)}"].value'
            write_keys(key, path_, [p[0] for p in pairs], [p[1] for p in pairs], group="Shape keys")
            keyed.add(shape)
    if frames and frames[-1] > scene.frame_end:
        scene.frame_end = int(frames[-1])
    return {
        "kind": table.kind, "face_id": table.face_id, "frames": len(frames), "shapes": len(keyed),
        "unmatched": unmatched, "first": frames[0] if frames else None,
        "last": frames[-1] if frames else None,
    }  # fmt: skip
