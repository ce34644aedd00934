"""The sidebar panel (3D viewport, N panel, "Avatar Bridge" tab)."""

from __future__ import annotations

import bpy

from .live import runtime


class _Base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Avatar Bridge"


class AVATARBRIDGE_UL_mapping(bpy.types.UIList):
    def draw_item(self, _context, layout, _data, item, _icon, _active, _prop):
        row = layout.row(align=True)
        row.prop(item, "source", text="", emboss=False)
        row.label(icon="FORWARD")
        row.prop(item, "target", text="", emboss=False)


class AVATARBRIDGE_PT_main(_Base, bpy.types.Panel):
    bl_label = "Avatar Bridge"

    def draw(self, context):
        s, rt, layout = context.scene.avatar_bridge, runtime(), self.layout
        col = layout.column()
        col.prop(s, "target")
        col.prop(s, "armature")
        if s.armature is not None:
            col.prop_search(s, "head_bone", s.armature.data, "bones")
            col.prop_search(s, "neck_bone", s.armature.data, "bones")
            if s.neck_bone:
                col.prop(s, "neck_share")
        col.separator()
        col.prop(s, "protocol")
        row = col.row(align=True)
        row.enabled = not rt.running
        row.prop(s, "host", text="")
        row.prop(s, "port", text="")
        col.prop(s, "face_id")
        row = col.row(align=True)
        if rt.running:
            row.operator("avatarbridge.stop", icon="PAUSE")
        else:
            row.operator("avatarbridge.start", icon="PLAY")
        rec = row.row(align=True)
        rec.enabled = rt.running
        recording = rt.take is not None
        rec.operator("avatarbridge.record", text="Stop recording" if recording else "Record", icon="REC",
                     depress=recording)  # fmt: skip
        col.prop(s, "subframes")


class AVATARBRIDGE_PT_status(_Base, bpy.types.Panel):
    bl_label = "Status"
    bl_parent_id = "AVATARBRIDGE_PT_main"

    def draw(self, context):
        rt, col = runtime(), self.layout.column(align=True)
        if rt.port_in_use:
            col.label(text="Port in use by another program", icon="ERROR")
        if rt.error:
            col.label(text=rt.error, icon="ERROR")
        if rt.session is None:
            col.label(text="Stopped")
            return
        st = rt.session.stats
        col.label(text=f"{st.packets_per_second:.0f} packets/s, {st.frames} frames")
        col.label(
            text=f"Last frame: {st.last_frame}" + (f"  ({len(rt.take.times)} recorded)" if rt.take else "")
        )
        if st.dropped_total:
            parts = ", ".join(f"{n} {r}" for r, n in sorted(st.dropped.items()))
            full = f", {st.queue_full} queue full" if st.queue_full else ""
            col.label(text=f"Dropped: {parts}{full}", icon="INFO")
        if rt.unmatched:
            col.label(text=f"Unmatched ({len(rt.unmatched)}):", icon="QUESTION")
            for name, why in sorted(rt.unmatched.items())[:12]:
                row = col.row(align=True)
                row.label(text=f"{name}: {why}")
                op = row.operator("avatarbridge.mapping_add", text="", icon="ADD")
                op.source = name


class AVATARBRIDGE_PT_mapping(_Base, bpy.types.Panel):
    bl_label = "Name mapping"
    bl_parent_id = "AVATARBRIDGE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.avatar_bridge
        row = self.layout.row()
        row.template_list("AVATARBRIDGE_UL_mapping", "", s, "mapping", s, "mapping_index", rows=3)
        col = row.column(align=True)
        col.operator("avatarbridge.mapping_add", text="", icon="ADD")
        col.operator("avatarbridge.mapping_remove", text="", icon="REMOVE")
        self.layout.label(text="Exact and spelling-insensitive names match first")


class AVATARBRIDGE_PT_import(_Base, bpy.types.Panel):
    bl_label = "Import curves"
    bl_parent_id = "AVATARBRIDGE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        self.layout.operator("avatarbridge.import_curves", icon="IMPORT")


CLASSES = (AVATARBRIDGE_UL_mapping, AVATARBRIDGE_PT_main, AVATARBRIDGE_PT_status, AVATARBRIDGE_PT_mapping,
           AVATARBRIDGE_PT_import)  # fmt: skip
