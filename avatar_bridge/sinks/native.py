"""avatar-bridge's own OSC stream (``osc://``, default 127.0.0.1:9100), read by the Blender add-on.

Per frame and face, one or more UDP datagrams, each an OSC bundle (time tag "immediately") of at
most ``max_datagram`` bytes (1,400 by default, under a typical MTU). EVERY bundle starts with::

    /ab/frame  int32 frame index, float64 timestamp (s), int32 face_id, int32 part, int32 parts

then any of::

    /ab/face   int32 found (0/1)
    /ab/blend  string target name, float32 value          (one per rig target)
    /ab/au     string "AU12", float32 intensity 0-5        (one per AU)
    /ab/head   float32 pitch, yaw, roll (rad), float32 tx, ty, tz (cm)
    /ab/event  string kind (micro|macro), string label, float64 onset, apex, offset,
               float32 confidence, string aus ("AU12:1.20,AU06:0.40")
    /ab/label  float64 onset, string scores ("negative:0.09,positive:0.91,surprise:0.00")
               (right after its /ab/event, same onset, only when a learned classifier such as
               TP-HA3DNet chose the label: each class's probability; the AU rules send none)

and the last bundle of the frame ends with ``/ab/end int32 frame index``. A frame with no face
tracked yet is sent as face_id -1 with ``/ab/face 0``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from avatar_bridge.channels import AU_INTENSITY
from avatar_bridge.records import ActionUnits, ExpressionEvent, FrameOutput, RigWeights
from avatar_bridge.retarget.pose import euler
from avatar_bridge.sinks.base import SinkURL, UdpSink
from avatar_bridge.sinks.osc import (
    BUNDLE_HEADER,
    BUNDLE_OVERHEAD,
    element,
    encode_message,
    message_prefix,
    named_float_elements,
    osc_string,
)

DEFAULT_PORT = 9100
MAX_DATAGRAM = 1400

_FRAME_PREFIX = message_prefix("/ab/frame", "idiii")
_FRAME_ARGS = struct.Struct(">idiii")
_FRAME_SIZE = len(_FRAME_PREFIX) + _FRAME_ARGS.size
_FRAME_HEAD = struct.pack(">i", _FRAME_SIZE) + _FRAME_PREFIX  # the element before the arguments
_BLEND_PREFIX = message_prefix("/ab/blend", "sf")
_AU_PREFIX = message_prefix("/ab/au", "sf")
_HEAD_PREFIX = message_prefix("/ab/head", "ffffff")
_HEAD_ARGS = struct.Struct(">6f")
_F32 = struct.Struct(">f")
_AU_NAMES = tuple(osc_string(a) for a in AU_INTENSITY)
_FACE = {found: element(encode_message("/ab/face", "i", (int(found),))) for found in (False, True)}


def frame_message(index: int, timestamp: float, face_id: int, part: int, parts: int) -> bytes:
    return _FRAME_PREFIX + _FRAME_ARGS.pack(index, timestamp, face_id, part, parts)


def end_message(index: int) -> bytes:
    return encode_message("/ab/end", "i", (index,))


def blend_messages(weights: RigWeights) -> list[bytes]:
    return [e[4:] for e in named_float_elements(_BLEND_PREFIX, weights.names, weights.values)]


def au_messages(aus: ActionUnits) -> list[bytes]:
    f32 = _F32.pack
    return [_AU_PREFIX + name + f32(float(v)) for name, v in zip(_AU_NAMES, aus.intensity, strict=True)]


def head_message(weights: RigWeights) -> bytes:
    pitch, yaw, roll = euler(weights.pose)
    tx, ty, tz = weights.pose.matrix[:3, 3].tolist()
    return _HEAD_PREFIX + _HEAD_ARGS.pack(pitch, yaw, roll, tx, ty, tz)


def format_event_aus(aus: dict[str, float]) -> str:
    """``{"AU12": 1.2, "AU06": 0.4}`` -> ``"AU12:1.20,AU06:0.40"``."""
    return ",".join(f"{k}:{v:.2f}" for k, v in aus.items())


def event_message(event: ExpressionEvent) -> bytes:
    kind = event.kind.value if hasattr(event.kind, "value") else str(event.kind)
    return encode_message(
        "/ab/event",
        "ssdddfs",
        (
            kind,
            event.label,
            event.onset,
            event.apex,
            event.offset,
            event.confidence,
            format_event_aus(event.aus),
        ),
    )


def label_message(event: ExpressionEvent) -> bytes:
    """The class probabilities of ``event`` (``/ab/label``); call only when it has ``label_scores``."""
    return encode_message("/ab/label", "ds", (event.onset, format_event_aus(event.label_scores)))


@dataclass(frozen=True, slots=True)
class _FaceGroup:
    face_id: int
    elements: list[bytes]  # bundle elements (int32 size + message)


def _groups(out: FrameOutput) -> list[_FaceGroup]:
    """Per face: its elements in order (face, blends, AUs, head, events)."""
    aus_by_face = {a.face_id: a for a in out.aus}
    groups: list[_FaceGroup] = []
    for w in out.weights:
        els = [_FACE[bool(w.face_found)], *named_float_elements(_BLEND_PREFIX, w.names, w.values)]
        if w.face_id in aus_by_face:
            els += named_float_elements(_AU_PREFIX, AU_INTENSITY, aus_by_face.pop(w.face_id).intensity)
        els.append(element(head_message(w)))
        groups.append(_FaceGroup(w.face_id, els))
    for a in aus_by_face.values():  # AUs of a face the sink has no weights for
        groups.append(
            _FaceGroup(a.face_id, [_FACE[True], *named_float_elements(_AU_PREFIX, AU_INTENSITY, a.intensity)])
        )
    if not groups:
        groups.append(_FaceGroup(-1, [_FACE[False]]))
    by_id = {g.face_id: g for g in groups}
    for e in out.events:
        els = by_id.get(e.face_id, groups[0]).elements
        els.append(element(event_message(e)))
        if e.label_scores:
            els.append(element(label_message(e)))
    return groups


def encode_frame(out: FrameOutput, max_datagram: int = MAX_DATAGRAM) -> list[bytes]:
    """Every datagram of one frame, in send order (see the module docstring for the layout)."""
    end = element(end_message(out.index))
    budget = max_datagram - BUNDLE_OVERHEAD - len(_FRAME_HEAD) - _FRAME_ARGS.size
    end_cost = len(end)
    if budget < end_cost:
        raise ValueError(f"max_datagram {max_datagram} is too small for the native stream")
    datagrams: list[bytes] = []
    groups = _groups(out)
    pack_args = _FRAME_ARGS.pack
    for gi, group in enumerate(groups):
        parts: list[list[bytes]] = [[]]
        used = 0
        for e in group.elements:
            cost = len(e)
            if cost > budget:
                raise ValueError(
                    f"an OSC message of {cost - 4} bytes cannot fit a {max_datagram}-byte datagram"
                )
            if used + cost > budget and parts[-1]:
                parts.append([])
                used = 0
            parts[-1].append(e)
            used += cost
        if gi == len(groups) - 1:
            if used + end_cost > budget:
                parts.append([])
            parts[-1].append(end)
        n = len(parts)
        for pi, body in enumerate(parts):
            head = _FRAME_HEAD + pack_args(out.index, out.timestamp, group.face_id, pi, n)
            datagrams.append(b"".join([BUNDLE_HEADER, head, *body]))
    return datagrams


class NativeOscSink(UdpSink):
    """``osc://HOST:PORT?profile=NAME&max_datagram=1400`` (default 127.0.0.1:9100)."""

    scheme = "osc"
    default_port = DEFAULT_PORT

    def __init__(self, url: SinkURL) -> None:
        super().__init__(url)
        self.max_datagram = url.int_param("max_datagram", MAX_DATAGRAM, lo=128, hi=65507)

    def encode(self, out: FrameOutput) -> list[bytes]:
        return encode_frame(out, self.max_datagram)
