"""VMC protocol, Performer side (``vmc://``, default 127.0.0.1:39539): VSeeFace, Warudo, VNyan...

Per frame (first face, or ``?face=N``): ``/VMC/Ext/Blend/Val (s name)(f value)`` for every
target followed by one ``/VMC/Ext/Blend/Apply``, ``/VMC/Ext/Bone/Pos`` for Neck and Head,
``/VMC/Ext/Root/Pos``, ``/VMC/Ext/OK`` and ``/VMC/Ext/T``, packed into bundles of at most
``max_datagram`` bytes; a bundle that carries Val messages always ends its group with Apply.

Head pose. VMC carries Unity values: ``/VMC/Ext/Bone/Pos`` is the bone's Unity ``localPosition``
and ``localRotation`` (sh-akira/VirtualMotionCaptureProtocol ``docs/specification.markdown`` and
``sample/VRM0/SampleBonesSend.cs``), and the reference receiver EVMC4U assigns them to the
avatar's bone as they are (``ExternalReceiver.cs``, ``BoneSynchronizeSingle``). Unity is
left-handed (x right, y up, z forward) and a VRM humanoid faces +z with its bones at identity in
the rest pose (UniVRM reverses glTF's z on import: vrm-c/vrm.dev ``univrm_coordinate.md``), so the
avatar's own left is -x; VMC4B (QuadraticForm/VMC4B ``core/utility.py``) maps Unity to Blender
with exactly that handedness: position (-x, -z, y), quaternion axis (x, z, -y). MediaPipe's camera
frame is right-handed (x towards the image's right = the subject's left, y up, z towards the
camera = the subject's forward). Matching the subject's left to the avatar's left reflects x:
R_unity = M R M with M = diag(-1, 1, 1), i.e. the quaternion (x, y, z, w) becomes (x, -y, -z, w).
A subject turning to their own left turns the avatar to its own left (Unity forward towards -x);
``tests/test_sinks.py`` checks this on real video through VMC4B's conversion too.

The rotation is shared between Neck (``neck_share``, default 0.3) and Head (the rest), which
compose to the full rotation. Bone positions are nominal local offsets in metres (``?neck_y=``,
``?head_y=``): a face tracker cannot know the model's skeleton, and a receiver that applies bone
positions (EVMC4U's ``BonePositionSynchronize``, on by default) moves the model's neck and head to
these offsets, so set them to your model's values or turn that option off. The root stays put
unless ``?move_root=1`` (then it follows the head translation, cm -> m, x reflected likewise).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from avatar_bridge.records import FrameOutput, RigWeights
from avatar_bridge.retarget.pose import quaternion
from avatar_bridge.sinks.base import SinkURL, UdpSink
from avatar_bridge.sinks.osc import (
    bundle_of_elements,
    element,
    encode_message,
    message_prefix,
    named_float_elements,
    osc_string,
    pack_elements,
)

DEFAULT_PORT = 39539
MAX_DATAGRAM = 1400
_VAL = message_prefix("/VMC/Ext/Blend/Val", "sf")
APPLY = encode_message("/VMC/Ext/Blend/Apply", "", ())
_APPLY_EL = element(APPLY)
_F7 = struct.Struct(">7f")
_BONE = message_prefix("/VMC/Ext/Bone/Pos", "sfffffff")
_NECK = _BONE + osc_string("Neck")
_HEAD = _BONE + osc_string("Head")
_ROOT = message_prefix("/VMC/Ext/Root/Pos", "sfffffff") + osc_string("root")
_T = message_prefix("/VMC/Ext/T", "f")
_F32 = struct.Struct(">f")
# loaded, calibration state (3 = calibrated), calibration mode (0 = normal), tracking (1 = ok; V2.7)
_OK = {found: encode_message("/VMC/Ext/OK", "iiii", (1, 3, 0, int(found))) for found in (False, True)}
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def unity_quaternion(q_camera: np.ndarray) -> np.ndarray:
    """MediaPipe camera-frame quaternion (x, y, z, w) -> the avatar's Unity frame (see module doc)."""
    x, y, z, w = (float(v) for v in q_camera)
    return np.array([x, -y, -z, w])


def _fraction(q: tuple[float, float, float, float], t: float) -> tuple[float, float, float, float]:
    """slerp(identity, q, t): the rotation q scaled to ``t`` of its angle (same maths as
    :func:`avatar_bridge.retarget.retargeter.slerp`, on plain floats)."""
    x, y, z, w = q
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    if w > 0.9995:
        qx, qy, qz, qw = t * x, t * y, t * z, 1.0 + t * (w - 1.0)
        n = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
        return qx / n + 0.0, qy / n + 0.0, qz / n + 0.0, qw / n  # + 0.0: no negative zeros
    theta = math.acos(w)
    a, b = math.sin((1 - t) * theta), math.sin(t * theta)
    st = math.sin(theta)
    return b * x / st + 0.0, b * y / st + 0.0, b * z / st + 0.0, (a + b * w) / st


def vmc_messages(
    weights: RigWeights,
    time: float,
    neck_share: float = 0.3,
    neck_y: float = 0.1,
    head_y: float = 0.08,
    move_root: bool = False,
) -> tuple[list[bytes], list[bytes]]:
    """(Val messages, the other messages) of one face; pure."""
    vals, tail = vmc_elements(weights, time, neck_share, neck_y, head_y, move_root)
    return [e[4:] for e in vals], [e[4:] for e in tail]


def vmc_elements(
    weights: RigWeights,
    time: float,
    neck_share: float = 0.3,
    neck_y: float = 0.1,
    head_y: float = 0.08,
    move_root: bool = False,
) -> tuple[list[bytes], list[bytes]]:
    """(Val elements, the other elements) of one face, as bundle elements; pure."""
    vals = named_float_elements(_VAL, weights.names, weights.values)
    q = tuple(unity_quaternion(quaternion(weights.pose)).tolist())
    q_neck = _fraction(q, neck_share)
    q_head = _fraction(q, 1.0 - neck_share) if neck_share < 1 else (0.0, 0.0, 0.0, 1.0)
    root = (0.0, 0.0, 0.0)
    if move_root:
        tx, ty, tz = (weights.pose.matrix[:3, 3].astype(np.float64) / 100.0).tolist()
        root = (-tx, ty, tz)
    tail = [
        element(_NECK + _F7.pack(0.0, neck_y, 0.0, *q_neck)),
        element(_HEAD + _F7.pack(0.0, head_y, 0.0, *q_head)),
        element(_ROOT + _F7.pack(*root, 0.0, 0.0, 0.0, 1.0)),
        element(_OK[bool(weights.face_found)]),
        element(_T + _F32.pack(time)),
    ]
    return vals, tail


def encode_vmc(
    weights: RigWeights, time: float, max_datagram: int = MAX_DATAGRAM, **options: float | bool
) -> list[bytes]:
    """Datagrams of one frame: Val groups each closed by Apply, then bones, root, OK and T."""
    vals, tail = vmc_elements(weights, time, **options)  # type: ignore[arg-type]
    groups = pack_elements(vals, max_datagram, trailer=_APPLY_EL) if vals else [[_APPLY_EL]]
    # Put the tail into the last Val bundle when it fits, else send it on its own.
    last = groups[-1]
    if sum(map(len, last)) + sum(map(len, tail)) + 16 <= max_datagram:
        groups[-1] = last + tail
    else:
        groups += pack_elements(tail, max_datagram)
    return [bundle_of_elements(g) for g in groups]


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
