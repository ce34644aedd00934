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
        origin = c.mean(axis=0)
        self._a, self._n = design(c - origin), len(c)
        self._pinv = np.linalg.pinv(self._a)
        self._at = design(np.asarray(at, dtype=np.float64) - origin)
        self.cutoff, self.iterations, self.floor = cutoff, iterations, floor
        self.tau = tau
        self._w: np.ndarray | None = None  # the last fit's weights per patch
        self._mean: np.ndarray | None = None  # running mean of the positions (x of all, then y)

    def reset(self) -> None:
        """Forget the running mean and weights (the tracks start again from zero)."""
        self._w = self._mean = None

    def fit(self, pos: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(C, 2) what the fitted similarity leaves of ``pos``, and (K, 2) its motion at ``at``.

        The fit is to the tracks' recent change (``pos`` less its running mean over ``tau`` s), in
        which a brief movement stands out from the jitter, not to the positions, whose slow drift
        would hide it. The first fit reuses the last frame's weights: a patch an expression is
        moving stays out of the fit while the movement grows."""
        n, a = self._n, self._a
        p = np.concatenate([pos[:, 0], pos[:, 1]])
        if self._mean is None:
            self._mean = p.copy()
        x = p - self._mean
        self._mean += (1.0 - np.exp(-dt / self.tau)) * x
        if self._w is None:
            coef = self._pinv @ x
        else:
            aw = a.T * np.concatenate([self._w, self._w])
            coef = np.linalg.solve(aw @ a, aw @ x)
        r = x - a @ coef
        for _ in range(self.iterations):
            rr = np.hypot(r[:n], r[n:])
            s = max(1.4826 * float(np.median(rr)), self.floor)
            w = np.clip(1.0 - (rr / (self.cutoff * s)) ** 2, 0.0, None) ** 2
            if np.count_nonzero(w) < 3:  # too few patches keep weight: keep the last fit
                break
            aw = a.T * np.concatenate([w, w])
            coef = np.linalg.solve(aw @ a, aw @ x)
            r = x - a @ coef
            self._w = w
        k = len(self._at) // 2
        at = self._at @ coef
        q = p - a @ coef
        return np.stack([q[:n], q[n:]], axis=1), np.stack([at[:k], at[k:]], axis=1)


def design(p: np.ndarray) -> np.ndarray:
    """Rows giving x then y of each point under the similarity (tx, ty, a, b):
    x' = tx + a px - b py, y' = ty + b px + a py (displacements, small motion)."""
    n = len(p)
    a = np.zeros((2 * n, 4))
    a[:n, 0], a[n:, 1] = 1.0, 1.0
    a[:n, 2], a[:n, 3] = p[:, 0], -p[:, 1]
    a[n:, 2], a[n:, 3] = p[:, 1], p[:, 0]
    return a
