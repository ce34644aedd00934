"""AU patterns the generator can inject, and their temporal profile.

A pattern moves a few key landmarks in a direction given in the face's own axes (x = towards the
subject's left, y = up); neighbouring landmarks follow with a Gaussian fall-off, so the movement is
smooth and local like a real muscle pull. Labels follow the 3-class scheme of reference section 7
(positive = happiness; negative = sadness, disgust, contempt, fear, anger, repression; surprise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class AUPattern:
    """One injectable expression: key points (landmark, dx, dy, gain), AUs, side and class."""

    name: str
    aus: tuple[str, ...]
    side: str  # 'left', 'right' or 'both' (the subject's own sides)
    label: str  # positive / negative / surprise
    emotion: str
    keys: tuple[tuple[int, float, float, float], ...]


_BROW_R = (55, 65, 107, 66, 105, 63, 52, 70, 46, 53)
_BROW_L = (285, 295, 336, 296, 334, 293, 282, 300, 276, 283)

PATTERNS: dict[str, AUPattern] = {
    p.name: p
    for p in (
        AUPattern("AU12_L", ("AU12",), "left", "positive", "happiness",
                  ((291, 0.5, 0.85, 1.0), (308, 0.5, 0.85, 0.8))),
        AUPattern("AU12_R", ("AU12",), "right", "positive", "happiness",
                  ((61, -0.5, 0.85, 1.0), (78, -0.5, 0.85, 0.8))),
        AUPattern("AU4", ("AU04",), "both", "negative", "anger",
                  tuple((i, 0.35, -0.94, 1.0) for i in (55, 65, 107))
                  + tuple((i, -0.35, -0.94, 1.0) for i in (285, 295, 336))
                  + ((105, 0.0, -1.0, 0.5), (334, 0.0, -1.0, 0.5))),
        AUPattern("AU1+2", ("AU01", "AU02"), "both", "surprise", "surprise",
                  tuple((i, 0.0, 1.0, 1.0) for i in _BROW_R + _BROW_L)),
        AUPattern("AU14_L", ("AU14",), "left", "negative", "contempt",
                  ((291, 0.95, 0.1, 1.0), (308, 0.95, 0.1, 0.8))),
        AUPattern("AU14_R", ("AU14",), "right", "negative", "contempt",
                  ((61, -0.95, 0.1, 1.0), (78, -0.95, 0.1, 0.8))),
        AUPattern("AU15+17", ("AU15", "AU17"), "both", "negative", "sadness",
                  ((61, -0.2, -0.98, 1.0), (291, 0.2, -0.98, 1.0), (17, 0.0, 1.0, 0.6),
                   (152, 0.0, 1.0, 0.7), (199, 0.0, 1.0, 0.7))),
    )
}  # fmt: skip


def landmark_displacements(pattern: AUPattern, reference: np.ndarray, sigma: float = 40.0) -> np.ndarray:
    """(478, 2) unit-peak displacement in face axes for ``pattern``.

    ``reference``: landmarks in face axes at 640 px face width (:func:`features.reference_shape`);
    ``sigma``: fall-off radius in the same units (40 = about 6 % of the face width). The largest
    landmark displacement is exactly 1, so the caller scales by the wanted amplitude.
    """
    pts = reference[:, :2]
    out = np.zeros((len(pts), 2))
    for idx, dx, dy, gain in pattern.keys:
        w = gain * np.exp(-((pts - pts[idx]) ** 2).sum(axis=1) / (2.0 * sigma**2))
        direction = np.array([dx, dy]) / math.hypot(dx, dy)
        out += w[:, None] * direction
    peak = float(np.hypot(out[:, 0], out[:, 1]).max())
    return out / peak if peak > 0 else out


def temporal_profile(t: np.ndarray | float, onset: float, apex: float, offset: float,
                     hold: float = 0.0) -> np.ndarray:  # fmt: skip
    """Raised-cosine rise from ``onset`` to ``apex``, ``hold`` s at 1, raised-cosine fall to ``offset``."""
    t = np.asarray(t, dtype=np.float64)
    fall_start = apex + hold
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((t - onset) / max(apex - onset, 1e-9), 0.0, 1.0))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - fall_start) / max(offset - fall_start, 1e-9), 0.0, 1.0))
    return np.where(t < apex, rise, np.where(t <= fall_start, 1.0, fall)) * ((t > onset) & (t < offset))
