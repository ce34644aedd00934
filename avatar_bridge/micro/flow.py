"""The aligned face and its region crops (OpenCV).

``aligned_face`` maps the face onto a 128 x 128 square by a similarity fixed by the two eye
centres (eye corners, which blinks barely move); ``region_crops`` cuts the three 64 x 64 regions
of the seed dissertation (left eye and brow, right eye and brow, mouth) that the classifiers use.
The spotter's optical flow on this aligned face is in ``micro.spotting.flowtracks``.
"""

from __future__ import annotations

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


def _eye_centres(face: FaceObservation) -> tuple[np.ndarray, np.ndarray]:
    p = face.landmarks_px[:, :2]
    return (p[33] + p[133]) / 2.0, (p[362] + p[263]) / 2.0


def alignment_matrix(face: FaceObservation, size: int = ALIGNED_SIZE) -> np.ndarray:
    """2x3 similarity mapping image pixels to the ``size`` x ``size`` aligned face."""
    right, left = _eye_centres(face)
    k = size / ALIGNED_SIZE
    src = np.float32([right, left])
    dst = np.float32([[EYE_RIGHT_AT[0] * k, EYE_RIGHT_AT[1] * k], [EYE_LEFT_AT[0] * k, EYE_LEFT_AT[1] * k]])
    v_src, v_dst = src[1] - src[0], dst[1] - dst[0]
    scale = float(np.hypot(*v_dst) / max(np.hypot(*v_src), 1e-6))
    angle = float(np.arctan2(v_dst[1], v_dst[0]) - np.arctan2(v_src[1], v_src[0]))
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    t = dst[0] - rot @ src[0]
    return np.hstack([rot, t[:, None]]).astype(np.float64)


def _image(frame: Frame | np.ndarray) -> np.ndarray:
    img = frame.image if isinstance(frame, Frame) else np.asarray(frame)
    if img.ndim not in (2, 3) or img.dtype != np.uint8:
        raise InputError(f"expected an RGB or grey uint8 image, got shape {img.shape} dtype {img.dtype}")
    return img


def aligned_face(frame: Frame | np.ndarray, face: FaceObservation, size: int = ALIGNED_SIZE) -> np.ndarray:
    """The face warped to ``size`` x ``size`` (same channels as the input)."""
    img = _image(frame)
    return cv2.warpAffine(img, alignment_matrix(face, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def region_crops(frame: Frame | np.ndarray, face: FaceObservation) -> dict[str, np.ndarray]:
    """The three 64 x 64 regions ('left_eye', 'right_eye', 'mouth') of the 128 x 128 aligned face.

    Pure: the same frame and face always give the same crops. Channels follow the input (RGB in,
    RGB out), so classifiers choose grey or colour themselves.
    """
    face_img = aligned_face(frame, face)
    return {name: face_img[y : y + CROP_SIZE, x : x + CROP_SIZE].copy() for name, (x, y) in CROPS.items()}


def grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
