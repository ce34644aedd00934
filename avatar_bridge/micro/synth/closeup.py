"""A close-up view of a tracked face: the video as a high-resolution camera framed on the face would see it.

The spec gives micro-expression amplitudes "at 640 px face width"; the sample videos hold faces
150-225 px wide. The generator therefore crops a square box that follows the face slowly (a
centred moving average of its position, so the virtual camera pans smoothly and never jitters)
and scales it so that the median face width is ``face_width`` pixels, then injects the events in
that image: an amplitude of 2 px is then 2 real pixels of the video being tracked. The source
tracking is mapped into the close-up's coordinates, so no re-tracking is needed to plan or warp.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.features import face_width_px
from avatar_bridge.records import FaceObservation, TrackingResult


@dataclass(frozen=True, slots=True)
class Closeup:
    """Per-frame crop boxes of one video: top-left corners (N, 2) in source pixels, and the zoom.

    ``size``: side of the square output in pixels; ``zoom``: output pixels per source pixel.
    """

    size: int
    zoom: float
    corners: np.ndarray  # (N, 2) source-pixel top-left corner of each frame's box

    def matrix(self, i: int) -> np.ndarray:
        """2x3 affine from source pixels to close-up pixels for frame ``i``."""
        x0, y0 = self.corners[i]
        z = self.zoom
        return np.array([[z, 0.0, -z * x0], [0.0, z, -z * y0]])

    def image(self, image: np.ndarray, i: int) -> np.ndarray:
        """The close-up of source ``image`` (frame ``i``), bicubic, borders replicated."""
        return cv2.warpAffine(image, self.matrix(i), (self.size, self.size), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)  # fmt: skip

    def result(self, r: TrackingResult, i: int) -> TrackingResult:
        """Tracking of the source frame ``i`` expressed in the close-up's coordinates."""
        return replace(r, image_size=(self.size, self.size), faces=tuple(self._face(f, i) for f in r.faces))

    def _face(self, face: FaceObservation, i: int) -> FaceObservation:
        w, h = face.image_size
        x0, y0 = self.corners[i]
        lm = face.landmarks.astype(np.float64)
        k = self.zoom / self.size
        out = np.stack([(lm[:, 0] * w - x0) * k, (lm[:, 1] * h - y0) * k, lm[:, 2] * w * k], axis=1)
        return replace(face, landmarks=out.astype(np.float32), image_size=(self.size, self.size))

    def as_dict(self) -> dict:
        return {"size": self.size, "zoom": self.zoom}


def plan_closeup(results: list[TrackingResult], size: int = 800, face_width: float = 640.0,
                 smooth: float = 1.0) -> Closeup:  # fmt: skip
    """Boxes for every frame of ``results`` (source tracking, one entry per frame).

    ``size``: output side in pixels; ``face_width``: wanted median face width (landmarks 234-454)
    in output pixels; ``smooth``: seconds of the centred moving average of the face centre.
    Frames without a face keep the nearest tracked frame's centre.
    """
    if not results:
        raise InputError("no frames to frame a close-up on")
    if not size >= 64 or not face_width > 0 or face_width >= size:
        raise InputError(f"need 64 <= size and 0 < face_width < size, got {size}, {face_width}")
    have = np.array([bool(r.faces) for r in results])
    if not have.any():
        raise InputError("no face was found in the video; nothing to frame")
    widths = [face_width_px(r.faces[0]) for r in results if r.faces]
    zoom = face_width / float(np.median(widths))
    centres = np.full((len(results), 2), np.nan)
    for i, r in enumerate(results):
        if r.faces:
            p = r.faces[0].landmarks_px[:468, :2]
            centres[i] = (p.min(axis=0) + p.max(axis=0)) / 2.0
    idx = np.flatnonzero(have)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(results))), 0, len(idx) - 1)]
    before = idx[np.clip(np.searchsorted(idx, np.arange(len(results))) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(before - np.arange(len(results))) < np.abs(nearest - np.arange(len(results))),
                    before, nearest)  # fmt: skip
    centres = centres[pick]
    ts = np.array([r.timestamp for r in results])
    smoothed = np.empty_like(centres)
    for i, t in enumerate(ts):
        win = np.abs(ts - t) <= smooth / 2.0
        smoothed[i] = centres[win].mean(axis=0)
    corners = smoothed - size / (2.0 * zoom)
    return Closeup(int(size), float(zoom), corners)
