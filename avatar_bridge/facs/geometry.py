"""Pure landmark geometry for action units: the face in its own frame, and named features.

MediaPipe landmarks live in image space, where turning the head changes every distance. We put
them in the face's own frame (+y up, +x to the subject's left, +z out of the face) by a rigid
similarity fit (Kabsch/Umeyama) of :data:`STABLE_POINTS` -- forehead, nose bridge, eye corners,
temples, which no facial action moves -- onto MediaPipe's canonical face. MediaPipe's own pose
matrix is fitted with jaw-line and cheek points too, so part of a jaw drop shows up as a head pitch
and leaks into every height; the stable-point fit does not. In that frame every feature below is a
*linear* function of the coordinates (a height difference along the face's own up axis, or a width
along its own left-right axis), so all of them come out of one small matrix product per face.

Features are in units of the canonical face's inter-ocular distance (outer eye corners, 8.9 cm;
the scale comes from the whole fit, not from two eye corners that squinting moves), so 0.01 is
about 1 mm. Bilateral features average the subject's two sides, like OpenFace's AUs.
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
    # Height of the lateral brow's upper edge above the eye line (AU02 up, AU04 down): the junction of
    # the middle and lateral thirds (105/334) and the lateral third (63/293). The brow tail on the
    # temple (70/300) and the lower contour (46/53, 276/283) are left out: they turn away from the
    # camera first, where MediaPipe's depth is least reliable, and hair covers them most often.
    "brow_outer_height": [(1.0, _Y, (105, 63, 334, 293)), _EYE_LINE],
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

#: Landmarks that do not move with facial actions: forehead midline and upper forehead, nose bridge,
#: the four eye corners and the temples / face sides at eye level. The jaw, lips, cheeks and brows are
#: left out on purpose, so an opening jaw or a raised brow cannot tilt the fitted head.
STABLE_POINTS: tuple[int, ...] = (
    10, 151, 9, 8, 168, 6, 197, 195, 33, 133, 263, 362, 108, 337, 67, 297, 127, 356, 234, 454, 162, 389,
)  # fmt: skip
#: The stable points on MediaPipe's canonical face mesh (cm, +x subject's left, +y up, +z out of the
#: face), from ``geometry_pipeline_metadata_landmarks`` in face_landmarker.task (Apache-2.0, Google).
_CANONICAL_STABLE = np.array(
    [
        [0.0, 8.261778, 4.481535], [0.0, 6.54539, 5.027311], [0.0, 4.885979, 5.385258],
        [0.0, 4.019042, 5.284764], [0.0, 3.271027, 5.236015], [0.0, 2.473255, 5.788627],
        [0.0, 1.728369, 6.31675], [0.0, 1.059413, 6.774605], [-4.445859, 2.663991, 3.173422],
        [-1.856432, 2.585245, 3.757904], [4.445859, 2.663991, 3.173422], [1.856432, 2.585245, 3.757904],
        [-1.6195, 6.599217, 4.921106], [1.6195, 6.599217, 4.921106], [-3.523964, 8.005976, 3.729163],
        [3.523964, 8.005976, 3.729163], [-7.743095, 2.364999, -2.005167], [7.743095, 2.364999, -2.005167],
        [-7.664182, 0.673132, -2.435867], [7.664182, 0.673132, -2.435867], [-7.555811, 4.106811, -0.991917],
        [7.555811, 4.106811, -0.991917],
    ],
    np.float64,
)  # fmt: skip
#: The canonical face's inter-ocular distance (outer eye corners, cm): the unit of every feature.
CANONICAL_IOD = float(_CANONICAL_STABLE[10, 0] - _CANONICAL_STABLE[8, 0])
_CANONICAL_CENTRE = _CANONICAL_STABLE.mean(axis=0)
_CANONICAL_CENTRED = _CANONICAL_STABLE - _CANONICAL_CENTRE
_CANONICAL_SPREAD = float((_CANONICAL_CENTRED**2).sum())

_POINTS: tuple[int, ...] = tuple(
    sorted({i for terms in _FEATURE_TERMS.values() for _, _, idx in terms for i in idx} | set(STABLE_POINTS))
)
_SLOT = {p: k for k, p in enumerate(_POINTS)}
_STABLE_SLOTS = np.array([_SLOT[p] for p in STABLE_POINTS])
_STABLE_ROWS = np.array(STABLE_POINTS)
_POINT_ROWS = np.array(_POINTS)


def _feature_matrix() -> np.ndarray:
    """(F, 3K) matrix M with features = M @ face_points[_POINTS].ravel()."""
    m = np.zeros((len(GEOMETRIC_FEATURES), len(_POINTS), 3), np.float64)
    for f, terms in enumerate(_FEATURE_TERMS.values()):
        for coef, axis, idx in terms:
            for i in idx:
                m[f, _SLOT[i], axis] += coef / len(idx)
    return m.reshape(len(GEOMETRIC_FEATURES), -1)


_MATRIX = _feature_matrix()


def camera_points(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """MediaPipe normalised landmarks -> camera-like axes in pixels (+x right, +y up, +z to the camera)."""
    w, h = image_size
    return landmarks.astype(np.float64) * np.array([w, -h, -w], np.float64)


def rotation_of(matrix: np.ndarray) -> np.ndarray:
    """The 3x3 rotation in a pose matrix (columns normalised: MediaPipe's matrix may carry scale)."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    return r / np.sqrt((r * r).sum(axis=0))


def rigid_fit(stable: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Similarity fit (Kabsch/Umeyama) of the canonical stable points onto observed ones.

    ``stable`` (len(STABLE_POINTS), 3) camera points. Returns (R, s, c) with
    ``stable ~ s * canonical @ R.T + c``: R the head rotation, s pixels per canonical cm.
    """
    centre = stable.sum(axis=0) / len(stable)
    h = (stable - centre).T @ _CANONICAL_CENTRED
    u, sv, vt = np.linalg.svd(h)
    (a, b, c), (d, e, f), (g, k, m) = h.tolist()
    if a * (e * m - f * k) - b * (d * m - f * g) + c * (d * k - e * g) < 0:
        u[:, 2] = -u[:, 2]  # a reflection would fit better: take the nearest proper rotation
        sv[2] = -sv[2]
    rot = u @ vt
    scale = float(sv.sum()) / _CANONICAL_SPREAD
    return rot, scale, centre - scale * (_CANONICAL_CENTRE @ rot.T)


def _checked_fit(stable: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """:func:`rigid_fit`, raising InputError for degenerate (non-finite or coincident) points."""
    if not np.all(np.isfinite(stable)):
        raise InputError("face landmarks are degenerate: the stable face points are not finite")
    fit = rigid_fit(stable)
    if not fit[1] > 1e-9:
        raise InputError("face landmarks are degenerate: the stable face points coincide")
    return fit


def head_fit(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, float, np.ndarray]:
    """The rigid head fit (R, s, c) of one face (see :func:`rigid_fit`), in ``image_size`` pixels.

    Computed once per face, it can be handed to :func:`geometric_features` and to the appearance
    cues, which both work in this frame.
    """
    return _checked_fit(camera_points(landmarks[_STABLE_ROWS], image_size))


def _to_face(p: np.ndarray, stable: np.ndarray, fit: tuple | None = None) -> np.ndarray:
    """Camera points -> the rigidly fitted face frame, in canonical inter-ocular units."""
    rot, scale, shift = fit if fit is not None else _checked_fit(stable)
    # Row vectors: (p - shift) @ R is R^T (p - shift), camera -> canonical face frame.
    return ((p - shift) @ rot) / (scale * CANONICAL_IOD)


def face_frame(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    matrix: np.ndarray | None = None,
    points: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Landmarks in the face's own frame, in units of the canonical inter-ocular distance.

    ``landmarks`` (478, 3) normalised as MediaPipe gives them. The head is found by a rigid
    (similarity) fit of :data:`STABLE_POINTS` onto MediaPipe's canonical face, so expressions do
    not tilt it; ``matrix`` (a 4x4 head pose, canonical face -> camera) is the older alternative:
    its rotation is used instead, with the outer-eye-corner distance as the scale. Returns
    (478, 3), or (len(points), 3) for a subset.
    """
    p_all = camera_points(landmarks, image_size)
    p = p_all if points is None else p_all[list(points)]
    if matrix is None:
        return _to_face(p, p_all[list(STABLE_POINTS)])
    d = p_all[EYE_OUTER[0]] - p_all[EYE_OUTER[1]]
    size = float(np.sqrt(d @ d))
    if not size > 1e-9:  # also catches NaN
        raise InputError("face landmarks are degenerate: the outer eye corners coincide or are not finite")
    return ((p - p.sum(axis=0) / len(p)) @ rotation_of(matrix)) / size


def geometric_features(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    matrix: np.ndarray | None = None,
    fit: tuple[np.ndarray, float, np.ndarray] | None = None,
) -> np.ndarray:
    """The named geometric features (:data:`GEOMETRIC_FEATURES`) of one face, shape (F,).

    Pose-normalised (rigid fit, or ``matrix`` when given, see :func:`face_frame`) and scale-free.
    ``fit``: this face's :func:`head_fit` when already computed (same ``image_size``).
    """
    if matrix is not None:
        return _MATRIX @ face_frame(landmarks, image_size, matrix, _POINTS).ravel()
    p = camera_points(landmarks[_POINT_ROWS], image_size)
    return _MATRIX @ _to_face(p, p[_STABLE_SLOTS], fit).ravel()
