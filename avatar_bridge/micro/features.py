"""Landmark geometry for micro-expressions (NumPy only): alignment, regions and point groups.

Landmarks are aligned to a per-face reference by a 3D similarity transform fitted on rigid anchor
points (forehead, nose bridge, face contour), so head pose is removed; coordinates are then in
"pixels at 640 px face width", the unit the generator's amplitudes use. The spotter uses the
group positions when no frames are given; the generator uses the reference shape and face axes.
Eyelid points are left out of the eye regions on purpose: blinks move them, brows carry the AUs.
"""

from __future__ import annotations

import numpy as np

from avatar_bridge.records import FaceObservation

#: Reference face width (landmarks 234-454) that displacements are expressed at, in pixels.
FACE_WIDTH_UNITS = 640.0

#: Landmark indices per region. Sides are the subject's own (subject's left = image right unmirrored).
REGIONS: dict[str, np.ndarray] = {
    "left_eye": np.array([300, 293, 334, 296, 336, 285, 295, 282, 283, 276, 362, 263]),
    "right_eye": np.array([70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 133, 33]),
    "nose": np.array([168, 6, 197, 195, 5, 4, 1, 45, 275]),
    "mouth": np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39,
                       40, 185, 78, 308, 13, 14, 152, 199, 200, 18, 216, 436, 206, 426]),
}  # fmt: skip
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
#: Rigid points the head pose is fitted on: forehead, nose bridge, contour, inner eye corners.
ANCHORS = np.array(
    [10, 151, 9, 8, 168, 6, 197, 195, 234, 454, 127, 356, 93, 323, 133, 362, 21, 251, 162, 389]
)


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (scale, rotation, translation) mapping ``src`` (N, D) onto ``dst`` (least squares)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(len(sv))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = (u * sign) @ vt
    var = (s0**2).sum() / len(src)
    scale = float((sv * sign).sum() / var) if var > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def face_width_px(face: FaceObservation) -> float:
    """Face width in image pixels (landmarks 234-454, 2D)."""
    p = face.landmarks_px
    return float(np.hypot(*(p[454, :2] - p[234, :2])))


def face_axes(points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit 2D vectors (lateral towards the subject's left, up) of a face in image pixels."""
    lateral = points_px[454, :2] - points_px[234, :2]
    lateral = lateral / max(float(np.hypot(*lateral)), 1e-6)
    up = np.array([lateral[1], -lateral[0]])  # image y points down
    if np.dot(up, points_px[10, :2] - points_px[152, :2]) < 0:  # mirrored input
        up = -up
    return lateral, up


#: Image pixels (x right, y down, z away) -> y up, z towards the camera: a 180 degree turn about x,
#: a proper rotation, so that a similarity fit never has to mirror.
_Y_UP = np.array([1.0, -1.0, -1.0])


def reference_shape(face: FaceObservation) -> np.ndarray:
    """(478, 3) reference for alignment: this face, centred on its anchors, at 640 px face width.

    Axes are the face's own (x = towards the subject's left, y = up, for an unmirrored image), so
    displacements read the same whatever the roll of the first frame.
    """
    p = face.landmarks_px.astype(np.float64) * _Y_UP
    lateral = p[454, :2] - p[234, :2]
    lateral = lateral / max(float(np.hypot(*lateral)), 1e-6)
    up = np.array([-lateral[1], lateral[0]])  # lateral turned 90 degrees: a proper frame
    q = p - p[ANCHORS].mean(axis=0)
    out = np.stack([q[:, :2] @ lateral, q[:, :2] @ up, q[:, 2]], axis=1)
    return out * (FACE_WIDTH_UNITS / max(face_width_px(face), 1e-6))


def align(points_px: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Landmarks (478, 3) in image pixels -> reference frame (head pose and scale removed)."""
    p = points_px.astype(np.float64) * _Y_UP
    scale, rot, trans = umeyama(p[ANCHORS], reference[ANCHORS])
    return scale * p @ rot.T + trans


#: Small groups of neighbouring points that move together; a group's mean displacement averages
#: tracking noise away while keeping a local, coherent movement (a micro-expression is local).
GROUPS: dict[str, tuple[str, np.ndarray]] = {
    "brow_inner_l": ("left_eye", np.array([285, 295, 336, 296])),
    "brow_mid_l": ("left_eye", np.array([334, 293, 282])),
    "brow_outer_l": ("left_eye", np.array([300, 276, 283])),
    "brow_inner_r": ("right_eye", np.array([55, 65, 107, 66])),
    "brow_mid_r": ("right_eye", np.array([105, 63, 52])),
    "brow_outer_r": ("right_eye", np.array([70, 46, 53])),
    "nose_bridge": ("nose", np.array([168, 6, 197, 195])),
    "nose_tip": ("nose", np.array([5, 4, 1, 45, 275])),
    "corner_l": ("mouth", np.array([291, 409, 375, 308, 436])),
    "corner_r": ("mouth", np.array([61, 185, 146, 78, 216])),
    "lip_upper": ("mouth", np.array([0, 37, 267, 13, 39, 269])),
    "lip_lower": ("mouth", np.array([17, 84, 314, 14, 181, 405])),
    "chin": ("mouth", np.array([152, 199, 200, 18])),
    "cheek_l": ("mouth", np.array([426, 436, 432, 410])),
    "cheek_r": ("mouth", np.array([206, 216, 212, 186])),
}
GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)
#: Group index -> region index (REGION_NAMES order).
GROUP_REGION = np.array([REGION_NAMES.index(r) for r, _ in GROUPS.values()])
#: Which side of the face each group is on ('left', 'right' or 'both').
GROUP_SIDE: tuple[str, ...] = tuple(
    "left" if n.endswith("_l") else "right" if n.endswith("_r") else "both" for n in GROUP_NAMES
)
_GROUP_IDX = [g for _, g in GROUPS.values()]


_GROUP_MEAN = np.zeros((len(_GROUP_IDX), 478))
for _i, _g in enumerate(_GROUP_IDX):
    _GROUP_MEAN[_i, _g] = 1.0 / len(_g)
_GROUP_MEAN.setflags(write=False)


def group_positions(aligned: np.ndarray) -> np.ndarray:
    """(G, 2) mean aligned position of each group (GROUP_NAMES order), px at 640 px face width."""
    return _GROUP_MEAN @ aligned[:, :2]
