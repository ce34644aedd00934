"""One face's source channels on the avatar path, computed once per frame for every rig profile.

Per update: sources (52 ARKit + 17 AU / 5; NaN = untracked) -> calibration (neutral / maximum) ->
one filter over the 69 sources plus the head pose (quaternion + translation) -> replayed
expression events. Every profile the face is retargeted to reads these same filtered sources, so
the filter runs once per face, not once per profile; since a target is a fixed weighted sum of
sources followed by a pointwise curve, filtering the sources is what filtering each target's
inputs would be (``benchmarks/bench_smoothing.py`` checks the requirement per target).
"""

from __future__ import annotations

import numpy as np

from avatar_bridge.records import ActionUnits, ExpressionEvent, FaceObservation
from avatar_bridge.retarget.calibration import RetargetCalibration
from avatar_bridge.retarget.events import EventReplay
from avatar_bridge.retarget.pose import quaternion
from avatar_bridge.retarget.profile import SOURCE_NAMES, source_vector
from avatar_bridge.retarget.smoothing import SmoothingOptions, make_filter

#: Noise scale of the head-pose channels relative to the blendshapes' (quaternion components and
#: centimetres jitter about an eighth as much as a blendshape at rest).
POSE_NOISE_SCALE = 0.125
N_SOURCES = len(SOURCE_NAMES)
_IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


class SourceTrack:
    """Calibrated, smoothed sources and head pose of one face (see the module docstring)."""

    def __init__(
        self,
        smoothing: SmoothingOptions | None = None,
        calibration: RetargetCalibration | None = None,
    ) -> None:
        if calibration is not None:
            self._cal_neutral, self._cal_scale = calibration.arrays()
        else:
            self._cal_neutral = self._cal_scale = None
        scale = np.r_[np.ones(N_SOURCES), np.full(7, POSE_NOISE_SCALE)]
        self._filter = make_filter(N_SOURCES + 7, smoothing, scale)  # sources, quaternion, cm
        self._replay = EventReplay()
        self.reset()

    def reset(self) -> None:
        """Forget the filter state and queued events."""
        self._filter.reset()
        self._replay.clear()
        self._hemisphere = _IDENTITY

    def lost(self) -> None:
        """The face left: its next appearance starts the filter afresh (queued events stay)."""
        self._filter.reset()
        self._hemisphere = _IDENTITY

    def play_event(self, event: ExpressionEvent, gain: float) -> None:
        self._replay.add(event, gain)

    def update(
        self, face: FaceObservation, aus: ActionUnits | None, timestamp: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sources (69,), unit quaternion xyzw (4,), translation cm (3,)) for this frame."""
        s = source_vector(face.blendshapes, None if aus is None else aus.intensity)
        if self._cal_neutral is not None:
            s = np.clip((s - self._cal_neutral) * self._cal_scale, 0.0, 1.0)
        q = quaternion(face.pose)
        if q @ self._hemisphere < 0:  # keep the quaternion on one hemisphere for the filter
            q = -q
        f = self._filter.update(np.concatenate([s, q, face.pose.matrix[:3, 3]]), timestamp)
        q = f[N_SOURCES : N_SOURCES + 4]
        q = q / np.sqrt(q @ q)
        self._hemisphere = q
        return self._replay.overlay(f[:N_SOURCES], timestamp), q, f[N_SOURCES + 4 :]
