"""Render blendshape avatars offscreen on the CPU (for the virtual camera and preview sinks)."""

from avatar_bridge.render.assets import load_avatar, load_ict, load_obj_avatar
from avatar_bridge.render.avatar import Avatar, load_avatar_npz, save_avatar
from avatar_bridge.render.renderer import Renderer, RenderOptions, parse_background

__all__ = [
    "Avatar",
    "RenderOptions",
    "Renderer",
    "load_avatar",
    "load_avatar_npz",
    "load_ict",
    "load_obj_avatar",
    "parse_background",
    "save_avatar",
]
