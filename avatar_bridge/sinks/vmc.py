"""VMC protocol, Performer side (``vmc://``, default 127.0.0.1:39539): VSeeFace, Warudo, VNyan...

Per frame (first face, or ``?face=N``): ``/VMC/Ext/Blend/Val (s name)(f value)`` for every
target followed by one ``/VMC/Ext/Blend/Apply``, ``/VMC/Ext/Bone/Pos`` for Neck and Head,
``/VMC/Ext/Root/Pos``, ``/VMC/Ext/OK`` and ``/VMC/Ext/T``, packed into bundles of at most
``max_datagram`` bytes; a bundle that carries Val messages always ends its group with Apply.

Head pose: MediaPipe's camera frame (x right, y up, z towards the camera, right-handed) seen
from an avatar that faces the camera in Unity's left-handed frame is a reflection of x, so the
quaternion (x, y, z, w) becomes (x, -y, -z, w). The rotation is shared between Neck
(``neck_share``, default 0.3) and Head (the rest), which compose to the full rotation. Bone
positions are the bones' nominal local offsets in metres (``?neck_y=``, ``?head_y=``); the root
stays put unless ``?move_root=1`` (then it follows the head translation, cm -> m).
"""

from __future__ import annotations

import struct

import numpy as np

from avatar_bridge.records import FrameOutput, RigWeights
from avatar_bridge.retarget.pose import quaternion
from avatar_bridge.retarget.retargeter import slerp
from avatar_bridge.sinks.base import SinkURL, UdpSink
from avatar_bridge.sinks.osc import encode_bundle, encode_message, message_prefix, osc_string, pack_bundles

DEFAULT_PORT = 39539
MAX_DATAGRAM = 1400
_VAL = message_prefix("/VMC/Ext/Blend/Val", "sf")
_F32 = struct.Struct(">f")
APPLY = encode_message("/VMC/Ext/Blend/Apply", "", ())
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def unity_quaternion(q_camera: np.ndarray) -> np.ndarray:
    """MediaPipe camera-frame quaternion (x, y, z, w) -> the avatar's Unity frame (see module doc)."""
    x, y, z, w = (float(v) for v in q_camera)
    return np.array([x, -y, -z, w])


def vmc_messages(
    weights: RigWeights,
    time: float,
    neck_share: float = 0.3,
    neck_y: float = 0.1,
    head_y: float = 0.08,
    move_root: bool = False,
) -> tuple[list[bytes], list[bytes]]:
    """(Val messages, the other messages) of one face; pure."""
    f32 = _F32.pack
    vals = [_VAL + osc_string(n) + f32(float(v)) for n, v in zip(weights.names, weights.values, strict=True)]
    q = unity_quaternion(quaternion(weights.pose))
    q_neck = slerp(_IDENTITY, q, neck_share)
    q_head = slerp(_IDENTITY, q, 1.0 - neck_share) if neck_share < 1 else _IDENTITY
    root = np.zeros(3)
    if move_root:
        t = weights.pose.translation.astype(np.float64) / 100.0
        root = np.array([-t[0], t[1], t[2]])
    tail = [
        encode_message("/VMC/Ext/Bone/Pos", "sfffffff", ("Neck", 0.0, neck_y, 0.0, *q_neck)),
        encode_message("/VMC/Ext/Bone/Pos", "sfffffff", ("Head", 0.0, head_y, 0.0, *q_head)),
        encode_message("/VMC/Ext/Root/Pos", "sfffffff", ("root", *root, 0.0, 0.0, 0.0, 1.0)),
        # loaded, calibration state (3 = calibrated), calibration mode (0 = normal), tracking (1 = ok)
        encode_message("/VMC/Ext/OK", "iiii", (1, 3, 0, 1 if weights.face_found else 0)),
        encode_message("/VMC/Ext/T", "f", (float(time),)),
    ]
    return vals, tail


def encode_vmc(
    weights: RigWeights, time: float, max_datagram: int = MAX_DATAGRAM, **options: float | bool
) -> list[bytes]:
    """Datagrams of one frame: Val groups each closed by Apply, then bones, root, OK and T."""
    vals, tail = vmc_messages(weights, time, **options)  # type: ignore[arg-type]
    groups = pack_bundles(vals, max_datagram, trailer=APPLY) if vals else [[APPLY]]
    tail_groups = pack_bundles(tail, max_datagram)
    # Put the tail into the last Val bundle when it fits, else send it on its own.
    last = groups[-1]
    if sum(4 + len(m) for m in last + tail) + 16 <= max_datagram:
        groups[-1] = last + tail
    else:
        groups += tail_groups
    return [encode_bundle(g) for g in groups]


class VmcSink(UdpSink):
    """``vmc://HOST:PORT?profile=vrm0&face=0&neck_share=0.3&move_root=0&max_datagram=1400``."""

    scheme = "vmc"
    default_port = DEFAULT_PORT
    extra_params = frozenset({"max_datagram", "face", "neck_share", "neck_y", "head_y", "move_root"})

    def __init__(self, url: SinkURL) -> None:
        super().__init__(url)
        self.max_datagram = url.int_param("max_datagram", MAX_DATAGRAM, lo=256, hi=65507)
        self.face = url.int_param("face", -1, lo=-1, hi=1 << 20)
        self.options = {
            "neck_share": url.float_param("neck_share", 0.3, 0.0, 1.0),
            "neck_y": url.float_param("neck_y", 0.1, -10.0, 10.0),
            "head_y": url.float_param("head_y", 0.08, -10.0, 10.0),
            "move_root": url.bool_param("move_root", False),
        }

    def encode(self, out: FrameOutput) -> list[bytes]:
        if not out.weights:
            return []
        w = next((w for w in out.weights if w.face_id == self.face), out.weights[0])
        return encode_vmc(w, out.timestamp, self.max_datagram, **self.options)
