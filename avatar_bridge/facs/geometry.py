"""Pure landmark geometry for action units: the face in its own frame, and named features.

MediaPipe landmarks live in image space, where turning the head changes every distance. We put
them in the canonical face frame with the head-pose matrix (rotation removed, +y up, +x to the
subject's left, +z out of the face) and divide by the inter-ocular distance (outer eye corners,
a rigid, rotation-invariant length). In that frame every feature below is a *linear* function of
the coordinates (a height difference along the face's own up axis, or a width along its own
left-right axis), so all of them come out of one small matrix product per face and frame.

Features are in units of the inter-ocular distance (about 9 cm on an adult face, so 0.01 is
about 1 mm). Bilateral features average the subject's two sides, like OpenFace's AUs.
"""

from __future__ import annotations

import numpy as np

from avatar_bridge.errors import InputError

#: Outer eye corners (subject's right, subject's left): the face-size reference.
EYE_OUTER = (33, 263)
#: The four eye corners: their mean height is the rigid "eye line" that heights are measured from.
EYE_CORNERS = (33, 133, 263, 362)

# Each feature: list of (coefficient, axis, landmark indices); the term adds coefficient * mean of
# that axis over the indices. axis 0 = x (subject's left +), 1 = y (up +), 2 = z (out of the face +).
_X, _Y, _Z = 0, 1, 2
_EYE_LINE = (-1.0, _Y, EYE_CORNERS)
_FEATURE_TERMS: dict[str, list[tuple[float, int, tuple[int, ...]]]] = {
    # Height of the inner brow heads above the eye line (AU01 up, AU04 down).
    "brow_inner_height": [(1.0, _Y, (107, 66, 55, 65, 336, 296, 285, 295)), _EYE_LINE],
    # Height of the lateral brow above the eye line (AU02 up, AU04 down).
    "brow_outer_height": [(1.0, _Y, (70, 63, 46, 53, 300, 293, 276, 283)), _EYE_LINE],
    # Horizontal gap between the two inner brow heads (AU04 draws the brows together).
    "brow_gap": [(1.0, _X, (336, 285)), (-1.0, _X, (107, 55))],
    # Upper eyelid height above the eye line (AU05 raises it, AU45/AU43 lowers it).
    "upper_lid_height": [(1.0, _Y, (159, 158, 160, 386, 385, 387)), _EYE_LINE],
    # Lower eyelid height relative to the eye line (AU06/AU07 push it up).
    "lower_lid_height": [(1.0, _Y, (145, 153, 144, 374, 380, 373)), _EYE_LINE],
    # Vertical eye opening, upper minus lower lid (AU45 closes it, AU05 widens it).
    "eye_aperture": [(1.0, _Y, (159, 158, 160, 386, 385, 387)), (-1.0, _Y, (145, 153, 144, 374, 380, 373))],
    # Height of the infraorbital cheek relative to the eye line (AU06 lifts the cheek).
    "cheek_height": [(1.0, _Y, (117, 118, 50, 346, 347, 280)), _EYE_LINE],
    # Height of the nose wings relative to the eye line (AU09 lifts them).
    "nose_wing_height": [(1.0, _Y, (98, 64, 129, 327, 294, 358)), _EYE_LINE],
    # Height of the upper lip's outer edge relative to the eye line (AU10 lifts it).
    "upper_lip_height": [(1.0, _Y, (0, 37, 267)), _EYE_LINE],
    # Inner-lip gap, upper inner lip minus lower inner lip (AU25 parts the lips).
    "lip_gap": [(1.0, _Y, (13, 82, 312)), (-1.0, _Y, (14, 87, 317))],
    # How far the chin sits below the eye line (AU26/AU27 drop the jaw).
    "jaw_drop": [(-1.0, _Y, (152, 175, 171, 396)), (-_EYE_LINE[0], _Y, EYE_CORNERS)],
    # Mouth width, corner to corner (AU20/AU12 widen, AU23/AU18 narrow).
    "mouth_width": [(1.0, _X, (291, 308)), (-1.0, _X, (61, 78))],
    # Lip-corner height relative to the middle of the mouth opening (AU12 up, AU15 down).
    "corner_height": [(1.0, _Y, (61, 78, 291, 308)), (-1.0, _Y, (13, 14))],
    # Lip-corner height relative to the eye line (rigid reference; AU12 up, AU15 down).
    "corner_height_rigid": [(1.0, _Y, (61, 291)), _EYE_LINE],
    # Depth of the lip corners behind the lip midline (AU14 and AU12 pull the corners back: more negative).
    "corner_depth": [(1.0, _Z, (61, 291)), (-1.0, _Z, (0, 17))],
    # Visible red of both lips, outer minus inner edges (AU23/AU24/AU28 thin it).
    "lip_thickness": [(1.0, _Y, (0, 14)), (-1.0, _Y, (13, 17))],
    # Height of the lower lip's outer edge above the chin (AU17 pushes lip and chin boss together).
    "lip_chin_height": [(1.0, _Y, (17, 84, 314)), (-1.0, _Y, (152, 175))],
}
#: Names of the geometric features, in the order :func:`geometric_features` returns them.
GEOMETRIC_FEATURES: tuple[str, ...] = tuple(_FEATURE_TERMS)

_POINTS: tuple[int, ...] = tuple(
    sorted({i for terms in _FEATURE_TERMS.values() for _, _, idx in terms for i in idx} | set(EYE_OUTER))
)
_SLOT = {p: k for k, p in enumerate(_POINTS)}


def _feature_matrix() -> np.ndarray:
    """(F, 3K) matrix M with features = M @ face_points[_POINTS].ravel()."""
    m = np.zeros((len(GEOMETRIC_FEATURES), len(_POINTS), 3), np.float64)
    for f, terms in enumerate(_FEATURE_TERMS.values()):
        for coef, axis, idx in terms:
            for i in idx:
                m[f, _SLOT[i], axis] += coef / len(idx)
    return m.reshape(len(GEOMETRIC_FEATURES), -1)


_MATRIX = _feature_matrix()
_OUTER = (_SLOT[EYE_OUTER[0]], _SLOT[EYE_OUTER[1]])


def camera_points(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """MediaPipe normalised landmarks -> camera-like axes in pixels (+x right, +y up, +z to the camera)."""
    w, h = image_size
    return landmarks.astype(np.float64) * np.array([w, -h, -w], np.float64)


def rotation_of(matrix: np.ndarray) -> np.ndarray:
    """The 3x3 rotation in a pose matrix (columns normalised: MediaPipe's matrix may carry scale)."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    return r / np.sqrt((r * r).sum(axis=0))


def face_frame(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    matrix: np.ndarray,
    points: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Landmarks in the face's own frame, in units of the inter-ocular distance.

    ``landmarks`` (478, 3) normalised as MediaPipe gives them; ``matrix`` the 4x4 head pose (canonical
    face -> camera). Returns (478, 3), or (len(points), 3) for a subset (the outer eye corners must
    be among the points: they set the scale). The origin is the mean of the points.
    """
    if points is None:
        p = camera_points(landmarks, image_size)
        a, b = EYE_OUTER
    else:
        p = camera_points(landmarks[list(points)], image_size)
        a, b = points.index(EYE_OUTER[0]), points.index(EYE_OUTER[1])
    d = p[a] - p[b]
    size = float(np.sqrt(d @ d))
    if not size > 1e-9:  # also catches NaN
        raise InputError("face landmarks are degenerate: the outer eye corners coincide or are not finite")
    # Row vectors: p @ R is R^T p, camera -> canonical face frame.
    return ((p - p.sum(axis=0) / len(p)) @ rotation_of(matrix)) / size


def geometric_features(landmarks: np.ndarray, image_size: tuple[int, int], matrix: np.ndarray) -> np.ndarray:
    """The named geometric features (:data:`GEOMETRIC_FEATURES`) of one face, shape (F,).

    Pose-normalised and scale-free; NaN landmarks give NaN features.
    """
    q = face_frame(landmarks, image_size, matrix, _POINTS)
    return _MATRIX @ q.ravel()
