"""Head-pose angles and quaternions without an SVD per call (retargeter and sinks).

The retargeter emits pure rotation matrices (and MediaPipe's are orthonormal to ~1e-6), so the
orthonormalisation :class:`HeadPose` does (Newton steps, ~4 us) is only needed when a matrix is not
orthonormal; these helpers check first, in plain float maths (~2 us).
"""

from __future__ import annotations

import math

import numpy as np

from avatar_bridge.records import HeadPose

#: How far R @ R.T may be from identity for R to be used as it is.
ORTHONORMAL_TOLERANCE = 1e-4


def _rotation(pose: HeadPose) -> list[list[float]]:
    """The rotation as nested lists: plain float maths on 9 numbers beats numpy's per-call cost."""
    r = pose.matrix[:3, :3].tolist()
    (a, b, c), (d, e, f), (g, h, i) = r
    off = max(
        abs(a * a + b * b + c * c - 1.0),
        abs(d * d + e * e + f * f - 1.0),
        abs(g * g + h * h + i * i - 1.0),
        abs(a * d + b * e + c * f),
        abs(a * g + b * h + c * i),
        abs(d * g + e * h + f * i),
    )
    if off <= ORTHONORMAL_TOLERANCE:
        return r
    return pose.rotation.astype(np.float64).tolist()


def euler(pose: HeadPose) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in radians, the convention of :attr:`HeadPose.euler`."""
    r = _rotation(pose)
    sy = math.hypot(r[0][0], r[1][0])
    if sy > 1e-6:
        return math.atan2(r[2][1], r[2][2]), math.atan2(-r[2][0], sy), math.atan2(r[1][0], r[0][0])
    return math.atan2(-r[1][2], r[1][1]), math.atan2(-r[2][0], sy), 0.0


def quaternion(pose: HeadPose) -> np.ndarray:
    """(x, y, z, w), the convention of :attr:`HeadPose.quaternion`."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = _rotation(pose)
    w = math.sqrt(max(0.0, 1.0 + r00 + r11 + r22)) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r00 - r11 - r22)) / 2.0, r21 - r12)
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r00 + r11 - r22)) / 2.0, r02 - r20)
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r00 - r11 + r22)) / 2.0, r10 - r01)
    return np.array([x, y, z, w])
