"""The aligned face and its region crops (OpenCV).

``aligned_face`` maps the face onto a 128 x 128 square by a similarity fixed by the two eye
centres (eye corners, which blinks barely move); ``region_crops`` cuts the three 64 x 64 regions
of the seed dissertation (left eye and brow, right eye and brow, mouth) that the classifiers use.
The spotter's optical flow on this aligned face is in ``micro.spotting.flowtracks``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.records import FaceObservation, Frame

ALIGNED_SIZE = 128
CROP_SIZE = 64
#: Where the eye centres land in the 128 x 128 face (image left = subject's right eye).
EYE_RIGHT_AT = (38.0, 44.0)
EYE_LEFT_AT = (90.0, 44.0)
#: (x0, y0) of each 64 x 64 crop in the aligned face; sides are the subject's own.
CROPS: dict[str, tuple[int, int]] = {"left_eye": (64, 8), "right_eye": (0, 8), "mouth": (32, 64)}
#: Eye-corner landmarks: subject's right eye (33, 133), left eye (362, 263).
_EYE_CORNERS = [33, 133, 362, 263]


def _eye_centres(face: FaceObservation) -> tuple[float, float, float, float]:
    """(x, y) of the subject's right then left eye centre in pixels."""
    w, h = face.image_size
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = face.landmarks[_EYE_CORNERS, :2].tolist()
    return (x0 + x1) * w / 2.0, (y0 + y1) * h / 2.0, (x2 + x3) * w / 2.0, (y2 + y3) * h / 2.0


def alignment_similarity(face: FaceObservation, size: int = ALIGNED_SIZE) -> tuple[float, ...]:
    """(c, s, tx, ty) of the similarity [[c, -s, tx], [s, c, ty]] that :func:`alignment_matrix` gives.

    Plain float arithmetic: it runs for every face of every frame (the spotter's flow), where
    NumPy's per-call overhead on two points cost three times the maths.
    """
    rx, ry, lx, ly = _eye_centres(face)
    k = size / ALIGNED_SIZE
    ax, ay = EYE_RIGHT_AT[0] * k, EYE_RIGHT_AT[1] * k
    dx, dy = EYE_LEFT_AT[0] * k - ax, EYE_LEFT_AT[1] * k - ay
    scale = math.hypot(dx, dy) / max(math.hypot(lx - rx, ly - ry), 1e-6)
    angle = math.atan2(dy, dx) - math.atan2(ly - ry, lx - rx)
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return c, s, ax - (c * rx - s * ry), ay - (s * rx + c * ry)


def alignment_matrix(face: FaceObservation, size: int = ALIGNED_SIZE) -> np.ndarray:
    """2x3 similarity mapping image pixels to the ``size`` x ``size`` aligned face."""
    c, s, tx, ty = alignment_similarity(face, size)
    return np.array([[c, -s, tx], [s, c, ty]])


def _image(frame: Frame | np.ndarray) -> np.ndarray:
    img = frame.image if isinstance(frame, Frame) else np.asarray(frame)
    if img.ndim not in (2, 3) or img.dtype != np.uint8:
        raise InputError(f"expected an RGB or grey uint8 image, got shape {img.shape} dtype {img.dtype}")
    return img


def aligned_face(frame: Frame | np.ndarray, face: FaceObservation, size: int = ALIGNED_SIZE,
                 matrix: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The face warped to ``size`` x ``size`` (same channels as the input); ``matrix``: a 2x3
    alignment to use instead of this face's own (say, one shared by the frames of a clip)."""
    img = _image(frame)
    m = alignment_matrix(face, size) if matrix is None else matrix
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def region_crops(frame: Frame | np.ndarray, face: FaceObservation,
                 matrix: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The three 64 x 64 regions ('left_eye', 'right_eye', 'mouth') of the 128 x 128 aligned face.

    Pure: the same frame and face always give the same crops. Channels follow the input (RGB in,
    RGB out; grey in, grey out), so classifiers choose grey or colour themselves. ``matrix``: as
    for :func:`aligned_face`.
    """
    return {name: crop.copy() for name, crop in crops_of(aligned_face(frame, face, matrix=matrix)).items()}


def crops_of(aligned: np.ndarray) -> dict[str, np.ndarray]:
    """The three 64 x 64 regions of an aligned face (views into it, :data:`CROPS`)."""
    if aligned.shape[:2] != (ALIGNED_SIZE, ALIGNED_SIZE):
        raise InputError(f"expected a {ALIGNED_SIZE} x {ALIGNED_SIZE} aligned face, got {aligned.shape}")
    return {name: aligned[y : y + CROP_SIZE, x : x + CROP_SIZE] for name, (x, y) in CROPS.items()}


def grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
