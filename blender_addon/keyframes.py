"""Writing keyframes in bulk, on Blender 4.2 to 5.x.

Blender 4.4 introduced action slots and 5.0 removed ``Action.fcurves``: there the F-curves live in
the channel bag of the slot the ID animates (``bpy_extras.anim_utils``). Shape-key animation
belongs on the Key datablock, not on the mesh object.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy

_SLOTTED = hasattr(bpy.types, "ActionSlot")


def _fcurves(id_data: bpy.types.ID, action_name: str):
    """The F-curve collection that animates ``id_data``, creating action and slot when needed."""
    ad = id_data.animation_data or id_data.animation_data_create()
    if ad.action is None:
        ad.action = bpy.data.actions.new(action_name)
    action = ad.action
    if not _SLOTTED:
        return action.fcurves
    from bpy_extras import anim_utils

    if ad.action_slot is None:
        suitable = list(getattr(ad, "action_suitable_slots", ()))
        ad.action_slot = suitable[0] if suitable else action.slots.new(id_data.id_type, id_data.name)
    return anim_utils.action_ensure_channelbag_for_slot(action, ad.action_slot).fcurves


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
    fcurves = _fcurves(id_data, f"{id_data.name}Action")
    fc = fcurves.find(data_path, index=index)
    if fc is None:
        # channel bags (4.4+) call the group group_name; Action.fcurves (4.2, 4.3) action_group
        fc = fcurves.new(data_path, index=index, **{"group_name" if _SLOTTED else "action_group": group})
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
