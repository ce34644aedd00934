"""Removing the face's residual rigid jitter from the patch tracks (NumPy).

The aligned face follows MediaPipe's eye centres, which jitter from frame to frame; the nose box
removes the shift that jitter leaves, not its rotation and scale, and its own flow noise is added
to every patch. On untouched held-still recordings one similarity transform of all patches explains
27-60 % of the tracks' bump energy (4 parameters of 32 would explain 12 % of pure noise). Each
frame, :class:`Stabiliser` fits that similarity robustly (Tukey weights: patches far off the fit,
those an expression moves, get no weight); the spotter keeps what it does not explain, and watches
what it does (the fitted motion at two points) as head motion.
"""

from __future__ import annotations

import numpy as np


class Stabiliser:
    """Robust similarity fit of (C, 2) track positions at ``centres``.

    cutoff: residuals beyond this many robust deviations (1.48 median absolute residuals, at least
    ``floor`` px) get no weight; iterations: reweighted fits after the first; tau: seconds of the
    running mean the fit is made against. ``at``: (K, 2) points (same frame as ``centres``) where
    :meth:`fit` reports the fitted motion.
    """

    def __init__(self, centres: np.ndarray, at: np.ndarray, cutoff: float = 3.0, iterations: int = 2,
                 floor: float = 0.05, tau: float = 0.5) -> None:  # fmt: skip
        c = np.asarray(centres, dtype=np.float64)
        p = self._p = c - c.mean(axis=0)
        self._at = np.asarray(at, dtype=np.float64) - c.mean(axis=0)
        # Per patch, what the weighted sums of the normal equations need: 1, x, y, x^2 + y^2.
        self._f = np.column_stack([np.ones(len(p)), p, (p * p).sum(axis=1)])
        self._h = np.empty((len(p), 4))  # per frame: dx, dy, p . d, p x d
        self._pp = np.stack([p, np.column_stack([-p[:, 1], p[:, 0]])])  # p and p turned by 90 degrees
        self._mid = ((len(c) - 1) // 2, len(c) // 2)  # the median's two middle ranks
        self.cutoff, self.iterations, self.floor = cutoff, iterations, floor
        self.tau = tau
        self._w: np.ndarray | None = None  # the last fit's weights per patch
        self._mean: np.ndarray | None = None  # running mean of the positions

    def reset(self) -> None:
        """Forget the running mean and weights (the tracks start again from zero)."""
        self._w = self._mean = None

    def fit(self, pos: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(C, 2) what the fitted similarity leaves of ``pos``, and (K, 2) its motion at ``at``.

        The fit is to the tracks' recent change (``pos`` less its running mean over ``tau`` s), in
        which a brief movement stands out from the jitter, not to the positions, whose slow drift
        would hide it. The first fit reuses the last frame's weights: a patch an expression is
        moving stays out of the fit while the movement grows."""
        pos = np.asarray(pos, dtype=np.float64)
        if self._mean is None:
            self._mean = pos.copy()
        x = pos - self._mean
        self._mean += (1.0 - np.exp(-dt / self.tau)) * x
        p, h = self._p, self._h
        h[:, :2] = x
        h[:, 2:] = (self._pp * x).sum(axis=2).T
        rot, shift = self._solve(np.ones(len(x)) if self._w is None else self._w)
        for _ in range(self.iterations):
            rr = np.hypot(*(x - (p @ rot + shift)).T)
            lo, hi = self._mid
            srt = np.partition(rr, (lo, hi))
            s = max(1.4826 * 0.5 * float(srt[lo] + srt[hi]), self.floor)
            w = rr * (1.0 / (self.cutoff * s))
            w = 1.0 - w * w
            np.maximum(w, 0.0, out=w)
            w *= w  # Tukey's biweight
            if np.count_nonzero(w) < 3:  # too few patches keep weight: keep the last fit
                break
            rot, shift = self._solve(w)
            self._w = w
        return pos - (p @ rot + shift), self._at @ rot + shift

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted least-squares similarity of this frame's displacements, in closed form (the
        weighted centroid's shift, then rotation and scale about it): a point q moves by
        ``q @ rot + shift``."""
        sw, sx, sy, sr = (w @ self._f).tolist()
        hx, hy, u, v = (w @ self._h).tolist()
        cx, cy, mx, my = sx / sw, sy / sw, hx / sw, hy / sw
        qq = sr - sw * (cx * cx + cy * cy)
        a = (u - sw * (cx * mx + cy * my)) / qq
        b = (v - sw * (cx * my - cy * mx)) / qq
        # (q - c) @ [[a, b], [-b, a]] + m
        rot = np.array([[a, b], [-b, a]])
        return rot, np.array([mx - (cx * a - cy * b), my - (cx * b + cy * a)])


def design(p: np.ndarray) -> np.ndarray:
    """Rows giving x then y of each point under the similarity (tx, ty, a, b):
    x' = tx + a px - b py, y' = ty + b px + a py (displacements, small motion)."""
    n = len(p)
    a = np.zeros((2 * n, 4))
    a[:n, 0], a[n:, 1] = 1.0, 1.0
    a[:n, 2], a[:n, 3] = p[:, 0], -p[:, 1]
    a[n:, 2], a[n:, 3] = p[:, 1], p[:, 0]
    return a


def rigid_motion(centres: np.ndarray, at: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """(C, 2) motion at every channel of the similarity that moves the channels ``at`` (a mask of
    two) by ``moved`` (2, 2): the rigid motion the stabiliser removed, from its two channels."""
    origin = centres[~at].mean(axis=0)
    a, b = design(centres[at] - origin), design(centres - origin)
    coef = np.linalg.solve(a, np.concatenate([moved[:, 0], moved[:, 1]]))
    m = b @ coef
    return np.stack([m[: len(centres)], m[len(centres) :]], axis=1)
