"""Putting received values on Blender data: shape-key weights and the head/neck bone rotation."""

from __future__ import annotations

import bpy
from mathutils import Euler

#: Blender's hard limits of ShapeKey.value.
VALUE_MIN, VALUE_MAX = -10.0, 10.0


def shape_keys(obj: bpy.types.Object | None) -> bpy.types.Key | None:
    """The Key datablock of a mesh object, or None when it has no shape keys."""
    if obj is None or obj.type != "MESH" or obj.data.shape_keys is None:
        return None
    return obj.data.shape_keys


def target_names(obj: bpy.types.Object | None) -> list[str]:
    """Shape keys that may be driven: every key block except the reference (basis)."""
    key = shape_keys(obj)
    if key is None:
        return []
    return [kb.name for kb in key.key_blocks if kb != key.reference_key]


def apply_weights(obj: bpy.types.Object, weights: dict[str, float]) -> int:
    """Set shape-key values (clamped to Blender's limits); return how many were set."""
    key = shape_keys(obj)
    if key is None:
        return 0
    blocks, n = key.key_blocks, 0
    for name, value in weights.items():
        kb = blocks.get(name)
        if kb is not None:
            kb.value = min(VALUE_MAX, max(VALUE_MIN, value))
            n += 1
    return n


def split_head(euler: tuple[float, float, float], neck_share: float) -> tuple[tuple, tuple]:
    """(head, neck) Euler angles when the neck takes ``neck_share`` (0-1) of the rotation."""
    neck = tuple(a * neck_share for a in euler)
    head = tuple(a * (1.0 - neck_share) for a in euler)
    return head, neck


def rotation_values(pose_bone: bpy.types.PoseBone, euler: tuple[float, float, float]) -> tuple[str, list]:
    """(attribute, values) of ``euler`` (XYZ, radians) in the bone's own rotation mode: quaternion
    and axis-angle bones are converted, other Euler orders re-expressed."""
    e = Euler(euler, "XYZ")
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", list(e.to_quaternion())
    if mode == "AXIS_ANGLE":
        axis, angle = e.to_quaternion().to_axis_angle()
        return "rotation_axis_angle", [angle, *axis]
    return "rotation_euler", list(e if mode == "XYZ" else e.to_matrix().to_euler(mode))


def set_bone_rotation(pose_bone: bpy.types.PoseBone, euler: tuple[float, float, float]) -> None:
    """Rotate a pose bone (relative to its rest pose) by XYZ Euler angles."""
    attr, values = rotation_values(pose_bone, euler)
    setattr(pose_bone, attr, values)


def bone_path(pose_bone: bpy.types.PoseBone, attr: str) -> str:
    """The armature object's data path of a pose bone's attribute (for F-curves)."""
    return f'pose.bones["{bpy.utils.escape_identifier(pose_bone.name)}"].{attr}'
