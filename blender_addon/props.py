"""Settings stored in the .blend (Scene.avatar_bridge): target, bones, network, mapping table."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .session import DEFAULT_PORTS


def _is_mesh(_self, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


def _is_armature(_self, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE"


def _protocol_changed(self, _context) -> None:
    """Follow the protocol's usual port unless the user chose another one."""
    if self.port in DEFAULT_PORTS.values():
        self.port = DEFAULT_PORTS[self.protocol]


class AVATARBRIDGE_PG_mapping(bpy.types.PropertyGroup):
    """One row of the explicit mapping table: an incoming name drives a shape key."""

    source: StringProperty(name="Incoming", description="Name as the sender spells it, e.g. browInnerUp")
    target: StringProperty(name="Shape key", description="Shape key it drives, e.g. browInnerUp_L")


class AVATARBRIDGE_PG_settings(bpy.types.PropertyGroup):
    target: PointerProperty(
        name="Face mesh", type=bpy.types.Object, poll=_is_mesh,
        description="Mesh whose shape keys the stream drives",
    )  # fmt: skip
    armature: PointerProperty(
        name="Armature", type=bpy.types.Object, poll=_is_armature,
        description="Optional armature whose head (and neck) bone follows the head rotation",
    )  # fmt: skip
    head_bone: StringProperty(name="Head bone", default="Head")
    neck_bone: StringProperty(name="Neck bone", default="", description="Optional; shares the rotation")
    neck_share: FloatProperty(
        name="Neck share", default=0.3, min=0.0, max=1.0,
        description="Part of the head rotation given to the neck bone when one is set",
    )  # fmt: skip
    protocol: EnumProperty(
        name="Protocol",
        items=[
            ("NATIVE", "avatar-bridge", "avatar-bridge's own OSC stream (osc://, port 9100)"),
            ("VMC", "VMC", "Virtual Motion Capture protocol (port 39539)"),
        ],
        default="NATIVE", update=_protocol_changed,
    )  # fmt: skip
    host: StringProperty(
        name="Bind address", default="127.0.0.1",
        description="127.0.0.1 receives from this computer only; 0.0.0.0 from the network",
    )  # fmt: skip
    port: IntProperty(name="Port", default=9100, min=1, max=65535)
    face_id: IntProperty(name="Face", default=0, min=0, description="Which tracked face drives the mesh")
    vmc_head_bone: StringProperty(name="VMC head bone", default="Head", description="Unity bone name")
    subframes: BoolProperty(
        name="Sub-frame keys", default=False,
        description="Key at the exact sender time instead of the nearest whole frame",
    )  # fmt: skip
    mapping: CollectionProperty(type=AVATARBRIDGE_PG_mapping)
    mapping_index: IntProperty(default=0)


CLASSES = (AVATARBRIDGE_PG_mapping, AVATARBRIDGE_PG_settings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.avatar_bridge = PointerProperty(type=AVATARBRIDGE_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.avatar_bridge
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
