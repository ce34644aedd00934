"""The retarget stage: one face's tracking + AUs -> a rig's weights, smoothed, calibrated, eased.

Per update: sources (52 ARKit + 17 AU / 5; NaN = untracked) -> calibration (neutral / maximum) ->
per-channel smoothing (:mod:`.smoothing`, avatar path only) -> replayed expression events ->
the profile's weighted sums, curves and clamps. When the face is lost the weights and head pose
ease back to neutral over ``lost_ease`` seconds instead of freezing; when it comes back they
blend in over ``regain_ease``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX, AU_INTENSITY
from avatar_bridge.errors import ConfigError
from avatar_bridge.records import ActionUnits, ExpressionEvent, FaceObservation, HeadPose, RigWeights
from avatar_bridge.resources import data_dir
from avatar_bridge.retarget.calibration import RetargetCalibration
from avatar_bridge.retarget.pose import quaternion
from avatar_bridge.retarget.profile import (
    AU_SCALE,
    SOURCE_INDEX,
    SOURCE_NAMES,
    Profile,
    load_profile,
    source_vector,
)
from avatar_bridge.retarget.smoothing import SmoothingOptions, make_filter

#: Noise scale of the head-pose channels relative to the blendshapes' (quaternion components and
#: centimetres jitter about an eighth as much as a blendshape at rest).
POSE_NOISE_SCALE = 0.125


@dataclass(frozen=True, slots=True)
class RetargetOptions:
    """Options of :class:`Retargeter`.

    smoothing: filter of the 69 source channels and the head pose (quaternion + translation in
    cm, whose noise estimates start at ``POSE_NOISE_SCALE`` times the blendshapes'); see
    :class:`SmoothingOptions`.
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


def event_envelope(t: float, rise: float, fall: float) -> float:
    """Raised-cosine envelope 0 -> 1 (at ``rise`` s) -> 0 (at ``rise + fall``); 0 outside."""
    if t < 0 or t > rise + fall:
        return 0.0
    if t <= rise:
        return 0.5 * (1.0 - math.cos(math.pi * t / rise)) if rise > 0 else 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (t - rise) / fall)) if fall > 0 else 0.0


def quat_to_matrix(q: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 matrix from a unit quaternion (x, y, z, w) and a translation."""
    x, y, z, w = (float(v) for v in q / (np.linalg.norm(q) or 1.0))
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
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


@cache
def _au_arkit_table(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))["au_to_arkit"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the [au_to_arkit] table: {e}") from e
    table: dict[str, tuple[int, ...]] = {}
    for au, names in data.items():
        if au not in AU_INTENSITY:
            raise ConfigError(f"{path}: au_to_arkit.{au}: unknown AU")
        bad = [n for n in names if n not in ARKIT_INDEX]
        if bad:
            raise ConfigError(f"{path}: au_to_arkit.{au}: unknown ARKit name(s) {', '.join(bad)}")
        table[au] = tuple(ARKIT_INDEX[n] for n in names)
    return table


def au_arkit_table() -> dict[str, tuple[int, ...]]:
    """AU -> ARKit channel indices shown when an event is replayed (``mappings/au_to_arkit.toml``)."""
    return _au_arkit_table(data_dir("blendshapes") / "profiles" / "mappings" / "au_to_arkit.toml")


def event_overlay_amplitudes(event: ExpressionEvent, gain: float) -> np.ndarray:
    """Peak source values (SOURCE_NAMES order, NaN = not touched) an event drives when replayed."""
    amp = np.full(len(SOURCE_NAMES), np.nan)
    table = au_arkit_table()
    for au, peak in event.aus.items():
        au = au.removesuffix("_r")
        if au not in SOURCE_INDEX:
            continue
        value = gain * max(float(peak), 0.0) / AU_SCALE
        amp[SOURCE_INDEX[au]] = np.fmax(amp[SOURCE_INDEX[au]], value)
        for i in table.get(au, ()):
            name = SOURCE_NAMES[i]
            if (event.side == "left" and name.endswith("Right")) or (
                event.side == "right" and name.endswith("Left")
            ):
                continue
            amp[i] = np.fmax(amp[i], value)
    return amp


@dataclass(slots=True)
class _Replay:
    amplitudes: np.ndarray
    rise: float
    fall: float
    start: float | None = None


class Retargeter:
    """One face -> one rig's weights.

    >>> rt = Retargeter("vrm0")                                  # doctest: +SKIP
    >>> w = rt.update(face, aus, timestamp=result.timestamp)     # RigWeights in vrm0's targets
    """

    def __init__(
        self, profile: Profile | str, options: RetargetOptions | None = None, face_id: int = 0
    ) -> None:
        self.options = opts = options or RetargetOptions()
        profile = load_profile(profile) if isinstance(profile, str) else profile
        if opts.mirror is not None:
            profile = profile.with_mirror(opts.mirror)
        self.profile = profile
        self.face_id = face_id
        self._compiled = profile.compile()
        self._neutral_values = self._compiled.neutral.astype(np.float32)
        if opts.calibration is not None:
            self._cal_neutral, self._cal_scale = opts.calibration.arrays()
        else:
            self._cal_neutral = self._cal_scale = None
        n = len(SOURCE_NAMES)
        scale = np.r_[np.ones(n), np.full(7, POSE_NOISE_SCALE)]
        self._filter = make_filter(n + 7, opts.smoothing, scale)  # sources, then quaternion + cm
        self.reset()

    @property
    def names(self) -> tuple[str, ...]:
        return self._compiled.names

    def reset(self) -> None:
        """Forget filters, easing and queued events: the next update starts fresh."""
        self._filter.reset()
        self._replays: list[_Replay] = []
        self._last_values = self._neutral_values.copy()
        self._last_q = np.array([0.0, 0.0, 0.0, 1.0])
        self._last_t = np.zeros(3, np.float32)
        self._found = False
        self._ever_found = False
        self._from_values = self._neutral_values.copy()
        self._from_q = self._last_q.copy()
        self._transition_start: float | None = None
        self._count = 0

    def play_event(self, event: ExpressionEvent, gain: float | None = None) -> None:
        """Replay ``event`` on the avatar from the next update on, with its onset->apex and
        apex->offset durations intact and its AU intensities times ``gain`` (default
        ``options.event_gain``). Events usually arrive after their offset, so this is a replay."""
        g = self.options.event_gain if gain is None else gain
        if g <= 0:
            return
        rise = max(event.apex - event.onset, 0.0)
        fall = max(event.offset - event.apex, 0.0)
        self._replays.append(_Replay(event_overlay_amplitudes(event, g), rise, fall))

    def _overlay(self, s: np.ndarray, t: float) -> np.ndarray:
        if not self._replays:
            return s
        out = s.copy()
        alive = []
        for r in self._replays:
            if r.start is None:
                r.start = t
            env = event_envelope(t - r.start, r.rise, r.fall)
            touched = np.isfinite(r.amplitudes)
            out[touched] = np.fmax(out[touched], env * r.amplitudes[touched])
            if t - r.start <= r.rise + r.fall:
                alive.append(r)
        self._replays = alive
        return out

    def update(
        self,
        face: FaceObservation | None,
        aus: ActionUnits | None,
        timestamp: float,
        index: int | None = None,
    ) -> RigWeights:
        """Weights for this frame; ``face`` None means the face is lost (ease to neutral)."""
        index = self._count if index is None else index
        self._count += 1
        if face is None:
            return self._lost(timestamp, index)
        s = source_vector(face.blendshapes, None if aus is None else aus.intensity)
        if self._cal_neutral is not None:
            s = np.clip((s - self._cal_neutral) * self._cal_scale, 0.0, 1.0)
        q = quaternion(face.pose)
        if np.dot(q, self._last_q) < 0:  # keep the quaternion on one hemisphere for the filter
            q = -q
        f = self._filter.update(np.concatenate([s, q, face.pose.matrix[:3, 3]]), timestamp)
        n = len(SOURCE_NAMES)
        s = self._overlay(f[:n], timestamp)
        values = self._compiled.apply(s).astype(np.float32)
        q = f[n : n + 4] / np.linalg.norm(f[n : n + 4])
        trans = f[n + 4 :].astype(np.float32)
        if not self._found:  # (re)appearing: blend in from wherever the avatar is
            self._found = self._ever_found = True
            self._from_values, self._from_q = self._last_values.copy(), self._last_q.copy()
            self._transition_start = timestamp
        if self._transition_start is not None and self.options.regain_ease > 0:
            w = smoothstep((timestamp - self._transition_start) / self.options.regain_ease)
            if w >= 1.0:
                self._transition_start = None
            values = (self._from_values * (1 - w) + values * w).astype(np.float32)
            q = slerp(self._from_q, q, w)
        self._last_values, self._last_q, self._last_t = values, q, trans
        pose = HeadPose(quat_to_matrix(q, trans))
        return RigWeights(index, timestamp, self.face_id, self.names, values, pose, face_found=True)

    def _lost(self, timestamp: float, index: int) -> RigWeights:
        if self._found:
            self._found = False
            self._from_values, self._from_q = self._last_values.copy(), self._last_q.copy()
            self._transition_start = timestamp
            self._filter.reset()
        if self._transition_start is None:  # never seen: neutral
            values, q = self._neutral_values.copy(), np.array([0.0, 0.0, 0.0, 1.0])
        else:
            ease = self.options.lost_ease
            w = 1.0 if ease <= 0 else smoothstep((timestamp - self._transition_start) / ease)
            values = (self._from_values * (1 - w) + self._neutral_values * w).astype(np.float32)
            q = slerp(self._from_q, np.array([0.0, 0.0, 0.0, 1.0]), w)
        self._last_values, self._last_q = values, q
        pose = HeadPose(quat_to_matrix(q, self._last_t))
        return RigWeights(index, timestamp, self.face_id, self.names, values, pose, face_found=False)
