"""Sub-pixel motion tracks of small face patches from optical flow on the aligned face (OpenCV + NumPy).

MediaPipe landmarks follow only 40-75 % of a 1-2 px movement; image motion does better. Each frame
the face is aligned to a small square (:func:`micro.flow.alignment_matrix`, eye centres fixed; a
face at least twice its size is first greyed and averaged down, so that each aligned pixel averages
the camera's pixels instead of sampling 4 of them: less sensor noise and aliasing) and
a Lucas-Kanade flow is solved per patch (brows, mouth, chin; the patches are data in
``blendshapes/micro_spotting.toml``) between a reference image and the current one. The reference
is refreshed every ``refresh`` seconds and the flows are chained, so each patch gets a continuous
track of its position: a "virtual landmark" that moves with the skin. The nose patch's flow (rigid
motion and alignment wobble) is subtracted. Tracks are in pixels at 640 px face width.

The reference is kept while the caller says something moves (``hold``), so a movement is
measured against one image, not a chain. One LK step on lightly blurred images suits the
sub-pixel shifts involved; a frame reads only the patches' pixels (one gather, one sum per patch),
and the reference's gradients and structure tensors are computed once per refresh, so every patch
together costs less than the warp of the face (cost measured in ``benchmarks/bench_spotting.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from avatar_bridge.micro.flow import ALIGNED_SIZE, alignment_similarity, grey
from avatar_bridge.records import FaceObservation, Frame

#: Face width (landmarks 234-454) in pixels of the 128 x 128 aligned face.
ALIGNED_FACE_WIDTH = 115.0


@dataclass(frozen=True, slots=True)
class Patch:
    """One tracked patch: name, region ('left_eye', 'right_eye', 'mouth', 'nose'), side
    ('left', 'right', 'both'), box (x0, y0, x1, y1) in the 128 x 128 aligned face."""

    name: str
    region: str
    side: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class FlowTrackOptions:
    """refresh: seconds between reference refreshes (the flows are chained across them); while
    the caller holds the reference (an event is open) it is kept up to ``max_age`` seconds.
    blur: Gaussian sigma (aligned px) applied before the flow. min_texture: least structure-tensor
    determinant (per pixel^2, grey levels^4) for a patch's flow to count; flatter patches report 0.
    antialias: when the face is at least twice the aligned face's size, grey its box and halve it
    by pixel averages before the warp, while it stays at least that size: each aligned pixel then
    averages many of the camera's pixels instead of a bilinear sample of 4 (on a 640 px face, 16),
    with less of their noise and aliasing; off, or on a smaller face, the colour face is warped
    directly. averaged_blur: the blur for an averaged face, which needs less (chosen on the
    development recordings, at 640 px face width; ``blur`` was chosen there before the averaging).
    light: match the light of each frame to the reference's before the flow, by one gain for the
    whole face (the ratio of the patches' summed grey levels), so that a change of light (a lamp,
    a cloud, the camera's exposure or flicker) is not read as movement; off, raw grey levels are
    compared, and a face growing brighter reads as patches moving. A gain and an offset per patch
    were tried too: noisier, they made more false events (``docs/micro_expressions.md``).
    """

    refresh: float = 0.5
    max_age: float = 1.5
    blur: float = 1.0
    min_texture: float = 1e-3
    antialias: bool = True
    averaged_blur: float = 0.5
    light: bool = True


class FlowTracks:
    """Chained Lucas-Kanade tracks of ``patches`` for one face; ``update`` -> (P, 2) positions."""

    def __init__(self, patches: tuple[Patch, ...], rigid: tuple[int, int, int, int],
                 options: FlowTrackOptions | None = None) -> None:  # fmt: skip
        self.options = options or FlowTrackOptions()
        self.patches = patches
        boxes = [p.box for p in patches] + [rigid]
        self._boxes = np.array(boxes)
        x0, y0, x1, y1 = self._boxes.T
        n = ALIGNED_SIZE
        # The flat index in the aligned face of every box's pixels, box after box, and where each
        # box starts: a frame's flow reads only these (a third of the face), with one gather and
        # one sum per box.
        self._pixels = np.concatenate(
            [(np.arange(b, d)[:, None] * n + np.arange(a, c)[None, :]).ravel() for a, b, c, d in boxes]
        )
        self._starts = np.cumsum([0] + [(c - a) * (d - b) for a, b, c, d in boxes])[:-1]
        self._area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
        self._buffer: np.ndarray | None = None  # frame-sized; holds the pixels the warp reads
        self._ref: np.ndarray | None = None  # the reference's box pixels (float64)
        self._ref_sum = 0.0  # and their sum: the light a frame's is matched to (``light``)
        self._grad: np.ndarray | None = None  # (2, N) its x and y gradients at those pixels
        self._inv: np.ndarray | None = None  # (B, 2, 2) inverse structure tensors of the reference
        self._ok: np.ndarray | None = None
        self._ref_t = -np.inf
        self._base = np.zeros((len(patches), 2))  # chained position at the last refresh
        self._last = np.zeros((len(patches), 2))
        self.scale = 640.0 / ALIGNED_FACE_WIDTH  # aligned px -> px at 640 px face width
        #: Mean grey level (0-255) of the last aligned face: the face's brightness, for free.
        self.brightness = float("nan")
        # The blur as one separable filter from uint8 to float32: the kernel GaussianBlur picks for
        # a float image, and the same result as converting and then blurring, without the copy; one
        # for a face warped directly, one for an averaged face.
        self._kernels = tuple(
            cv2.getGaussianKernel(round(b * 8 + 1) | 1, b).astype(np.float32) if b > 0 else None
            for b in (self.options.blur, self.options.averaged_blur)
        )

    def reset(self) -> None:
        self._ref, self._grad, self._inv, self._ok = None, None, None, None
        self._ref_t = -np.inf
        self._base = np.zeros((len(self.patches), 2))
        self._last = self._base.copy()

    def image(self, frame: Frame | np.ndarray, face: FaceObservation) -> np.ndarray:
        """The aligned grey face, blurred, float32 (what the patch flows read); sets :attr:`brightness`."""
        g, averaged = self._align(frame, face)
        k = self._kernels[averaged]
        return cv2.sepFilter2D(g, cv2.CV_32F, k, k) if k is not None else g.astype(np.float32)

    def align(self, frame: Frame | np.ndarray, face: FaceObservation) -> np.ndarray:
        """The aligned grey face (128 x 128 uint8, a new array); sets :attr:`brightness`."""
        return self._align(frame, face)[0]

    def _align(self, frame: Frame | np.ndarray, face: FaceObservation) -> tuple[np.ndarray, bool]:
        """(the aligned grey face, whether it was averaged: ``antialias``); sets :attr:`brightness`."""
        img = frame.image if isinstance(frame, Frame) else frame
        n = ALIGNED_SIZE
        sim = cs, sn, u, v = alignment_similarity(face, n)
        # The aligned square's bounding box in the frame (+-2 px): what either path reads. The
        # inverse similarity in plain floats (cheaper than cv2.invertAffineTransform).
        k = 1.0 / (cs * cs + sn * sn)
        a, b, c, d = cs * k, sn * k, -sn * k, cs * k
        tx, ty = -(a * u + b * v), -(c * u + d * v)
        e = ALIGNED_SIZE - 1.0  # the square's corners: x and y each 0 or e
        xs = (tx + min(0.0, a * e) + min(0.0, b * e), tx + max(0.0, a * e) + max(0.0, b * e))
        ys = (ty + min(0.0, c * e) + min(0.0, d * e), ty + max(0.0, c * e) + max(0.0, d * e))
        h, w = img.shape[:2]
        # Reads beyond the frame replicate its edge: the box keeps at least one edge row and column.
        x0 = min(max(math.floor(xs[0]) - 2, 0), w - 1)
        y0 = min(max(math.floor(ys[0]) - 2, 0), h - 1)
        x1 = max(min(math.ceil(xs[1]) + 3, w), x0 + 1)
        y1 = max(min(math.ceil(ys[1]) + 3, h), y0 + 1)
        levels = int(math.log2(math.hypot(a, c))) if self.options.antialias else 0  # camera px per aligned px
        g = self._averaged(img, sim, (x0, y0, x1, y1), levels) if levels > 0 else None
        averaged = g is not None
        if g is None:
            # The warp samples scattered rows of the frame; on a large face their cache misses cost
            # more than copying the box into a buffer of the frame's size, in one sequential pass, at
            # the same place: the warp then reads the same values at the same coordinates.
            if self._buffer is None or self._buffer.shape != img.shape or self._buffer.dtype != img.dtype:
                self._buffer = np.empty_like(img)
            self._buffer[y0:y1, x0:x1] = img[y0:y1, x0:x1]
            m = np.array([[cs, -sn, u], [sn, cs, v]])
            g = grey(cv2.warpAffine(self._buffer, m, (n, n), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE))  # fmt: skip
        self.brightness = float(cv2.mean(g)[0])
        return g, averaged

    @staticmethod
    def _averaged(img: np.ndarray, sim: tuple[float, ...], box: tuple[int, int, int, int],
                  levels: int) -> np.ndarray | None:  # fmt: skip
        """The aligned grey face warped (``sim``: :func:`micro.flow.alignment_similarity`) from the
        face's box greyed and halved ``levels`` times by 2 x 2 pixel averages (OpenCV's fast path;
        the box grows to a multiple of 2**levels); None when the frame holds too little of the box
        to average (a face almost wholly outside it)."""
        q = 1 << levels
        x0, y0, x1, y1 = box
        h, w = img.shape[:2]
        x1 = min(x0 + q * -(-(x1 - x0) // q), w - (w - x0) % q)
        y1 = min(y0 + q * -(-(y1 - y0) // q), h - (h - y0) % q)
        if x1 - x0 < q or y1 - y0 < q:
            return None
        small = grey(img[y0:y1, x0:x1])
        for _ in range(levels):
            half = (small.shape[1] // 2, small.shape[0] // 2)
            small = cv2.resize(small, half, interpolation=cv2.INTER_AREA)
        # Pixel (j, i) of ``small`` averages the camera's pixels whose centre is (x0, y0) + q (j, i)
        # + (q - 1) / 2: the alignment, composed with that map.
        cs, sn, u, v = sim
        cx, cy = x0 + (q - 1) / 2.0, y0 + (q - 1) / 2.0
        ms = np.array([[cs * q, -sn * q, cs * cx - sn * cy + u], [sn * q, cs * q, sn * cx + cs * cy + v]])
        n = ALIGNED_SIZE
        return cv2.warpAffine(small, ms, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _set_reference(self, img: np.ndarray, t: float) -> None:
        ix = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        iy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        g = np.stack([ix.ravel()[self._pixels], iy.ravel()[self._pixels]]).astype(np.float64)
        a, c, b = self._sums(np.vstack([g * g, g[:1] * g[1:]]))  # xx, yy, xy
        det = a * c - b * b
        self._ok = det / self._area**2 > self.options.min_texture
        det = np.where(self._ok, det, 1.0)
        self._inv = np.stack([np.stack([c, -b], 1), np.stack([-b, a], 1)], 1) / det[:, None, None]
        self._ref = img.ravel()[self._pixels].astype(np.float64)
        self._ref_sum = float(self._ref.sum())
        self._grad, self._ref_t = g, t

    def _sums(self, values: np.ndarray) -> np.ndarray:
        """(K, B) sums of each row of ``values`` (K, N: per box pixel) over every box."""
        return np.add.reduceat(values, self._starts, axis=1)

    def flows(self, img: np.ndarray) -> np.ndarray:
        """(B, 2) LK displacement of each box (patches, then the rigid box) from the reference, aligned px."""
        assert self._ref is not None and self._grad is not None and self._inv is not None
        now = img.ravel()[self._pixels].astype(np.float64)
        if self.options.light:  # the face's light matched to the reference's: one gain
            now *= self._ref_sum / max(float(now.sum()), 1e-9)
        it = now - self._ref
        ex, ey = self._sums(self._grad * it)
        d = -np.einsum("bij,bj->bi", self._inv, np.stack([ex, ey], axis=1))
        return np.where(self._ok[:, None], d, 0.0)

    def update(
        self, frame: Frame | np.ndarray, face: FaceObservation, t: float, hold: bool = False
    ) -> np.ndarray:
        """(P, 2) track positions (x right, y up in the aligned face) in px at 640 px face width."""
        img = self.image(frame, face)
        if self._ref is None:
            self._set_reference(img, t)
            return self._last.copy()
        d = self.flows(img)
        rel = (d[:-1] - d[-1]) * self.scale
        rel[:, 1] = -rel[:, 1]  # image y down -> up
        self._last = self._base + rel
        age = t - self._ref_t
        if age >= self.options.max_age or (age >= self.options.refresh and not hold):
            self._base = self._last.copy()
            self._set_reference(img, t)
        return self._last.copy()
