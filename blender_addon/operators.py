"""Operators: Start/Stop, Record, mapping-table rows, and importing a curves file."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .curves import CurveFileError
from .live import runtime


def _summary(d: dict) -> str:
    return (
        f"keyed {d.get('frames', 0)} frames on {d.get('shapes', 0)} shape keys and {d.get('bones', 0)} bones"
    )


class AVATARBRIDGE_OT_start(bpy.types.Operator):
    """Open the UDP port and drive the mesh live"""

    bl_idname = "avatarbridge.start"
    bl_label = "Start"

    def execute(self, context):
        try:
            runtime().start(context.scene)
        except (OSError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class AVATARBRIDGE_OT_stop(bpy.types.Operator):
    """Close the UDP port (a take being recorded is baked first)"""

    bl_idname = "avatarbridge.stop"
    bl_label = "Stop"

    def execute(self, context):
        summary = runtime().stop(context.scene)
        if summary:
            self.report({"INFO"}, _summary(summary))
        return {"FINISHED"}


class AVATARBRIDGE_OT_record(bpy.types.Operator):
    """Start recording the stream from the current frame, or stop and bake the take to keyframes"""

    bl_idname = "avatarbridge.record"
    bl_label = "Record"

    def execute(self, context):
        rt = runtime()
        if rt.take is None:
            if not rt.running:
                self.report({"ERROR"}, "press Start first")
                return {"CANCELLED"}
            rt.start_recording(context.scene)
            return {"FINISHED"}
        self.report({"INFO"}, _summary(rt.stop_recording(context.scene)))
        return {"FINISHED"}


class AVATARBRIDGE_OT_poll(bpy.types.Operator):
    """Read what has arrived now (the timer does this in the UI; scripts in background mode call it)"""

    bl_idname = "avatarbridge.poll"
    bl_label = "Poll once"

    def execute(self, context):
        runtime().poll(context.scene)
        return {"FINISHED"}


class AVATARBRIDGE_OT_mapping_add(bpy.types.Operator):
    """Add a row to the mapping table"""

    bl_idname = "avatarbridge.mapping_add"
    bl_label = "Add mapping"
    bl_options = {"REGISTER", "UNDO"}

    source: StringProperty(name="Incoming")
    target: StringProperty(name="Shape key")

    def execute(self, context):
        s = context.scene.avatar_bridge
        row = s.mapping.add()
        row.source, row.target = self.source, self.target
        s.mapping_index = len(s.mapping) - 1
        return {"FINISHED"}


class AVATARBRIDGE_OT_mapping_remove(bpy.types.Operator):
    """Remove the selected row of the mapping table"""

    bl_idname = "avatarbridge.mapping_remove"
    bl_label = "Remove mapping"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.avatar_bridge
        if 0 <= s.mapping_index < len(s.mapping):
            s.mapping.remove(s.mapping_index)
            s.mapping_index = max(0, s.mapping_index - 1)
        return {"FINISHED"}


class AVATARBRIDGE_OT_import_curves(bpy.types.Operator, ImportHelper):
    """Key the face mesh's shape keys from an avatar-bridge export (.blendshapes.csv or AU .csv)"""

    bl_idname = "avatarbridge.import_curves"
    bl_label = "Import curves"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})
    face_id: IntProperty(name="Face", default=-1, min=-1, description="-1: the first face in the file")
    au_mapping: StringProperty(
        name="AU mapping", subtype="FILE_PATH", default="",
        description="TOML with a [facs] table (a rig profile); empty: the add-on's ARKit table",
    )  # fmt: skip
    at_current_frame: BoolProperty(name="Start at current frame", default=False)
    subframes: BoolProperty(name="Sub-frame keys", default=False)

    def execute(self, context):
        from .importer import import_curves

        scene = context.scene
        try:
            result = import_curves(
                scene, self.filepath, face_id=None if self.face_id < 0 else self.face_id,
                au_mapping=bpy.path.abspath(self.au_mapping) if self.au_mapping else None,
                start_frame=scene.frame_current if self.at_current_frame else None, subframes=self.subframes,
            )  # fmt: skip
        except (CurveFileError, ValueError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, _summary(result))
        if result["unmatched"]:
            self.report({"WARNING"}, "no shape key for: " + ", ".join(result["unmatched"]))
        return {"FINISHED"}


CLASSES = (
    AVATARBRIDGE_OT_start, AVATARBRIDGE_OT_stop, AVATARBRIDGE_OT_record, AVATARBRIDGE_OT_poll,
    AVATARBRIDGE_OT_mapping_add, AVATARBRIDGE_OT_mapping_remove, AVATARBRIDGE_OT_import_curves,
)  # fmt: skip
