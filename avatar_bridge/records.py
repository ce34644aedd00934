"""The typed records that flow between stages.

Every record carries the source timestamp (seconds, from the source's own clock) and the frame
index, so that later stages never read a clock of their own. Arrays are checked for shape in
``__post_init__`` and validation messages name the expected and the actual shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES, AU_INTENSITY, AU_PRESENCE
from avatar_bridge.errors import InputError

NUM_LANDMARKS = 478


def _check_shape(name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = array.ndim == len(shape) and all(
        s is None or s == a for s, a in zip(shape, array.shape, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{name} must have shape {want}, got {tuple(array.shape)}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a source.

    ``image`` is RGB uint8, H x W x 3 (MediaPipe's order; OpenCV's BGR is converted once, in capture).
    ``timestamp`` is seconds on the source's clock: container time for files, a monotonic clock
    for cameras, so variable frame rates need no special handling downstream.
    """

    index: int
    timestamp: float
    image: np.ndarray

    def __post_init__(self) -> None:
        _check_shape("Frame.image", self.image, (None, None, 3))
        if self.image.dtype != np.uint8:
            raise InputError(f"Frame.image must be uint8, got {self.image.dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Rigid head pose from MediaPipe's facial transformation matrix.

    The matrix maps MediaPipe's canonical face model (centimetres, +y up, +z towards the camera)
    into camera space. Euler angles are radians, right-handed about the camera axes (x right, y up,
    z towards the viewer): positive pitch tilts the nose down, positive yaw turns the nose towards
    +x (the image's right), positive roll turns the face counter-clockwise as seen by the camera.
    """

    matrix: np.ndarray  # (4, 4) float32
    _rotation: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_shape("HeadPose.matrix", self.matrix, (4, 4))

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation matrix (scale removed); solved once per pose (spotting, retargeting and export
        all ask)."""
        if self._rotation is None:
            rotation = np.array(_polar(self.matrix[:3, :3].astype(np.float64).tolist()), dtype=np.float32)
            rotation.flags.writeable = False
            object.__setattr__(self, "_rotation", rotation)
        return self._rotation

    @property
    def translation(self) -> np.ndarray:
        """Translation in centimetres, camera space."""
        return self.matrix[:3, 3].astype(np.float32)

    @property
    def euler(self) -> np.ndarray:
        """(pitch, yaw, roll) in radians, XYZ convention as OpenFace's pose_Rx/Ry/Rz."""
        r = self.rotation
        sy = math.hypot(r[0, 0], r[1, 0])
        if sy > 1e-6:
            pitch = math.atan2(r[2, 1], r[2, 2])
            yaw = math.atan2(-r[2, 0], sy)
            roll = math.atan2(r[1, 0], r[0, 0])
        else:  # gimbal lock: yaw at +-90 degrees
            pitch = math.atan2(-r[1, 2], r[1, 1])
            yaw = math.atan2(-r[2, 0], sy)
            roll = 0.0
        return np.array([pitch, yaw, roll], dtype=np.float32)

    @property
    def quaternion(self) -> np.ndarray:
        """Rotation as (x, y, z, w)."""
        r = self.rotation.astype(np.float64)
        w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
        x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0, r[2, 1] - r[1, 2])
        y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0, r[0, 2] - r[2, 0])
        z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0, r[1, 0] - r[0, 1])
        return np.array([x, y, z, w], dtype=np.float32)

    @classmethod
    def identity(cls) -> HeadPose:
        return cls(np.eye(4, dtype=np.float32))


def _polar(m: list[list[float]], tol: float = 1e-12) -> list[list[float]]:
    """The orthogonal factor of a 3x3 matrix (what SVD's U V^T gives), by Newton's iteration
    R <- (R + R^-T) / 2 on the matrix scaled to unit determinant, in plain floats: MediaPipe's
    matrices are a rotation times a scale, so two or three steps reach it, at half of
    ``np.linalg.svd``'s cost per frame. A singular or far-from-rotation matrix falls back to SVD."""
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) + b * (f * g - d * i) + c * (d * h - e * g)
    if abs(det) > 1e-12:
        k = abs(det) ** (-1.0 / 3.0)
        a, b, c, d, e, f, g, h, i = a * k, b * k, c * k, d * k, e * k, f * k, g * k, h * k, i * k
        for _ in range(8):
            q0, q1, q2 = e * i - f * h, f * g - d * i, d * h - e * g  # cofactors: R^-T = Q / det
            det = a * q0 + b * q1 + c * q2
            if abs(det) < 1e-12:
                break
            w = 0.5 / det
            a2, b2, c2 = 0.5 * a + w * q0, 0.5 * b + w * q1, 0.5 * c + w * q2
            d2, e2 = 0.5 * d + w * (c * h - b * i), 0.5 * e + w * (a * i - c * g)
            f2, g2 = 0.5 * f + w * (b * g - a * h), 0.5 * g + w * (b * f - c * e)
            h2, i2 = 0.5 * h + w * (c * d - a * f), 0.5 * i + w * (a * e - b * d)
            step = abs(a2 - a) + abs(b2 - b) + abs(c2 - c) + abs(d2 - d) + abs(e2 - e) + abs(f2 - f)
            step += abs(g2 - g) + abs(h2 - h) + abs(i2 - i)
            a, b, c, d, e, f, g, h, i = a2, b2, c2, d2, e2, f2, g2, h2, i2
            if step < tol:
                return [[a, b, c], [d, e, f], [g, h, i]]
    u, _, vt = np.linalg.svd(np.array(m))
    return (u @ vt).tolist()


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One tracked face in one frame.

    ``landmarks``: (478, 3) MediaPipe normalised coordinates (x, y in 0..1 of the image width and
    height, z roughly in the x scale). ``blendshapes``: (52,) in ARKit's canonical order
    (:data:`avatar_bridge.channels.ARKIT_NAMES`); channels MediaPipe does not estimate
    (``tongueOut``) are NaN, never invented.
    """

    face_id: int
    landmarks: np.ndarray
    blendshapes: np.ndarray
    pose: HeadPose
    image_size: tuple[int, int]  # (width, height)
    confidence: float = 1.0

    def __post_init__(self) -> None:
        _check_shape("FaceObservation.landmarks", self.landmarks, (NUM_LANDMARKS, 3))
        _check_shape("FaceObservation.blendshapes", self.blendshapes, (len(ARKIT_NAMES),))

    @property
    def landmarks_px(self) -> np.ndarray:
        """(478, 3) landmarks in pixels; z is scaled like x."""
        w, h = self.image_size
        return self.landmarks * np.array([w, h, w], dtype=np.float32)

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[ARKIT_NAMES.index(name)])


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """All faces found in one frame (an empty tuple when none was found)."""

    index: int
    timestamp: float
    image_size: tuple[int, int]
    faces: tuple[FaceObservation, ...] = ()

    @property
    def success(self) -> bool:
        return bool(self.faces)


@dataclass(frozen=True, slots=True)
class ActionUnits:
    """OpenFace-style action units of one face in one frame.

    ``intensity``: (17,) on 0-5 in :data:`AU_INTENSITY` order (``AUxx_r``); ``presence``: (18,)
    of 0/1 in :data:`AU_PRESENCE` order (``AUxx_c``). Both are relative to the person's neutral face.
    """

    index: int
    timestamp: float
    face_id: int
    intensity: np.ndarray
    presence: np.ndarray
    calibrated: bool = False

    def __post_init__(self) -> None:
        _check_shape("ActionUnits.intensity", self.intensity, (len(AU_INTENSITY),))
        _check_shape("ActionUnits.presence", self.presence, (len(AU_PRESENCE),))

    def __getitem__(self, au: str) -> float:
        """Intensity of ``au`` ('AU12' or 'AU12_r'), or presence for 'AU12_c'."""
        if au.endswith("_c"):
            return float(self.presence[AU_PRESENCE.index(au[:-2])])
        return float(self.intensity[AU_INTENSITY.index(au.removesuffix("_r"))])


class EventKind(StrEnum):
    MICRO = "micro"
    MACRO = "macro"


@dataclass(frozen=True, slots=True)
class ExpressionEvent:
    """A spotted facial expression, emitted after its offset (``emitted_at`` >= ``offset``).

    Times are source seconds. ``aus`` maps AU name to peak intensity; ``regions`` names the face
    regions that moved ('left_eye', 'right_eye', 'nose', 'mouth'). ``confidence`` is the spotter's
    (how clearly the movement stood out); ``label_scores`` maps each class to its probability when a
    learned classifier (TP-HA3DNet) chose ``label``, and is empty when the AU rules did.
    """

    kind: EventKind
    face_id: int
    onset: float
    apex: float
    offset: float
    emitted_at: float
    aus: dict[str, float] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    side: str = "both"  # 'left', 'right' or 'both' (the subject's own sides)
    magnitude: float = 0.0
    confidence: float = 0.0
    label: str = ""  # e.g. 'positive', 'negative', 'surprise'
    emotion: str = ""  # e.g. 'happiness'
    truncated: bool = False  # cut by the end of the stream or a gap: times are what was seen
    label_scores: dict[str, float] = field(default_factory=dict)  # class -> probability

    @property
    def duration(self) -> float:
        return self.offset - self.onset


@dataclass(frozen=True, slots=True)
class RigWeights:
    """Target-rig blendshape weights for one face in one frame: names plus a parallel array."""

    index: int
    timestamp: float
    face_id: int
    names: tuple[str, ...]
    values: np.ndarray
    pose: HeadPose = field(default_factory=HeadPose.identity)
    face_found: bool = True

    def __post_init__(self) -> None:
        _check_shape("RigWeights.values", self.values, (len(self.names),))

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.values, strict=True)}


@dataclass(frozen=True, slots=True)
class FrameOutput:
    """What an output sink receives for one frame: per-face rig weights (already retargeted to the
    sink's profile), the faces' action units, the expression events emitted at this frame and,
    for renderers that draw a debug view, the camera frame itself (None when not wanted)."""

    index: int
    timestamp: float
    weights: tuple[RigWeights, ...] = ()
    aus: tuple[ActionUnits, ...] = ()
    events: tuple[ExpressionEvent, ...] = ()
    frame: Frame | None = None
    faces: tuple[FaceObservation, ...] = ()  # the tracked faces, for debug views (landmarks)
