"""The retarget stage: one face's tracking + AUs -> rig weights for one or several profiles.

Per update the face's sources are calibrated, smoothed (avatar path only) and overlaid with
replayed events once (:class:`~avatar_bridge.retarget.sources.SourceTrack`), then every profile's
weighted sums, curves and clamps are one matmul over the stacked profiles
(:class:`~avatar_bridge.retarget.stacked.StackedProfiles`). When the face is lost the weights and
head pose ease back to neutral over ``lost_ease`` seconds instead of freezing; when it comes back
they blend in over ``regain_ease``.

:class:`FaceRetargeter` serves several profiles at once (the live pipeline: one per face);
:class:`Retargeter` is the same for a single profile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from avatar_bridge.errors import ConfigError
from avatar_bridge.records import ActionUnits, ExpressionEvent, FaceObservation, HeadPose, RigWeights
from avatar_bridge.retarget.calibration import RetargetCalibration
from avatar_bridge.retarget.events import event_envelope, event_overlay_amplitudes
from avatar_bridge.retarget.profile import Profile, load_profile
from avatar_bridge.retarget.smoothing import SmoothingOptions
from avatar_bridge.retarget.sources import POSE_NOISE_SCALE, SourceTrack
from avatar_bridge.retarget.stacked import StackedProfiles

__all__ = [
    "POSE_NOISE_SCALE",
    "FaceRetargeter",
    "RetargetOptions",
    "Retargeter",
    "event_envelope",
    "event_overlay_amplitudes",
    "quat_to_matrix",
    "slerp",
    "smoothstep",
]


@dataclass(frozen=True, slots=True)
class RetargetOptions:
    """Options of :class:`Retargeter` and :class:`FaceRetargeter`.

    smoothing: filter of the 69 source channels and the head pose (quaternion + translation in
    cm, whose noise estimates start at ``POSE_NOISE_SCALE`` times the blendshapes'); see
    :class:`SmoothingOptions`. It runs once per face, before any profile.
    lost_ease: seconds to ease weights and head rotation back to neutral once the face is lost.
    regain_ease: seconds to blend from the eased pose back to the live face when it returns.
    event_gain: default gain of replayed expression events (1 = the AU intensities as detected).
    mirror: None = the profile's own switch; True/False overrides it.
    calibration: per-user neutral and maximum of the sources (None = none).
    """

    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    lost_ease: float = 0.5
    regain_ease: float = 0.15
    event_gain: float = 1.0
    mirror: bool | None = None
    calibration: RetargetCalibration | None = None

    def __post_init__(self) -> None:
        for name in ("lost_ease", "regain_ease"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a non-negative number of seconds, got {value}")
        if not (math.isfinite(self.event_gain) and self.event_gain >= 0):
            raise ConfigError(f"event_gain must be >= 0, got {self.event_gain}")


def smoothstep(p: float) -> float:
    p = min(max(p, 0.0), 1.0)
    return p * p * (3.0 - 2.0 * p)


def quat_to_matrix(q: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 matrix from a unit quaternion (x, y, z, w) and a translation."""
    x, y, z, w = (q / (np.linalg.norm(q) or 1.0)).tolist()
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    m = np.array(
        [
            [1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy), 0.0],
            [2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx), 0.0],
            [2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy), 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        dtype=np.float32,
    )
    m[:3, 3] = translation
    return m


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions (x, y, z, w)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d = float(np.dot(a, b))
    if d < 0:
        b, d = -b, -d
    if d > 0.9995:
        q = a + t * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(d)
    return (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / math.sin(theta)


_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


class FaceRetargeter:
    """One face -> the weights of several rig profiles, sharing one source filter.

    >>> fr = FaceRetargeter({"vrm0": "vrm0", "arkit52": "arkit52"})    # doctest: +SKIP
    >>> fr.update(face, aus, timestamp=result.timestamp)["vrm0"]       # RigWeights in vrm0's targets
    """

    def __init__(
        self,
        profiles: Mapping[str, Profile | str] | Sequence[Profile | str],
        options: RetargetOptions | None = None,
        face_id: int = 0,
    ) -> None:
        self.options = opts = options or RetargetOptions()
        if not isinstance(profiles, Mapping):
            profiles = {(p if isinstance(p, str) else p.name): p for p in profiles}
        if not profiles:
            raise ConfigError("a retargeter needs at least one profile")
        loaded: dict[str, Profile] = {}
        for key, p in profiles.items():
            p = load_profile(p) if isinstance(p, str) else p
            loaded[key] = p.with_mirror(opts.mirror) if opts.mirror is not None else p
        self.profiles = loaded
        self.face_id = face_id
        self._stack = StackedProfiles.build([p.compile() for p in loaded.values()])
        self._keys = tuple(loaded)
        self._neutral = self._stack.neutral.astype(np.float32)
        self._track = SourceTrack(opts.smoothing, opts.calibration)
        self.reset()

    def names(self, key: str) -> tuple[str, ...]:
        return self._stack.names[self._keys.index(key)]

    def reset(self) -> None:
        """Forget filters, easing and queued events: the next update starts fresh."""
        self._track.reset()
        self._last_values = self._neutral.copy()
        self._last_q = _IDENTITY.copy()
        self._last_t = np.zeros(3, np.float32)
        self._found = False
        self._from_values = self._neutral.copy()
        self._from_q = _IDENTITY.copy()
        self._transition_start: float | None = None
        self._count = 0

    def play_event(self, event: ExpressionEvent, gain: float | None = None) -> None:
        """Replay ``event`` on the avatar from the next update on, with its onset->apex and
        apex->offset durations intact and its AU intensities times ``gain`` (default
        ``options.event_gain``). Events usually arrive after their offset, so this is a replay."""
        self._track.play_event(event, self.options.event_gain if gain is None else gain)

    def update(
        self,
        face: FaceObservation | None,
        aus: ActionUnits | None,
        timestamp: float,
        index: int | None = None,
    ) -> dict[str, RigWeights]:
        """Weights per profile key for this frame; ``face`` None means the face is lost (ease to
        neutral)."""
        index = self._count if index is None else index
        self._count += 1
        if face is None:
            values, q, found = self._lost(timestamp)
        else:
            values, q = self._found_face(face, aus, timestamp)
            found = True
        pose = HeadPose(quat_to_matrix(q, self._last_t))
        names = self._stack.names
        return {
            key: RigWeights(index, timestamp, self.face_id, names[k], values[sl], pose, face_found=found)
            for k, (key, sl) in enumerate(zip(self._keys, self._stack.slices, strict=True))
        }

    def _found_face(
        self, face: FaceObservation, aus: ActionUnits | None, timestamp: float
    ) -> tuple[np.ndarray, np.ndarray]:
        s, q, trans = self._track.update(face, aus, timestamp)
        values = self._stack.apply(s).astype(np.float32)
        if not self._found:  # (re)appearing: blend in from wherever the avatar is
            self._found = True
            self._from_values, self._from_q = self._last_values.copy(), self._last_q.copy()
            self._transition_start = timestamp
        if self._transition_start is not None and self.options.regain_ease > 0:
            w = smoothstep((timestamp - self._transition_start) / self.options.regain_ease)
            if w >= 1.0:
                self._transition_start = None
            values = (self._from_values * (1 - w) + values * w).astype(np.float32)
            q = slerp(self._from_q, q, w)
        self._last_values, self._last_q, self._last_t = values, q, trans.astype(np.float32)
        return values, q

    def _lost(self, timestamp: float) -> tuple[np.ndarray, np.ndarray, bool]:
        if self._found:
            self._found = False
            self._from_values, self._from_q = self._last_values.copy(), self._last_q.copy()
            self._transition_start = timestamp
            self._track.lost()
        if self._transition_start is None:  # never seen: neutral
            values, q = self._neutral.copy(), _IDENTITY.copy()
        else:
            ease = self.options.lost_ease
            w = 1.0 if ease <= 0 else smoothstep((timestamp - self._transition_start) / ease)
            values = (self._from_values * (1 - w) + self._neutral * w).astype(np.float32)
            q = slerp(self._from_q, _IDENTITY, w)
        self._last_values, self._last_q = values, q
        return values, q, False


class Retargeter:
    """One face -> one rig's weights (a :class:`FaceRetargeter` with a single profile).

    >>> rt = Retargeter("vrm0")                                  # doctest: +SKIP
    >>> w = rt.update(face, aus, timestamp=result.timestamp)     # RigWeights in vrm0's targets
    """

    def __init__(
        self, profile: Profile | str, options: RetargetOptions | None = None, face_id: int = 0
    ) -> None:
        self._face = FaceRetargeter({"profile": profile}, options, face_id)
        self.options = self._face.options
        self.profile = self._face.profiles["profile"]
        self.face_id = face_id

    @property
    def names(self) -> tuple[str, ...]:
        return self._face.names("profile")

    def reset(self) -> None:
        """Forget filters, easing and queued events: the next update starts fresh."""
        self._face.reset()

    def play_event(self, event: ExpressionEvent, gain: float | None = None) -> None:
        """See :meth:`FaceRetargeter.play_event`."""
        self._face.play_event(event, gain)

    def update(
        self,
        face: FaceObservation | None,
        aus: ActionUnits | None,
        timestamp: float,
        index: int | None = None,
    ) -> RigWeights:
        """Weights for this frame; ``face`` None means the face is lost (ease to neutral)."""
        return self._face.update(face, aus, timestamp, index)["profile"]
