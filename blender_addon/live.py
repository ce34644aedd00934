"""The live session inside Blender: poll the socket, apply values, keep the take, bake it.

Blender owns the process, so one :class:`LiveRuntime` per add-on registration holds the socket and
the take (created in ``register``, shut down in ``unregister`` and before a file loads). All of it
runs on the main thread: from a timer in the UI, or from :func:`poll_once` in background mode
(where Blender never fires timers) and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy

from . import apply
from .keyframes import write_keys
from .names import NameMatcher
from .protocol import StreamFrame
from .session import SessionOptions, StreamSession
from .timemap import bake_times, scene_rate

#: Seconds between timer polls in the UI (60 Hz, faster than any camera the sender reads).
TIMER_INTERVAL = 1.0 / 60.0
#: Seconds between panel redraws while receiving.
REDRAW_INTERVAL = 0.25


@dataclass
class Take:
    """Frames received while recording, in the sender's time; baked to keys when recording stops."""

    frame_start: float
    rate: float
    subframes: bool = False
    times: list[float] = field(default_factory=list)
    shapes: list[dict[str, float]] = field(default_factory=list)
    heads: list[tuple[float, float, float] | None] = field(default_factory=list)


def settings_of(scene: bpy.types.Scene):
    return scene.avatar_bridge


class LiveRuntime:
    """Socket, name matching, live application and the take, for one scene at a time."""

    def __init__(self) -> None:
        self.session: StreamSession | None = None
        self.scene_name = ""
        self.take: Take | None = None
        self.error = ""
        self.port_in_use = False
        self.unmatched: dict[str, str] = {}
        self.applied_frames = 0
        self._matcher: NameMatcher | None = None
        self._matcher_key: tuple = ()
        self._since_redraw = 0.0

    # -- session ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def start(self, scene: bpy.types.Scene) -> None:
        """Open the socket with the scene's settings; errors go to ``self.error`` and re-raise."""
        self.stop(scene)
        s = settings_of(scene)
        opts = SessionOptions(protocol=s.protocol, host=s.host, port=s.port, vmc_head_bone=s.vmc_head_bone)
        session = StreamSession(opts)
        self.error, self.port_in_use, self.unmatched, self.applied_frames = "", False, {}, 0
        try:
            session.start()
        except OSError as e:
            self.error, self.port_in_use = str(e), bool(getattr(e, "port_in_use", False))
            raise
        self.session, self.scene_name = session, scene.name
        if not bpy.app.background and not bpy.app.timers.is_registered(_tick):
            bpy.app.timers.register(_tick, first_interval=TIMER_INTERVAL)

    def stop(self, scene: bpy.types.Scene | None = None) -> dict:
        """Bake a running take (when a scene is given), then close the socket."""
        summary = self.stop_recording(scene) if scene is not None and self.take is not None else {}
        if self.session is not None:
            self.session.stop()
        self.session = None
        return summary

    def shutdown(self) -> None:
        """Close everything without touching Blender data (unregister, file load)."""
        self.take = None
        if self.session is not None:
            self.session.stop()
        self.session = None
        self._matcher = None

    # -- receiving -------------------------------------------------------------------------
    def matcher(self, scene: bpy.types.Scene) -> NameMatcher:
        s = settings_of(scene)
        names = tuple(apply.target_names(s.target))
        table = tuple((m.source, m.target) for m in s.mapping)
        key = (s.target.name if s.target else "", names, table)
        if self._matcher is None or key != self._matcher_key:
            self._matcher, self._matcher_key = NameMatcher(names, table), key
            self.unmatched = {}
        return self._matcher

    def resolve(self, scene: bpy.types.Scene, frame: StreamFrame) -> dict[str, float]:
        """Shape-key values of a frame; names that match nothing are remembered, never guessed."""
        m = self.matcher(scene)
        out: dict[str, float] = {}
        for name, value in frame.blend.items():
            keys = m.resolve(name)
            if not keys and name not in self.unmatched:
                self.unmatched[name] = m.why_unmatched(name)
            for k in keys:
                out[k] = value
        return out

    def poll(self, scene: bpy.types.Scene) -> int:
        """Decode what arrived, apply the newest frame, add every frame to the take; return the
        number of frames of the selected face received."""
        if self.session is None:
            return 0
        s = settings_of(scene)
        frames = [f for f in self.session.poll() if f.face_id == s.face_id and f.found]
        latest: tuple[dict[str, float], StreamFrame] | None = None
        for f in frames:
            values = self.resolve(scene, f)
            head = f.head.euler if f.head is not None else None
            if self.take is not None:
                self.take.times.append(f.timestamp)
                self.take.shapes.append(values)
                self.take.heads.append(head)
            latest = (values, f)
        if latest is not None:
            values, f = latest
            if s.target is not None:
                apply.apply_weights(s.target, values)
            if f.head is not None:
                for bone, euler in self._bones(s, f.head.euler):
                    apply.set_bone_rotation(bone, euler)
            self.applied_frames += 1
        return len(frames)

    @staticmethod
    def _bones(s, euler: tuple[float, float, float]) -> list[tuple]:
        """(pose bone, Euler) for the head and, when set, the neck."""
        arm = s.armature
        if arm is None or arm.type != "ARMATURE":
            return []
        head_pb, neck_pb = arm.pose.bones.get(s.head_bone), arm.pose.bones.get(s.neck_bone)
        share = s.neck_share if neck_pb is not None else 0.0
        head, neck = apply.split_head(euler, share)
        out = [(head_pb, head)] if head_pb is not None else []
        if neck_pb is not None and neck_pb != head_pb:
            out.append((neck_pb, neck))
        return out

    # -- recording -------------------------------------------------------------------------
    def start_recording(self, scene: bpy.types.Scene) -> None:
        """Begin a take at the current frame, at the scene's frame rate."""
        s = settings_of(scene)
        rate = scene_rate(scene.render.fps, scene.render.fps_base)
        self.take = Take(frame_start=float(scene.frame_current), rate=rate, subframes=s.subframes)

    def stop_recording(self, scene: bpy.types.Scene) -> dict:
        """Bake the take to keyframes and end it; return what was keyed."""
        take, self.take = self.take, None
        if take is None or not take.times:
            return {"frames": 0, "shapes": 0, "bones": 0}
        return bake_take(scene, take)


def bake_take(scene: bpy.types.Scene, take: Take) -> dict:
    """Key the take: shape keys on the Key datablock, head/neck rotation on the armature object."""
    s = settings_of(scene)
    frames, idx = bake_times(take.times, take.rate, take.frame_start, subframes=take.subframes)
    key = apply.shape_keys(s.target)
    shapes = 0
    if key is not None:
        names = sorted({n for i in idx for n in take.shapes[i]})
        for name in names:
            pairs = [
                (f, take.shapes[i][name]) for f, i in zip(frames, idx, strict=True) if name in take.shapes[i]
            ]
            path = f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'
            write_keys(key, path, [p[0] for p in pairs], [p[1] for p in pairs], group="Shape keys")
            shapes += 1
    bones = 0
    pairs = [(f, take.heads[i]) for f, i in zip(frames, idx, strict=True) if take.heads[i] is not None]
    if pairs and s.armature is not None:
        per_bone: dict[str, tuple] = {}
        for f, euler in pairs:
            for pb, e in LiveRuntime._bones(s, euler):
                attr, values = apply.rotation_values(pb, e)
                per_bone.setdefault(pb.name, (pb, attr, []))[2].append((f, values))
        for pb, attr, rows in per_bone.values():
            for axis in range(len(rows[0][1])):
                write_keys(
                    s.armature, apply.bone_path(pb, attr), [r[0] for r in rows], [r[1][axis] for r in rows],
                    index=axis, group=pb.name,
                )  # fmt: skip
            bones += 1
    if frames and frames[-1] > scene.frame_end:
        scene.frame_end = int(frames[-1])
    return {"frames": len(frames), "shapes": shapes, "bones": bones, "first": frames[0], "last": frames[-1]}


_RUNTIME: LiveRuntime | None = None


def runtime() -> LiveRuntime:
    """The add-on's runtime (created on first use after register)."""
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = LiveRuntime()
    return _RUNTIME


def dispose() -> None:
    """Shut the runtime down and forget it (unregister)."""
    global _RUNTIME
    if _RUNTIME is not None:
        _RUNTIME.shutdown()
    _RUNTIME = None
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)


def poll_once(scene: bpy.types.Scene | None = None) -> int:
    """Poll the socket once on the main thread: what the UI timer does, for background mode and tests."""
    rt = runtime()
    scene = scene or bpy.data.scenes.get(rt.scene_name) or bpy.context.scene
    return rt.poll(scene)


def _tick() -> float | None:
    """UI timer: poll, redraw the panel now and then; stop when the session ends."""
    rt = _RUNTIME
    if rt is None or not rt.running:
        return None
    scene = bpy.data.scenes.get(rt.scene_name)
    if scene is None:
        rt.shutdown()
        return None
    try:
        rt.poll(scene)
    except Exception as e:  # Blender data changed under us (object deleted...): report, keep running
        rt.error = f"{type(e).__name__}: {e}"
    rt._since_redraw += TIMER_INTERVAL
    if rt._since_redraw >= REDRAW_INTERVAL:
        rt._since_redraw = 0.0
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "VIEW_3D":
                    area.tag_redraw()
    return TIMER_INTERVAL


@bpy.app.handlers.persistent
def on_load_pre(*_args) -> None:
    """A file is about to load: close the socket and drop the take (their scene is going away)."""
    if _RUNTIME is not None:
        _RUNTIME.shutdown()
