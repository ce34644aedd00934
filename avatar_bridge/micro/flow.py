"""Aligned face crops and dense optical flow per region (OpenCV), with rigid nose motion removed.

``aligned_face`` maps the face onto a 128 x 128 square by a similarity fixed by the two eye
centres (eye corners, which blinks barely move); ``region_crops`` cuts the three 64 x 64 regions
of the seed dissertation (left eye and brow, right eye and brow, mouth) that the classifiers use.
Flow is measured from a reference image (the neutral face, refreshed while nothing happens) to the
current one; the mean flow of the nose box is subtracted, leaving non-rigid motion only.
"""

from __future__ import annotations

from dataclasses import dataclass

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
#: Nose box (x0, y0, x1, y1) in the aligned face, taken as rigid.
NOSE_BOX = (52, 44, 76, 80)
#: Pixels of the aligned face per pixel at 640 px face width (the face is about 115 px wide here).
UNITS_PER_ALIGNED_PX = 640.0 / 115.0


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


def strain_magnitude(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude per pixel, sqrt(exx^2 + eyy^2 + 2 exy^2), from an (H, W, 2) flow."""
    ux_y, ux_x = np.gradient(flow[..., 0])
    uy_y, uy_x = np.gradient(flow[..., 1])
    exy = 0.5 * (ux_y + uy_x)
    return np.sqrt(ux_x**2 + uy_y**2 + 2.0 * exy**2)


def region_flow(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per crop (CROPS order): mean non-rigid flow magnitude and mean strain, in px at 640 px face width.

    The nose box's mean flow (the rigid part: head motion, tracking wobble) is subtracted first.
    """
    x0, y0, x1, y1 = NOSE_BOX
    rigid = flow[y0:y1, x0:x1].reshape(-1, 2).mean(axis=0)
    f = flow - rigid
    strain = strain_magnitude(f)
    mags, strains = [], []
    for x, y in CROPS.values():
        sl = (slice(y, y + CROP_SIZE), slice(x, x + CROP_SIZE))
        mean_vec = f[sl].reshape(-1, 2).mean(axis=0)
        mags.append(float(np.hypot(*mean_vec)) + float(np.hypot(f[sl][..., 0], f[sl][..., 1]).mean()))
        strains.append(float(strain[sl].mean()))
    return np.array(mags) * UNITS_PER_ALIGNED_PX, np.array(strains) * UNITS_PER_ALIGNED_PX


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """method: 'dis' (OpenCV DIS, ultrafast preset) or 'farneback'. refresh: seconds between
    reference refreshes while no event is open."""

    method: str = "dis"
    refresh: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("dis", "farneback"):
            raise InputError(f"flow method must be 'dis' or 'farneback', got {self.method!r}")


class RegionFlow:
    """Dense flow from a reference aligned face to the current one, per region (one per face)."""

    def __init__(self, options: FlowOptions | None = None) -> None:
        self.options = options or FlowOptions()
        self._dis = (
            cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            if self.options.method == "dis"
            else None
        )
        self.reference: np.ndarray | None = None
        self.ref_time = -np.inf

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 2, 5, 1.1, 0)

    def update(self, frame: Frame | np.ndarray, face: FaceObservation, t: float, frozen: bool) -> np.ndarray:
        """(6,) magnitudes then strains for (left_eye, right_eye, mouth); zeros on the first frame."""
        cur = grey(aligned_face(frame, face))
        if self.reference is None or (not frozen and t - self.ref_time >= self.options.refresh):
            self.reference, self.ref_time = cur, t
            return np.zeros(6)
        mags, strains = region_flow(self._flow(self.reference, cur))
        return np.concatenate([mags, strains])

    def reset(self) -> None:
        self.reference, self.ref_time = None, -np.inf
