"""Helpers for the scripts run by a Blender venv's python (bpy 4.2 or 5.x as a module, background mode).

Each script reads one JSON argument file, does its work in a real Blender, and writes one JSON
result file; any failure raises, so the process exits non-zero. BLENDER_USER_RESOURCES is set by
the caller, so nothing is written under ~/.config.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import bpy
import numpy as np

REPO = "user_default"
ADDON_ID = "avatar_bridge"


def load_args() -> dict:
    if not os.environ.get("BLENDER_USER_RESOURCES"):
        raise SystemExit("BLENDER_USER_RESOURCES must point at a temporary folder")
    return json.loads(Path(sys.argv[1]).read_text())


def write_json(path: str | Path, data: dict) -> None:
    """Write then rename, so a reader never sees half a file; tagged with the Blender version that
    wrote it, so the caller knows which build really ran."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps({"blender": ".".join(map(str, bpy.app.version))} | data))
    tmp.replace(path)


def install_extension(zip_path: str):
    """Install the built zip as a user extension, enable it, and return the add-on's module."""
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=REPO, enable_on_install=True)
    if result != {"FINISHED"}:
        raise RuntimeError(f"extension install returned {result}")
    name = f"bl_ext.{REPO}.{ADDON_ID}"
    if name not in bpy.context.preferences.addons:
        raise RuntimeError(f"{name} is not enabled after install")
    return importlib.import_module(name)


def new_scene(fps: int) -> bpy.types.Scene:
    scene = bpy.context.scene
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.frame_start, scene.frame_current, scene.frame_end = 1, 1, 10
    return scene


def _link(obj: bpy.types.Object) -> bpy.types.Object:
    bpy.context.scene.collection.objects.link(obj)
    return obj


def ict_head(folder: str) -> bpy.types.Object:
    """The ICT-FaceKit head: neutral mesh (OBJ faces, npz vertices) with its 57 expressions as shape keys."""
    data = np.load(Path(folder) / "ict_expression_deltas.npz")
    neutral, deltas, names = data["neutral"], data["deltas"], [str(n) for n in data["names"]]
    faces = []
    with open(Path(folder) / "generic_neutral_mesh.obj", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("f "):
                faces.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:]])
    mesh = bpy.data.meshes.new("ICTFace")
    mesh.from_pydata(neutral.tolist(), [], faces)
    obj = _link(bpy.data.objects.new("ICTFace", mesh))
    obj.shape_key_add(name="Basis", from_mix=False)
    for name, delta in zip(names, deltas, strict=True):
        kb = obj.shape_key_add(name=name, from_mix=False)
        kb.data.foreach_set("co", (neutral + delta).ravel())
    return obj


def generated_head(shape_names: list[str]) -> bpy.types.Object:
    """A small grid whose shape keys carry the given names, each moving a different vertex."""
    n = 8
    verts = [(x / n, 0.0, z / n) for z in range(n + 1) for x in range(n + 1)]
    faces = [(z * (n + 1) + x, z * (n + 1) + x + 1, (z + 1) * (n + 1) + x + 1, (z + 1) * (n + 1) + x)
             for z in range(n) for x in range(n)]  # fmt: skip
    mesh = bpy.data.meshes.new("GenFace")
    mesh.from_pydata(verts, [], faces)
    obj = _link(bpy.data.objects.new("GenFace", mesh))
    obj.shape_key_add(name="Basis", from_mix=False)
    for i, name in enumerate(shape_names):
        kb = obj.shape_key_add(name=name, from_mix=False)
        kb.data[i % len(verts)].co.y -= 0.05
    return obj


def armature() -> bpy.types.Object:
    """An upright Neck -> Head chain; Head in XYZ Euler, Neck left in quaternion mode."""
    arm = _link(bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig")))
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    neck = arm.data.edit_bones.new("Neck")
    neck.head, neck.tail = (0.0, 0.0, 1.40), (0.0, 0.0, 1.55)
    head = arm.data.edit_bones.new("Head")
    head.head, head.tail, head.parent = (0.0, 0.0, 1.55), (0.0, 0.0, 1.80), neck
    bpy.ops.object.mode_set(mode="OBJECT")
    arm.pose.bones["Head"].rotation_mode = "XYZ"
    return arm


def keys_of(fcurve) -> list[list[float]]:
    co = [0.0] * (2 * len(fcurve.keyframe_points))
    fcurve.keyframe_points.foreach_get("co", co)
    return [[co[i], co[i + 1]] for i in range(0, len(co), 2)]


def groups_of(fcurves) -> list[str]:
    """The channel groups the given F-curves sit in (the Graph Editor's folders), sorted."""
    return sorted({fc.group.name if fc.group else "" for fc in fcurves if fc is not None})


def shape_key_curves(mod, obj: bpy.types.Object) -> dict[str, list[list[float]]]:
    """Shape key name -> [[frame, value], ...] of its keyframes, found through the add-on's helper."""
    key = obj.data.shape_keys
    out = {}
    for kb in key.key_blocks[1:]:
        fc = mod.keyframes.find_fcurve(key, f'key_blocks["{kb.name}"].value')
        if fc is not None:
            out[kb.name] = keys_of(fc)
    return out
