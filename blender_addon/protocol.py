"""Decoding of the two streams the add-on understands into :class:`StreamFrame` records.

- avatar-bridge native (``osc://``): every datagram is a bundle that starts with
  ``/ab/frame (i index, d timestamp, i face_id, i part, i parts)``; the last datagram of a frame
  ends with ``/ab/end (i index)``; a frame without a face is face_id -1 with ``/ab/face 0``.
  :class:`NativeDecoder` checks each datagram strictly and
  :class:`FrameAssembler` joins the parts of a frame.
- VMC (OSC over UDP): ``/VMC/Ext/Blend/Val (s name, f value)`` then ``/VMC/Ext/Blend/Apply``;
  ``/VMC/Ext/Bone/Pos (s bone, px py pz qx qy qz qw)``; ``/VMC/Ext/T (f time)``. Other addresses
  are ignored, as the VMC specification asks.

Every rejected datagram raises :class:`PacketError` with a short ``reason`` the session counts.
Pure Python, no bpy.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from .oscwire import MalformedPacket, Message, parse_packet

#: Reasons a datagram is dropped, as counted in the status panel.
OVERSIZED, MALFORMED, UNKNOWN = "oversized", "malformed", "unknown"


class PacketError(ValueError):
    """A datagram was dropped; ``reason`` is one of OVERSIZED, MALFORMED, UNKNOWN."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HeadSample:
    """Head rotation as (pitch, yaw, roll) radians, XYZ order (x applied first), in the frame of an
    upright head bone (x to the character's left, y up the bone, z forward); translation in cm."""

    euler: tuple[float, float, float]
    translation: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A spotted expression event forwarded by the sender (``/ab/event``); ``scores``: each class's
    probability when a learned classifier chose the label (``/ab/label``, e.g.
    "negative:0.09,positive:0.91,surprise:0.00"), else empty."""

    kind: str
    label: str
    onset: float
    apex: float
    offset: float
    confidence: float
    aus: str
    scores: str = ""


@dataclass(slots=True)
class StreamFrame:
    """Everything received for one face in one frame, in the sender's time (seconds)."""

    index: int
    timestamp: float
    face_id: int = 0
    found: bool = True
    blend: dict[str, float] = field(default_factory=dict)
    aus: dict[str, float] = field(default_factory=dict)
    head: HeadSample | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class FramePart:
    """One native datagram: the frame header plus whatever channels it carries."""

    frame: StreamFrame
    part: int
    parts: int
    end: bool
    unknown_messages: int = 0
    bad_values: int = 0


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: object) -> bool:
    return _is_num(v) and math.isfinite(v)


def _check(ok: bool, detail: str) -> None:
    if not ok:
        raise PacketError(MALFORMED, detail)


def _parse(data: bytes, max_bytes: int) -> list[Message]:
    if len(data) > max_bytes:
        raise PacketError(OVERSIZED, f"{len(data)} bytes > {max_bytes}")
    try:
        return parse_packet(data)
    except MalformedPacket as e:
        raise PacketError(MALFORMED, str(e)) from e


@dataclass
class NativeDecoder:
    """Strict decoder of avatar-bridge native datagrams.

    ``max_bytes`` (default 1400, the sender's limit) drops anything larger as oversized;
    ``max_parts`` (default 64) bounds how many datagrams one frame may claim.
    """

    max_bytes: int = 1400
    max_parts: int = 64

    def decode(self, data: bytes) -> FramePart:
        """Decode one datagram or raise :class:`PacketError`."""
        messages = _parse(data, self.max_bytes)
        if not data.startswith(b"#bundle\x00") or not messages or messages[0].address != "/ab/frame":
            raise PacketError(UNKNOWN, "not an avatar-bridge frame bundle")
        args = messages[0].args
        _check(len(args) == 5, "/ab/frame needs 5 arguments")
        index, timestamp, face_id, part, parts = args
        _check(_is_int(index) and _is_int(face_id) and _is_int(part) and _is_int(parts), "/ab/frame ints")
        _check(_finite(timestamp), "/ab/frame timestamp must be a finite number")
        _check(1 <= parts <= self.max_parts and 0 <= part < parts, "/ab/frame part out of range")
        frame = StreamFrame(index=index, timestamp=float(timestamp), face_id=face_id)
        out = FramePart(frame=frame, part=part, parts=parts, end=False)
        for pos, msg in enumerate(messages[1:], start=1):
            self._apply(msg, out)
            if out.end:
                _check(pos == len(messages) - 1, "/ab/end must be the last message")
        return out

    @staticmethod
    def _apply(msg: Message, out: FramePart) -> None:
        a, frame = msg.args, out.frame
        if msg.address == "/ab/blend" or msg.address == "/ab/au":
            _check(len(a) == 2 and isinstance(a[0], str) and a[0] and _is_num(a[1]), f"{msg.address} (s, f)")
            if not math.isfinite(a[1]):
                out.bad_values += 1
                return
            (frame.blend if msg.address == "/ab/blend" else frame.aus)[a[0]] = float(a[1])
        elif msg.address == "/ab/face":
            _check(len(a) == 1 and _is_int(a[0]) and a[0] in (0, 1), "/ab/face (i 0|1)")
            frame.found = bool(a[0])
        elif msg.address == "/ab/head":
            _check(len(a) == 6 and all(_is_num(v) for v in a), "/ab/head needs 6 floats")
            if not all(math.isfinite(v) for v in a):
                out.bad_values += 1
                return
            frame.head = HeadSample((a[0], a[1], a[2]), (a[3], a[4], a[5]))
        elif msg.address == "/ab/event":
            kinds = (str, str, float, float, float, float, str)
            _check(
                len(a) == 7
                and all(
                    isinstance(v, k) or (k is float and _is_num(v)) for v, k in zip(a, kinds, strict=True)
                ),
                "/ab/event (s s d d d f s)",
            )
            frame.events.append(Event(a[0], a[1], float(a[2]), float(a[3]), float(a[4]), float(a[5]), a[6]))
        elif msg.address == "/ab/label":
            _check(len(a) == 2 and _is_num(a[0]) and isinstance(a[1], str), "/ab/label (d s)")
            # It follows its /ab/event in the same bundle: the event with the same onset.
            k = next((k for k, e in enumerate(frame.events) if e.onset == float(a[0])), None)
            if k is None:
                out.bad_values += 1
                return
            frame.events[k] = replace(frame.events[k], scores=a[1])
        elif msg.address == "/ab/end":
            _check(
                len(a) == 1 and a[0] == frame.index and _is_int(a[0]), "/ab/end must repeat the frame index"
            )
            _check(out.part == out.parts - 1, "/ab/end in a part that is not the last")
            out.end = True
        else:
            out.unknown_messages += 1


@dataclass
class FrameAssembler:
    """Joins the datagrams of each (face, frame) and hands out frames once every part arrived.

    Parts are numbered per face; ``/ab/end`` closes the whole frame, so only the last face's last
    part carries it and a face's frame is complete when all of its parts are in.

    At most ``max_pending`` (default 16) unfinished frames are kept; older ones are dropped and
    counted in ``incomplete``, so a lost datagram never holds memory or blocks later frames.
    """

    max_pending: int = 16
    incomplete: int = 0
    duplicates: int = 0
    _pending: OrderedDict = field(default_factory=OrderedDict)

    def add(self, part: FramePart) -> StreamFrame | None:
        """Store one part; return the frame when it is complete."""
        key = (part.frame.face_id, part.frame.index)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = {"frame": part.frame, "parts": part.parts, "seen": set()}
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                self.incomplete += 1
        if part.part in entry["seen"] or part.parts != entry["parts"]:
            self.duplicates += 1
            return None
        entry["seen"].add(part.part)
        merged: StreamFrame = entry["frame"]
        if part.frame is not merged:
            merged.blend.update(part.frame.blend)
            merged.aus.update(part.frame.aus)
            merged.events.extend(part.frame.events)
            merged.head = part.frame.head or merged.head
            merged.found = merged.found and part.frame.found
        if len(entry["seen"]) == entry["parts"]:
            del self._pending[key]
            return merged
        return None

    def reset(self) -> None:
        self._pending.clear()


def quaternion_to_euler(x: float, y: float, z: float, w: float) -> tuple[float, float, float]:
    """(pitch, yaw, roll) radians of a unit quaternion, for R = Rz(roll) Ry(yaw) Rx(pitch)."""
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    pitch = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    yaw = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    roll = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return pitch, yaw, roll


def unity_to_bone_quaternion(x: float, y: float, z: float, w: float) -> tuple[float, float, float, float]:
    """A Unity (left-handed, y up, character facing +z) local rotation as a rotation of an upright
    Blender bone (x to the character's left, y up the bone, z forward): mirror x, keep the angle."""
    return x, -y, -z, w


@dataclass
class VMCDecoder:
    """Stateful VMC decoder: ``/VMC/Ext/Blend/Val`` values are collected until ``Blend/Apply``.

    ``head_bone`` (default "Head", a Unity HumanBodyBones name) is the bone whose rotation becomes
    the frame's head sample. ``max_bytes`` (default 65,507, the UDP limit) drops larger datagrams.
    Frames carry the sender's ``/VMC/Ext/T`` time when it sends one, else the receive time.
    """

    head_bone: str = "Head"
    max_bytes: int = 65507
    ignored_messages: int = 0
    bad_values: int = 0
    _blend: dict = field(default_factory=dict)
    _head: HeadSample | None = None
    _time: float | None = None
    _count: int = 0

    def decode(self, data: bytes, received_at: float) -> list[StreamFrame]:
        """Decode one datagram; return the frames it completed (an Apply completes one)."""
        messages = _parse(data, self.max_bytes)
        if not any(m.address.startswith("/VMC/") for m in messages):
            raise PacketError(UNKNOWN, "no VMC message")
        frames: list[StreamFrame] = []
        for msg in messages:
            a = msg.args
            if msg.address == "/VMC/Ext/Blend/Val":
                _check(len(a) == 2 and isinstance(a[0], str) and a[0] and _is_num(a[1]), "Blend/Val (s, f)")
                if math.isfinite(a[1]):
                    self._blend[a[0]] = float(a[1])
                else:
                    self.bad_values += 1
            elif msg.address == "/VMC/Ext/Blend/Apply":
                t = self._time if self._time is not None else received_at
                frames.append(StreamFrame(index=self._count, timestamp=t, blend=self._blend, head=self._head))
                self._count += 1
                self._blend, self._head = {}, None
            elif msg.address == "/VMC/Ext/Bone/Pos":
                _check(len(a) == 8 and isinstance(a[0], str) and all(_is_num(v) for v in a[1:]), "Bone/Pos")
                if a[0] == self.head_bone:
                    if all(math.isfinite(v) for v in a[1:]):
                        q = unity_to_bone_quaternion(*a[4:8])
                        self._head = HeadSample(quaternion_to_euler(*q))
                    else:
                        self.bad_values += 1
            elif msg.address == "/VMC/Ext/T":
                _check(len(a) == 1 and _finite(a[0]), "/VMC/Ext/T (f)")
                self._time = float(a[0])
            else:
                self.ignored_messages += 1
        return frames

    def reset(self) -> None:
        self._blend, self._head, self._time, self._count = {}, None, None, 0
