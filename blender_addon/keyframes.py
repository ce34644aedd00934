"""Writing keyframes in bulk, on Blender 4.2 to 5.x.

Blender 4.4 introduced action slots and 5.0 removed ``Action.fcurves``: there the F-curves live in
the channel bag of the slot the ID animates (``bpy_extras.anim_utils``; its helper that creates a
channel bag only arrived in 5.0). Shape-key animation belongs on the Key datablock, not on the mesh
object. Tested in Blender 4.2.0 and 5.0.1 (tests/test_blender_addon.py), and by hand in 4.4.0.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy

_SLOTTED = hasattr(bpy.types, "ActionSlot")


def _channels(id_data: bpy.types.ID, action_name: str):
    """What holds the F-curves (and their groups) animating ``id_data``: the Action before 4.4, the
    slot's channel bag from 4.4; creates action, slot and channel bag when needed."""
    ad = id_data.animation_data or id_data.animation_data_create()
    if ad.action is None:
        ad.action = bpy.data.actions.new(action_name)
    action = ad.action
    if not _SLOTTED:
        return action
    from bpy_extras import anim_utils

    if ad.action_slot is None:
        suitable = list(getattr(ad, "action_suitable_slots", ()))
        ad.action_slot = suitable[0] if suitable else action.slots.new(id_data.id_type, id_data.name)
    ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)  # 5.0+
    if ensure is not None:
        return ensure(action, ad.action_slot)
    layer = action.layers[0] if action.layers else action.layers.new("Layer")  # 4.4, 4.5: by hand
    strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(ad.action_slot, ensure=True)


def find_fcurve(id_data: bpy.types.ID, data_path: str, index: int = 0) -> bpy.types.FCurve | None:
    """The F-curve of ``data_path[index]`` on ``id_data``'s action, or None (never creates)."""
    ad = id_data.animation_data
    if ad is None or ad.action is None:
        return None
    if _SLOTTED:
        from bpy_extras import anim_utils

        if ad.action_slot is None:
            return None
        bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
        return bag.fcurves.find(data_path, index=index) if bag else None
    return ad.action.fcurves.find(data_path, index=index)


def write_keys(
    id_data: bpy.types.ID,
    data_path: str,
    frames: Sequence[float],
    values: Sequence[float],
    index: int = 0,
    group: str = "avatar-bridge",
) -> bpy.types.FCurve:
    """Key ``data_path[index]`` at ``frames``; existing keys inside the new range are replaced."""
    if len(frames) != len(values):
        raise ValueError(f"{len(frames)} frames but {len(values)} values")
    channels = _channels(id_data, f"{id_data.name}Action")
    fc = channels.fcurves.find(data_path, index=index)
    if fc is None:
        # fcurves.new() names the group differently in each version (or not at all, 4.4): set it after
        fc = channels.fcurves.new(data_path, index=index)
        fc.group = channels.groups.get(group) or channels.groups.new(group)
    keep: dict[float, float] = {}
    if frames:
        lo, hi = min(frames), max(frames)
        co = [0.0] * (2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        keep = {co[i]: co[i + 1] for i in range(0, len(co), 2) if not lo <= co[i] <= hi}
    keep.update(zip((float(f) for f in frames), (float(v) for v in values), strict=True))
    fc.keyframe_points.clear()
    fc.keyframe_points.add(len(keep))
    flat = [x for f in sorted(keep) for x in (f, keep[f])]
    fc.keyframe_points.foreach_set("co", flat)
    fc.update()
    return fc
