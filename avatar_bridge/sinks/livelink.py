"""Live Link Face (``livelink://``, default 127.0.0.1:11111): Unreal's MetaHuman face input.

One UDP packet per frame (first face, or ``?face=N``), laid out as Epic's Live Link Face app
sends it: uint32 little-endian version (6), the subject's device id as "$" + 36-char UUID,
big-endian int32 name length + UTF-8 name, frame time (int32 frame number, float32 sub-frame),
frame rate (int32 numerator, int32 denominator), uint8 count (61), then 61 big-endian float32:
the 52 ARKit weights in Apple's order (the sink's profile defaults to ``arkit52``), HeadYaw,
HeadPitch, HeadRoll and the two eyes' yaw, pitch, roll (from the eye-look shapes).

Angle units. Epic's own ARKit publisher writes these nine values normalised to -1..1, angle in
degrees / 180 (Unreal's AppleARKitFaceSupport, ``ToBlendShapeMap``: "Map the -180..180 range to
-1..1", ``HeadYaw = TrackedRot.Yaw / 180.f``), and receivers built for the app treat them that
way (nmfisher's Blender LiveLinkFace add-on: "rotate the bone between its extremities (blendshape
values -1 to 1)"). So the default is ``angles=normalized`` (radians / pi); ``angles=radians`` or
``angles=degrees`` suit receivers that assume those (PyLiveLinkFace's OSC example converts with
``math.degrees``). Signs follow :class:`~avatar_bridge.records.HeadPose`: HeadYaw > 0 when the
subject turns to their own left, HeadPitch > 0 nose down, HeadRoll > 0 counter-clockwise as the
camera sees it (not checked against a live Unreal: flip in the AnimBP if a rig disagrees).
"""

from __future__ import annotations

import math
import struct
import uuid
from functools import lru_cache

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX, ARKIT_NAMES
from avatar_bridge.errors import ConfigError
from avatar_bridge.records import FrameOutput, RigWeights
from avatar_bridge.retarget.pose import euler
from avatar_bridge.sinks.base import SinkURL, UdpSink

DEFAULT_PORT = 11111
VERSION = 6
COUNT = 61
#: Eye rotation (radians) at a look-shape value of 1 (ARKit's eye look shapes span about 30 deg).
EYE_RANGE = math.radians(30.0)
#: Multiplier from radians to each ``angles=`` unit (normalized = Epic's degrees / 180).
ANGLE_UNITS = {"normalized": 1.0 / math.pi, "radians": 1.0, "degrees": 180.0 / math.pi}
_HEAD = struct.Struct("!if2iB")


@lru_cache(maxsize=64)
def _arkit_slots(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(j, ARKIT_INDEX[n]) for j, n in enumerate(names) if n in ARKIT_INDEX]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def arkit_vector(weights: RigWeights) -> np.ndarray:
    """The 52 ARKit values of ``weights`` in Apple's order (names must be ARKit names; others ignored)."""
    src, dst = _arkit_slots(weights.names)
    out = np.zeros(len(ARKIT_NAMES), np.float32)
    v = np.asarray(weights.values, np.float32)[src]
    out[dst] = np.where(np.isnan(v), 0.0, v)
    return out


_EYE = {
    side: tuple(ARKIT_INDEX[f"eyeLook{k}{side}"] for k in ("Up", "Down", "In", "Out"))
    for side in ("Left", "Right")
}


def eye_angles(arkit: np.ndarray, side: str) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of one eye from its look shapes; yaw > 0 towards the subject's left."""
    up, down, look_in, look_out = (float(arkit[i]) for i in _EYE[side])
    towards_left = look_out - look_in if side == "Left" else look_in - look_out
    return towards_left * EYE_RANGE, (up - down) * EYE_RANGE, 0.0


@lru_cache(maxsize=64)
def _packet_head(subject: str, device_id: str) -> bytes:
    dev = ("$" + device_id).encode("ascii")
    if len(dev) != 37:
        raise ConfigError(f"Live Link device id must be a 36-character UUID, got {device_id!r}")
    name = subject.encode("utf-8")
    return struct.pack("<I", VERSION) + dev + struct.pack("!i", len(name)) + name


def encode_livelink(
    weights: RigWeights,
    frame: int,
    subframe: float,
    fps: int,
    subject: str = "avatar-bridge",
    device_id: str = "00000000-0000-0000-0000-000000000000",
    angles: str = "normalized",
) -> bytes:
    """One Live Link Face packet; pure. ``angles``: unit of the nine head/eye angles (see module)."""
    if angles not in ANGLE_UNITS:
        raise ConfigError(f"Live Link angles must be one of {', '.join(ANGLE_UNITS)}, got {angles!r}")
    head = _packet_head(subject, device_id)
    arkit = arkit_vector(weights)
    pitch, yaw, roll = euler(weights.pose)
    values = np.empty(COUNT, ">f4")
    values[: len(ARKIT_NAMES)] = arkit
    rotations = np.array((yaw, pitch, roll, *eye_angles(arkit, "Left"), *eye_angles(arkit, "Right")))
    values[len(ARKIT_NAMES) :] = rotations * ANGLE_UNITS[angles]
    return head + _HEAD.pack(frame, subframe, fps, 1, COUNT) + values.tobytes()


class LiveLinkSink(UdpSink):
    """``livelink://HOST:PORT?subject=avatar-bridge&device_id=UUID&fps=60&face=0&angles=normalized``."""

    scheme = "livelink"
    default_port = DEFAULT_PORT
    default_profile = "arkit52"
    extra_params = frozenset({"subject", "device_id", "fps", "face", "angles"})

    def __init__(self, url: SinkURL) -> None:
        super().__init__(url)
        self.subject = url.params.get("subject", "avatar-bridge")
        default_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"avatar-bridge.{self.subject}"))
        self.device_id = url.params.get("device_id", default_id)
        if len(self.device_id) != 36:
            raise ConfigError(f"sink URL {url.text!r}: device_id must be a 36-character UUID")
        self.fps = url.int_param("fps", 60, lo=1, hi=1000)
        self.face = url.int_param("face", -1, lo=-1, hi=1 << 20)
        self.angles = url.params.get("angles", "normalized")
        if self.angles not in ANGLE_UNITS:
            raise ConfigError(
                f"sink URL {url.text!r}: angles must be one of {', '.join(ANGLE_UNITS)}, got {self.angles!r}"
            )

    def encode(self, out: FrameOutput) -> list[bytes]:
        if not out.weights:
            return []
        w = next((w for w in out.weights if w.face_id == self.face), out.weights[0])
        frames = out.timestamp * self.fps
        frame = int(math.floor(frames))
        return [
            encode_livelink(
                w, frame, float(frames - frame), self.fps, self.subject, self.device_id, self.angles
            )
        ]
