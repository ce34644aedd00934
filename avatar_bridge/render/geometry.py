"""Pure mesh maths for the renderer: blending targets, normals, lighting, the camera.

Everything here is a stateless NumPy function so tests can call it directly. Coordinates follow
MediaPipe's canonical face model: centimetres, +x to the subject's left as seen by the camera
(image right), +y up, +z towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def blend(
    neutral: np.ndarray, deltas: np.ndarray, weights: np.ndarray, min_weight: float = 1e-4
) -> np.ndarray:
    """Posed vertices ``neutral + sum_i w_i * deltas[i]``; targets below ``min_weight`` are skipped."""
    active = np.flatnonzero(np.abs(weights) >= min_weight)
    if active.size == 0:
        return neutral.astype(np.float32, copy=True)
    w = weights[active].astype(np.float32)
    moved = np.tensordot(w, deltas[active], axes=1)
    return (neutral + moved).astype(np.float32, copy=False)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) for counter-clockwise (front = +normal) triangles."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = len(vertices)
    flat = faces.ravel()
    out = np.empty((n, 3), np.float32)
    for k in range(3):
        out[:, k] = np.bincount(flat, weights=np.repeat(fn[:, k], 3), minlength=n)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, 1e-12)


def lambert(
    normals: np.ndarray,
    colors: np.ndarray,
    light_dir: np.ndarray,
    ambient: float = 0.35,
    two_sided: bool = True,
) -> np.ndarray:
    """Gouraud vertex colours: ``colors * (ambient + (1 - ambient) * max(n.l, 0))`` (RGB floats 0..1)."""
    light = np.asarray(light_dir, np.float32)
    light = light / np.linalg.norm(light)
    ndl = normals @ light
    ndl = np.abs(ndl) if two_sided else np.maximum(ndl, 0.0)
    shade = ambient + (1.0 - ambient) * ndl
    return np.clip(colors * shade[:, None], 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking down -z at the origin from ``distance`` cm (fit with :func:`fit_camera`)."""

    width: int
    height: int
    focal: float  # pixels
    distance: float  # cm from the camera to the avatar's centre
    center: tuple[float, float] = (0.0, 0.0)  # principal point offset in pixels (debug layouts)

    def project(self, cam_points: np.ndarray) -> np.ndarray:
        """(V, 3) camera-space points (avatar centred at the origin) -> (V, 3) pixels x, y and depth.

        Depth is the distance along the view axis (smaller = nearer); y grows downwards.
        """
        depth = self.distance - cam_points[:, 2]
        inv = 1.0 / np.maximum(depth, 1e-3)
        x = self.width * 0.5 + self.center[0] + self.focal * cam_points[:, 0] * inv
        y = self.height * 0.5 + self.center[1] - self.focal * cam_points[:, 1] * inv
        return np.stack([x, y, depth], axis=1).astype(np.float32)


def fit_camera(radius: float, width: int, height: int, fill: float = 0.85, fov_deg: float = 30.0) -> Camera:
    """A camera that shows a sphere of ``radius`` cm filling ``fill`` of the shorter image side."""
    focal = 0.5 * height / np.tan(np.radians(fov_deg) / 2.0)
    side = min(width, height)
    distance = focal * radius / (0.5 * side * fill)
    return Camera(width, height, float(focal), float(distance + radius))


def pose_rotation(rotation: np.ndarray, mirror: bool = False, strength: float = 1.0) -> np.ndarray:
    """The 3x3 rotation to apply to the avatar for a tracked head rotation.

    ``mirror`` makes the avatar move like a reflection of the user (turning left turns the image
    left), as VTubers expect; ``strength`` scales the rotation angle (1 = as tracked).
    """
    r = np.asarray(rotation, np.float64)
    if strength != 1.0:
        angle = np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
        if angle > 1e-9:
            axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * np.sin(angle))
            r = axis_angle(axis, angle * strength)
    if mirror:
        m = np.diag([-1.0, 1.0, 1.0])
        r = m @ r @ m
    return r.astype(np.float32)


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation matrix for a unit ``axis`` and ``angle`` in radians."""
    a = np.asarray(axis, np.float64)
    a = a / max(np.linalg.norm(a), 1e-12)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def euler_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Rotation from (pitch about x, yaw about y, roll about z) radians, composed R = Rz @ Ry @ Rx."""
    cx, sx, cy, sy, cz, sz = (
        np.cos(pitch),
        np.sin(pitch),
        np.cos(yaw),
        np.sin(yaw),
        np.cos(roll),
        np.sin(roll),
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)
