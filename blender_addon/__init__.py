"""avatar-bridge receiver for Blender: drive a mesh's shape keys (and a head bone) live from
avatar-bridge's OSC stream or VMC, record the take as keyframes, and import exported curves.

bpy is imported inside register() only, so the pure modules (oscwire, protocol, names, curves,
timemap, receiver, session) import and test without Blender.
"""

from __future__ import annotations


def register() -> None:
    import bpy

    from . import live, operators, panel, props

    props.register()
    for cls in (*operators.CLASSES, *panel.CLASSES):
        bpy.utils.register_class(cls)
    if live.on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(live.on_load_pre)


def unregister() -> None:
    import bpy

    from . import live, operators, panel, props

    live.dispose()
    if live.on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(live.on_load_pre)
    for cls in reversed((*operators.CLASSES, *panel.CLASSES)):
        bpy.utils.unregister_class(cls)
    props.unregister()


def poll_once(scene=None) -> int:
    """Poll the socket once on the main thread (Blender never fires timers in background mode)."""
    from . import live

    return live.poll_once(scene)


def runtime():
    """The live runtime: socket, stats (``runtime().session.stats``), take, unmatched names."""
    from . import live

    return live.runtime()
