"""Pure appearance cues for action units: skin texture in small patches aligned with the head.

Some actions show less as landmark motion than as texture: the corrugator's vertical furrows
between the brows (AU04), the wrinkles across the nose root (AU09), crow's feet beside the eye
(AU06), the dimple beside the lip corner (AU14). OpenFace reads such signs from HOG features of
its aligned face. We sample a few small patches instead, each placed by landmarks and oriented by
the rigid head fit of :mod:`.geometry` (a tilted or turned head gives the same patch), at a fixed
physical resolution (:data:`MM_PER_SAMPLE`: creases are 1-2 mm wide), from the green channel (skin
shading shows best there: red light scatters under the skin and blurs creases).

Each cue is the log of the patch's RMS Sobel gradient (in a chosen direction) over its mean
brightness: a Weber contrast, so a change of lighting gain cancels, and the person's running
baseline turns it into "how many times more crease contrast than at rest". All patches of a face
are sampled in one ``cv2.remap`` call. A patch that leaves the image gives NaN (no evidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from avatar_bridge.facs.geometry import STABLE_POINTS, camera_points, rigid_fit

#: Physical size of one patch sample (mm on the canonical face, whose eye corners are 8.9 cm apart).
MM_PER_SAMPLE = 1.0
#: Most sub-samples per sample side when the face is large (k x k averaged, against aliasing).
MAX_SUPERSAMPLE = 3
#: Intensity floor (0-255 scale) added before logs, so a flat or black patch stays finite.
EPS_INTENSITY = 4.0


@dataclass(frozen=True)
class PatchSpec:
    """Where a patch lies and which creases it measures.

    ``anchor``: landmarks whose mean is the patch centre; ``offset``: a shift from it in the face
    frame (cm; +x is lateral when ``mirror`` is set for the subject's right side, else towards the
    subject's left; +y up); ``size``: (width, height) in cm; ``cue``: ``"gx"`` (horizontal
    gradients: vertical creases), ``"gy"`` (horizontal creases) or ``"g"`` (creases of any direction).
    """

    anchor: tuple[int, ...]
    offset: tuple[float, float]
    size: tuple[float, float]
    cue: str
    mirror: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of samples."""
        step = MM_PER_SAMPLE / 10.0
        return max(3, round(self.size[1] / step)), max(3, round(self.size[0] / step))


# Canonical positions (cm, MediaPipe's canonical face): glabella between landmarks 9 (y 4.9) and
# 8 (y 4.0), inner brow heads at x +-1.2-1.4 (55/285, 107/336); nose root 168 (y 3.3) and bridge 6
# (y 2.5); outer eye corners 33/263 at x -+4.45, y 2.66; lip corners 61/291 at x -+2.46, y -4.34.
_PATCHES: dict[str, tuple[PatchSpec, ...]] = {
    # Corrugator draws the brow heads together and folds the skin between them into vertical furrows.
    "glabella_furrows": (PatchSpec((9, 8), (0.0, 0.0), (2.0, 1.6), "gx"),),
    # Levator labii alaeque nasi and nasalis wrinkle the skin across the nose root: horizontal lines.
    "nose_wrinkles": (PatchSpec((168, 6), (0.0, 0.0), (1.6, 1.4), "gy"),),
    # Orbicularis oculi (orbital part) gathers the skin lateral to the outer eye corner: crow's feet.
    "crows_feet": (
        PatchSpec((263,), (1.0, -0.1), (1.2, 1.6), "g"),
        PatchSpec((33,), (1.0, -0.1), (1.2, 1.6), "g", mirror=True),
    ),
    # Buccinator pulls the lip corner back into the cheek and folds a dimple just lateral to it.
    "corner_dimple": (
        PatchSpec((291,), (0.7, 0.0), (0.8, 1.2), "gx"),
        PatchSpec((61,), (0.7, 0.0), (0.8, 1.2), "gx", mirror=True),
    ),
}
#: Names of the appearance features, in the order :func:`appearance_features` returns them.
APPEARANCE_FEATURES: tuple[str, ...] = tuple(_PATCHES)

_SPECS: tuple[PatchSpec, ...] = tuple(s for specs in _PATCHES.values() for s in specs)
_FEATURE_OF_SPEC = np.array([k for k, specs in enumerate(_PATCHES.values()) for _ in specs])
_ANCHORS = np.zeros((len(_SPECS), 478))
for _k, _s in enumerate(_SPECS):
    _ANCHORS[_k, list(_s.anchor)] = 1.0 / len(_s.anchor)
_OFFSETS = np.array([s.offset for s in _SPECS])  # (P, 2) cm
_MIRROR = np.array([-1.0 if s.mirror else 1.0 for s in _SPECS])
_STABLE_ROWS = np.array(STABLE_POINTS)


@cache
def _grid(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample positions of every patch, k x k sub-samples each: (u, v) in cm (u along the patch's
    x axis, v up) and the patch index of each position; patches laid out one after another."""
    step = MM_PER_SAMPLE / 10.0
    us, vs, owner = [], [], []
    for p, spec in enumerate(_SPECS):
        rows, cols = spec.shape
        sub = (np.arange(k) + 0.5) / k
        u = (np.arange(cols)[:, None] + sub[None, :]).ravel() * step - 0.5 * cols * step
        v = 0.5 * rows * step - (np.arange(rows)[:, None] + sub[None, :]).ravel() * step
        vv, uu = np.meshgrid(v, u, indexing="ij")
        us.append(uu.ravel())
        vs.append(vv.ravel())
        owner.append(np.full(uu.size, p))
    return np.concatenate(us), np.concatenate(vs), np.concatenate(owner)


def head_axes(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image directions (pixels per canonical cm) of the face's +x (subject's left) and +y (up) axes."""
    rot, scale, _ = rigid_fit(camera_points(landmarks[_STABLE_ROWS], image_size))
    # camera axes have +y up; image rows grow downwards.
    return scale * np.array([rot[0, 0], -rot[1, 0]]), scale * np.array([rot[0, 1], -rot[1, 1]])


def crease_energy(patch: np.ndarray, cue: str) -> float:
    """log of a patch's RMS Sobel gradient (``gx``, ``gy`` or ``g`` both) over its mean brightness."""
    p = patch.astype(np.float32, copy=False)
    energy = 0.0
    if cue in ("gx", "g"):
        d = p[:, 2:] - p[:, :-2]
        gx = d[:-2] + 2.0 * d[1:-1] + d[2:]
        energy += float(np.mean(gx * gx))
    if cue in ("gy", "g"):
        d = p[2:] - p[:-2]
        gy = d[:, :-2] + 2.0 * d[:, 1:-1] + d[:, 2:]
        energy += float(np.mean(gy * gy))
    return 0.5 * math.log(energy + EPS_INTENSITY**2) - math.log(float(p.mean()) + EPS_INTENSITY)


def sample_patches(image: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray | None]:
    """Every patch of :data:`_SPECS` from an RGB uint8 image: green channel, float32, face-aligned
    (rows top to bottom, columns lateral for mirrored patches); None for a patch leaving the image."""
    h, w = image.shape[:2]
    points = landmarks[:, :2].astype(np.float64) * np.array([w, h], np.float64)
    ex, ey = head_axes(landmarks, (w, h))
    px = math.sqrt(float(ex @ ex)) * MM_PER_SAMPLE / 10.0  # image pixels per sample
    k = min(MAX_SUPERSAMPLE, max(1, math.ceil(px - 0.5)))
    u, v, owner = _grid(k)
    ax = _MIRROR[:, None] * ex[None, :]  # (P, 2) each patch's x axis in the image
    centres = _ANCHORS @ points + _OFFSETS[:, :1] * ax + _OFFSETS[:, 1:] * ey
    xy = centres[owner] + u[:, None] * ax[owner] + v[:, None] * ey
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    starts = np.searchsorted(owner, np.arange(len(_SPECS)))
    ok = np.logical_and.reduceat(inside, starts)
    if not ok.any() or not np.all(np.isfinite(xy)):
        return [None] * len(_SPECS)
    lo = np.maximum(np.floor(xy[inside].min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(xy[inside].max(axis=0)).astype(int) + 1, (w, h))
    roi = image[lo[1] : hi[1], lo[0] : hi[0]]
    maps = (xy - lo).astype(np.float32).reshape(1, -1, 2)
    values = cv2.remap(roi, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0, :, 1]
    out: list[np.ndarray | None] = []
    for p, spec in enumerate(_SPECS):
        if not ok[p]:
            out.append(None)
            continue
        rows, cols = spec.shape
        block = values[starts[p] : starts[p] + rows * cols * k * k].astype(np.float32)
        out.append(block.reshape(rows, k, cols, k).mean(axis=(1, 3)) if k > 1 else block.reshape(rows, cols))
    return out


def appearance_features(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The appearance features (:data:`APPEARANCE_FEATURES`) of one face in an RGB uint8 image.

    ``landmarks`` (478, 3) normalised (MediaPipe's). Bilateral cues average the two sides (a side
    that leaves the image is left out). Shape (A,), NaN where nothing could be measured.
    """
    total = np.zeros(len(APPEARANCE_FEATURES))
    count = np.zeros(len(APPEARANCE_FEATURES))
    for p, patch in enumerate(sample_patches(image, landmarks)):
        if patch is not None:
            total[_FEATURE_OF_SPEC[p]] += crease_energy(patch, _SPECS[p].cue)
            count[_FEATURE_OF_SPEC[p]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
