"""Pure appearance cues for action units: skin texture in small patches aligned with the head.

Some actions show less as landmark motion than as texture: the corrugator's vertical furrows
between the brows (AU04), the nasalis wrinkles across the nose root (AU09), crow's feet beside the
eye (AU06), the dark iris and lid slit that disappear when the lids close (AU45). OpenFace reads
such signs from HOG features of its aligned face. We sample a few small patches instead, each
placed by landmarks and oriented by the rigid head fit of :mod:`.geometry` (so a tilted head gives
the same patch), at a fixed physical resolution (:data:`MM_PER_SAMPLE`), from the green channel
(skin shading shows best there: red light scatters under the skin and blurs creases).

Each cue is a log ratio, so a change of lighting gain cancels and the person's running baseline
turns it into "how many times more than at rest":

- oriented gradient energy (Sobel) relative to the patch's own brightness (Weber contrast), for
  creases of a known direction;
- eye darkness: the patch's median over its darkest tenth (iris, pupil, lid slit vs. skin).

A patch that falls outside the image gives NaN (no evidence).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from avatar_bridge.facs.geometry import STABLE_POINTS, camera_points, rigid_fit

#: Physical size of one patch sample (mm on the canonical face): creases are 1-2 mm wide.
MM_PER_SAMPLE = 1.0
#: Intensity floor (0-255 scale) added before logs, so a black patch is finite.
EPS_INTENSITY = 4.0


@dataclass(frozen=True)
class PatchSpec:
    """Where a patch lies and what it measures.

    ``anchor``: landmarks whose mean is the patch centre; ``offset``: a shift from it in the face
    frame (cm, +x lateral when ``mirror`` is set for the subject's right side, else subject's left;
    +y up); ``size``: (width, height) in cm; ``cue``: ``"gx"`` (energy of horizontal gradients:
    vertical creases), ``"gy"`` (horizontal creases), ``"g"`` (all creases) or ``"dark"``.
    """

    anchor: tuple[int, ...]
    offset: tuple[float, float]
    size: tuple[float, float]
    cue: str
    mirror: bool = False


# Canonical positions (cm, MediaPipe's canonical face): glabella between landmarks 9 (y 4.9) and
# 8 (y 4.0); inner brow heads at x +-1.2-1.4; nose root 168 (y 3.3), bridge 6 (y 2.5); outer eye
# corners 33/263 at x -+4.45, y 2.66; inner corners 133/362 at x -+1.86.
_PATCHES: dict[str, tuple[PatchSpec, ...]] = {
    # Corrugator draws the brow heads together and folds the skin between them into vertical furrows.
    "glabella_furrows": (PatchSpec((9, 8), (0.0, 0.0), (2.0, 1.6), "gx"),),
    # Nasalis / levator labii alaeque nasi wrinkle the skin across the nose root: horizontal lines.
    "nose_wrinkles": (PatchSpec((168, 6), (0.0, 0.0), (1.6, 1.4), "gy"),),
    # Orbicularis oculi (orbital part) gathers the skin lateral to the outer eye corner: crow's feet.
    "crows_feet": (
        PatchSpec((263,), (1.0, -0.1), (1.2, 1.6), "g"),
        PatchSpec((33,), (1.0, -0.1), (1.2, 1.6), "g", mirror=True),
    ),
    # The open fissure shows a dark iris and lash line; a closed lid shows skin.
    "eye_darkness": (
        PatchSpec((263, 362), (0.0, 0.0), (2.4, 1.2), "dark"),
        PatchSpec((33, 133), (0.0, 0.0), (2.4, 1.2), "dark", mirror=True),
    ),
}
#: Names of the appearance features, in the order :func:`appearance_features` returns them.
APPEARANCE_FEATURES: tuple[str, ...] = tuple(_PATCHES)

_STABLE_ROWS = np.array(STABLE_POINTS)


def head_axes(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image directions (pixels per canonical cm) of the face's +x (subject's left) and +y (up) axes."""
    rot, scale, _ = rigid_fit(camera_points(landmarks[_STABLE_ROWS], image_size))
    # camera axes have +y up; image rows grow downwards.
    ex = scale * np.array([rot[0, 0], -rot[1, 0]])
    ey = scale * np.array([rot[0, 1], -rot[1, 1]])
    return ex, ey


def sample_patch(
    image: np.ndarray,
    centre: np.ndarray,
    ex: np.ndarray,
    ey: np.ndarray,
    size: tuple[float, float],
    mm_per_sample: float = MM_PER_SAMPLE,
) -> np.ndarray | None:
    """Green channel of a face-aligned patch, float32 (rows top to bottom, columns along ``ex``).

    ``centre`` in pixels; ``ex``, ``ey`` the image directions of the patch's x and y (up) axes in
    pixels per cm; ``size`` (width, height) in cm. None when the patch leaves the image.
    """
    step = mm_per_sample / 10.0
    nw, nh = max(3, round(size[0] / step)), max(3, round(size[1] / step))
    w, h = nw * step, nh * step
    # dst (column j, row i) -> src pixel: centre + ex*(x) + ey*(y), x = step*(j+.5) - w/2, y = h/2 - step*(i+.5)
    ax, ay = ex * step, -ey * step
    origin = centre + ex * (0.5 * step - 0.5 * w) + ey * (0.5 * h - 0.5 * step)
    corners = origin + np.outer([0, nw - 1, 0, nw - 1], ax) + np.outer([0, 0, nh - 1, nh - 1], ay)
    lo = np.floor(corners.min(axis=0)).astype(int) - 1
    hi = np.ceil(corners.max(axis=0)).astype(int) + 2
    ih, iw = image.shape[:2]
    if lo[0] < 0 or lo[1] < 0 or hi[0] > iw or hi[1] > ih or not np.all(np.isfinite(corners)):
        return None
    crop = np.ascontiguousarray(image[lo[1] : hi[1], lo[0] : hi[0], 1])
    origin = origin - lo
    px = float(np.sqrt(ax @ ax))  # source pixels per sample
    if px > 1.5:  # average the source down first, so fine texture does not alias
        f = 1.0 / px
        crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        sx, sy = crop.shape[1] / (hi[0] - lo[0]), crop.shape[0] / (hi[1] - lo[1])
        scale = np.array([sx, sy])
        ax, ay, origin = ax * scale, ay * scale, (origin + 0.5) * scale - 0.5
    m = np.array([[ax[0], ay[0], origin[0]], [ax[1], ay[1], origin[1]]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(crop, m, (nw, nh), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def crease_energy(patch: np.ndarray, cue: str) -> float:
    """log of the RMS Sobel gradient (``gx``, ``gy`` or both) over the patch's mean brightness."""
    gx = cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1] if cue != "gy" else None
    gy = cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1] if cue != "gx" else None
    energy = sum(float(np.mean(g * g)) for g in (gx, gy) if g is not None)
    return 0.5 * float(np.log(energy + EPS_INTENSITY**2)) - float(np.log(float(patch.mean()) + EPS_INTENSITY))


def darkness(patch: np.ndarray) -> float:
    """log of the patch's median over its 10th percentile: high while a dark iris or slit shows."""
    p10, p50 = np.percentile(patch, (10.0, 50.0))
    return float(np.log(p50 + EPS_INTENSITY) - np.log(p10 + EPS_INTENSITY))


def patch_cue(image: np.ndarray, spec: PatchSpec, points: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> float:
    """One patch's cue value (NaN when the patch leaves the image)."""
    axis_x = -ex if spec.mirror else ex
    centre = points[list(spec.anchor)].mean(axis=0) + spec.offset[0] * axis_x + spec.offset[1] * ey
    patch = sample_patch(image, centre, axis_x, ey, spec.size)
    if patch is None:
        return float("nan")
    return darkness(patch) if spec.cue == "dark" else crease_energy(patch, spec.cue)


def appearance_features(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The appearance features (:data:`APPEARANCE_FEATURES`) of one face in an RGB uint8 image.

    ``landmarks`` (478, 3) normalised (MediaPipe's); bilateral cues average the two sides (a side
    that leaves the image is left out). Shape (A,), NaN where nothing could be measured.
    """
    h, w = image.shape[:2]
    points = landmarks[:, :2].astype(np.float64) * np.array([w, h], np.float64)
    ex, ey = head_axes(landmarks, (w, h))
    out = np.full(len(APPEARANCE_FEATURES), np.nan)
    for k, specs in enumerate(_PATCHES.values()):
        vals = [v for v in (patch_cue(image, s, points, ex, ey) for s in specs) if np.isfinite(v)]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out
