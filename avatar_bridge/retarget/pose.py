"""Head-pose angles and quaternions without an SVD per call (retargeter and sinks).

The retargeter emits pure rotation matrices, so the orthonormalisation :class:`HeadPose` does
(an SVD, ~20 us) is only needed when a matrix is not orthonormal; these helpers check first.
"""

from __future__ import annotations

import math

import numpy as np

from avatar_bridge.records import HeadPose

#: How far R @ R.T may be from identity for R to be used as it is.
ORTHONORMAL_TOLERANCE = 1e-4


def _rotation(pose: HeadPose) -> np.ndarray:
    r = pose.matrix[:3, :3].astype(np.float64)
    if np.abs(r @ r.T - np.eye(3)).max() <= ORTHONORMAL_TOLERANCE:
        return r
    return pose.rotation.astype(np.float64)


def euler(pose: HeadPose) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in radians, the convention of :attr:`HeadPose.euler`."""
    r = _rotation(pose)
    sy = math.hypot(r[0, 0], r[1, 0])
    if sy > 1e-6:
        return math.atan2(r[2, 1], r[2, 2]), math.atan2(-r[2, 0], sy), math.atan2(r[1, 0], r[0, 0])
    return math.atan2(-r[1, 2], r[1, 1]), math.atan2(-r[2, 0], sy), 0.0


def quaternion(pose: HeadPose) -> np.ndarray:
    """(x, y, z, w), the convention of :attr:`HeadPose.quaternion`."""
    r = _rotation(pose)
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0, r[1, 0] - r[0, 1])
    return np.array([x, y, z, w])
