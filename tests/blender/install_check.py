"""Install the built extension zip in a real Blender, enable it, check what it registered."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common import ADDON_ID, install_extension, load_args, write_json

args = load_args()
import addon_utils  # noqa: E402
import bpy  # noqa: E402

mod = install_extension(args["zip"])
site = [str(p) for p in Path(os.environ["BLENDER_USER_RESOURCES"]).rglob("pythonosc/__init__.py")]
ops = [
    op
    for op in ("start", "stop", "record", "poll", "import_curves", "mapping_add")
    if hasattr(bpy.ops.avatarbridge, op)
]
scene = bpy.context.scene
settings = scene.avatar_bridge
result = {
    "module": mod.__name__,
    "enabled": f"bl_ext.user_default.{ADDON_ID}" in bpy.context.preferences.addons,
    "wheel_site_packages": site,
    "operators": ops,
    "panels": [c for c in ("AVATARBRIDGE_PT_main", "AVATARBRIDGE_PT_status") if hasattr(bpy.types, c)],
    "defaults": {"host": settings.host, "port": settings.port, "protocol": settings.protocol},
    "load_pre_handler": any(
        getattr(h, "__module__", "").endswith(".live") for h in bpy.app.handlers.load_pre
    ),
}
addon_utils.disable(f"bl_ext.user_default.{ADDON_ID}")
result["after_disable"] = {
    "scene_property": hasattr(bpy.types.Scene, "avatar_bridge"),
    "load_pre_handler": any(
        getattr(h, "__module__", "").endswith(".live") for h in bpy.app.handlers.load_pre
    ),
}
write_json(args["result"], result)
sys.exit(0)
