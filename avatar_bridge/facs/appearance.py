"""Pure appearance cues for action units: skin texture in small patches aligned with the head.

Some actions show less as landmark motion than as texture: the corrugator's vertical furrows
between the brows (AU04), crow's feet beside the eye (AU06). OpenFace reads such signs from HOG
features of its aligned face. We sample a few small patches instead, each placed by landmarks and
oriented by the rigid head fit of :mod:`.geometry` (a tilted or turned head gives the same
patch), at a fixed physical resolution (:data:`PATCH_SAMPLES` per side, :data:`MM_PER_SAMPLE`
apart), from the green channel (skin shading shows best there: red light scatters under the skin
and blurs creases).

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

from avatar_bridge.facs.geometry import head_fit

#: Samples along each side of every (square) patch.
PATCH_SAMPLES = 16
#: Distance between samples on the canonical face (mm; its eye corners are 8.9 cm apart): creases
#: are 1-2 mm wide, so a 16-sample patch spans 1.6 cm, about the glabella between the brow heads.
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
    subject's left; +y up); ``cue``: ``"gx"`` (horizontal gradients: vertical creases), ``"gy"``
    (horizontal creases) or ``"g"`` (creases of any direction). Every patch is a square of
    PATCH_SAMPLES x PATCH_SAMPLES samples, MM_PER_SAMPLE apart.
    """

    anchor: tuple[int, ...]
    offset: tuple[float, float]
    cue: str
    mirror: bool = False


# Canonical positions (cm, MediaPipe's canonical face): glabella between landmarks 9 (y 4.9) and
# 8 (y 4.0), inner brow heads at x +-1.2-1.4 (55/285, 107/336); outer eye corners 33/263 at
# x -+4.45, y 2.66. Why each patch and how the AUs use it: blendshapes/FACS_MAPPING.md.
_PATCHES: dict[str, tuple[PatchSpec, ...]] = {
    # Corrugator draws the brow heads together and folds the skin between them into vertical furrows.
    "glabella_furrows": (PatchSpec((9, 8), (0.0, 0.0), "gx"),),
    # Orbicularis oculi (orbital part) gathers the skin lateral to the outer eye corner: crow's feet.
    "crows_feet": (
        PatchSpec((263,), (1.0, -0.1), "g"),
        PatchSpec((33,), (1.0, -0.1), "g", mirror=True),
    ),
}
#: Names of the appearance features, in the order :func:`appearance_features` returns them.
APPEARANCE_FEATURES: tuple[str, ...] = tuple(_PATCHES)

_SPECS: tuple[PatchSpec, ...] = tuple(s for specs in _PATCHES.values() for s in specs)
_FEATURE_OF_SPEC = np.array([k for k, specs in enumerate(_PATCHES.values()) for _ in specs])
_ANCHOR_ROWS = np.array(sorted({i for s in _SPECS for i in s.anchor}))
_ANCHORS = np.zeros((len(_SPECS), len(_ANCHOR_ROWS)))  # patch centre = _ANCHORS @ anchor points
for _k, _s in enumerate(_SPECS):
    _ANCHORS[_k, np.searchsorted(_ANCHOR_ROWS, _s.anchor)] = 1.0 / len(_s.anchor)
_CUE_X = np.array([s.cue in ("gx", "g") for s in _SPECS], np.float32)
_CUE_Y = np.array([s.cue in ("gy", "g") for s in _SPECS], np.float32)
_SIDE = PATCH_SAMPLES * MM_PER_SAMPLE / 10.0  # cm


@cache
def _grid(k: int) -> np.ndarray:
    """(P, n, n, 2) float32 sample positions of every patch in the face frame (cm from the anchor; x
    along the patch's own x axis, so mirrored for the subject's right side; y up), n = k * PATCH_SAMPLES.
    """
    n = k * PATCH_SAMPLES
    t = _SIDE * ((np.arange(n) + 0.5) / n - 0.5)  # cm across the patch
    out = np.empty((len(_SPECS), n, n, 2))
    for p, s in enumerate(_SPECS):
        sign = -1.0 if s.mirror else 1.0
        out[p, :, :, 0] = sign * (s.offset[0] + t[None, :])
        out[p, :, :, 1] = s.offset[1] - t[:, None]  # rows top to bottom
    return out.astype(np.float32)


#: (P, 4, 2) outer corners of every patch in the face frame (cm from the anchor).
_CORNERS = np.array(
    [
        [((-1.0 if s.mirror else 1.0) * (s.offset[0] + a * _SIDE), s.offset[1] + b * _SIDE)
         for a in (-0.5, 0.5) for b in (-0.5, 0.5)]
        for s in _SPECS
    ]
)  # fmt: skip


def head_axes(
    landmarks: np.ndarray, image_size: tuple[int, int], fit: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Image directions (pixels per canonical cm) of the face's +x (subject's left) and +y (up) axes.

    ``fit``: the face's :func:`~.geometry.head_fit` in ``image_size`` pixels, when already computed.
    """
    rot, scale, _ = fit if fit is not None else head_fit(landmarks, image_size)
    # camera axes have +y up; image rows grow downwards.
    return scale * np.array([rot[0, 0], -rot[1, 0]]), scale * np.array([rot[0, 1], -rot[1, 1]])


def sample_patches(
    image: np.ndarray, landmarks: np.ndarray, fit: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every patch of one face: (P, n, n) float32 green channel, face-aligned (rows top to bottom,
    columns lateral on mirrored patches), and a (P,) mask of patches that lie inside the image."""
    h, w = image.shape[:2]
    size = np.array([w, h], np.float64)
    ex, ey = head_axes(landmarks, (w, h), fit)
    px = math.sqrt(float(ex @ ex)) * MM_PER_SAMPLE / 10.0  # image pixels per sample
    k = min(MAX_SUPERSAMPLE, max(1, math.floor(px)))  # at 2+ pixels per sample, average k x k
    axes = np.stack((ex, ey))  # face-frame cm -> image pixels
    centres = _ANCHORS @ (landmarks[_ANCHOR_ROWS, :2] * size)
    corners = _CORNERS @ axes + centres[:, None, :]  # (P, 4, 2)
    n_p = len(_SPECS)
    inside = ((corners >= 0) & (corners <= size - 1)).reshape(n_p, -1).all(axis=1)
    if not inside.any() or not np.isfinite(corners).all():
        return np.zeros((n_p, PATCH_SAMPLES, PATCH_SAMPLES), np.float32), np.zeros(n_p, bool)
    used = corners[inside].reshape(-1, 2)
    lo = np.floor(used.min(axis=0)).astype(int)
    hi = np.ceil(used.max(axis=0)).astype(int) + 1
    # Green channel only (see the module doc), copied out of the small region the patches cover.
    roi = np.ascontiguousarray(image[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1, 1])
    maps = (_grid(k).reshape(-1, 2) @ axes.astype(np.float32)).reshape(n_p, -1, 2)  # one 2-D product
    maps += (centres - lo).astype(np.float32)[:, None, :]
    values = cv2.remap(roi, maps.reshape(1, -1, 2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    n = PATCH_SAMPLES
    patches = values.reshape(n_p, n, k, n, k).astype(np.float32)
    patches = patches.mean(axis=(2, 4)) if k > 1 else patches.reshape(n_p, n, n)
    return patches, inside


def _patch_means(n_patches: int, interior: bool) -> np.ndarray:
    """(P, P*n*n) float32 weights: row p averages patch p of the patches stacked into one image,
    over its whole square or (``interior``) without its one-sample rim, where a 3x3 Sobel is not defined."""
    n = PATCH_SAMPLES
    w = np.zeros((n_patches, n_patches * n, n), np.float32)
    for k in range(n_patches):
        if interior:
            w[k, k * n + 1 : (k + 1) * n - 1, 1 : n - 1] = 1.0 / (n - 2) ** 2
        else:
            w[k, k * n : (k + 1) * n, :] = 1.0 / n**2
    return w.reshape(n_patches, -1)


def crease_energy(patches: np.ndarray, cue_x: np.ndarray, cue_y: np.ndarray) -> np.ndarray:
    """log of each patch's RMS Sobel gradient over its mean brightness (Weber contrast), (P,).

    ``patches`` (P, n, n), n = PATCH_SAMPLES; ``cue_x``/``cue_y`` (P,) weights of the horizontal
    gradient (vertical creases) and of the vertical gradient (horizontal creases). The gradients
    are taken on the patches stacked into one image (two OpenCV calls) and averaged over each
    patch's interior only, so neighbouring patches never mix.
    """
    n_p = len(patches)
    image = patches.reshape(n_p * PATCH_SAMPLES, PATCH_SAMPLES).astype(np.float32, copy=False)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    inner = _INTERIOR if n_p == len(_SPECS) else _patch_means(n_p, True)
    whole = _WHOLE if n_p == len(_SPECS) else _patch_means(n_p, False)
    energy = cue_x * (inner @ (gx * gx).ravel()) + cue_y * (inner @ (gy * gy).ravel())
    return 0.5 * np.log(energy + EPS_INTENSITY**2) - np.log(whole @ image.ravel() + EPS_INTENSITY)


_INTERIOR = _patch_means(len(_SPECS), True)
_WHOLE = _patch_means(len(_SPECS), False)


def appearance_features(image: np.ndarray, landmarks: np.ndarray, fit: tuple | None = None) -> np.ndarray:
    """The appearance features (:data:`APPEARANCE_FEATURES`) of one face in an RGB uint8 image.

    ``landmarks`` (478, 3) normalised (MediaPipe's). Bilateral cues average the two sides (a side
    that leaves the image is left out). Shape (A,), NaN where nothing could be measured. ``fit``:
    the face's :func:`~.geometry.head_fit` in this image's pixels, when already computed.
    """
    patches, inside = sample_patches(image, landmarks, fit)
    energy = crease_energy(patches, _CUE_X, _CUE_Y)
    n_feat = len(APPEARANCE_FEATURES)
    total = np.bincount(_FEATURE_OF_SPEC, weights=np.where(inside, energy, 0.0), minlength=n_feat)
    count = np.bincount(_FEATURE_OF_SPEC, weights=inside, minlength=n_feat)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
