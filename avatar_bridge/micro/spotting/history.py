"""A short, growable time window of one face's channel positions and per-frame flags (NumPy arrays)."""

from __future__ import annotations

import numpy as np


class History:
    """Samples in time order: ``t`` (N,), ``pos`` (N, C, 2), ``blink`` (N,), ``speed`` (N,),
    ``lum`` (N,). Old samples are dropped by :meth:`trim`; storage grows as the frame rate needs."""

    def __init__(self, n_channels: int, capacity: int = 64) -> None:
        self._t = np.empty(capacity)
        self._pos = np.empty((capacity, n_channels, 2))
        self._blink = np.zeros(capacity, bool)
        self._speed = np.zeros(capacity)
        self._lum = np.zeros(capacity)
        self._a = self._b = 0

    def __len__(self) -> int:
        return self._b - self._a

    def clear(self) -> None:
        self._a = self._b = 0

    def append(self, t: float, pos: np.ndarray, blink: bool, speed: float, lum: float) -> None:
        if self._b == len(self._t):
            n = self._b - self._a
            if n * 2 > len(self._t):  # more than half full: grow
                cap = 2 * len(self._t)
                for name in ("_t", "_pos", "_blink", "_speed", "_lum"):
                    old = getattr(self, name)
                    new = np.empty((cap,) + old.shape[1:], old.dtype)
                    new[:n] = old[self._a : self._b]
                    setattr(self, name, new)
            else:  # compact to the front
                for name in ("_t", "_pos", "_blink", "_speed", "_lum"):
                    arr = getattr(self, name)
                    arr[:n] = arr[self._a : self._b]
            self._a, self._b = 0, n
        i = self._b
        self._t[i], self._pos[i], self._blink[i], self._speed[i], self._lum[i] = t, pos, blink, speed, lum
        self._b += 1

    def trim(self, before: float) -> None:
        """Drop samples older than ``before``."""
        self._a += int(np.searchsorted(self._t[self._a : self._b], before, side="left"))

    @property
    def t(self) -> np.ndarray:
        return self._t[self._a : self._b]

    @property
    def pos(self) -> np.ndarray:
        return self._pos[self._a : self._b]

    @property
    def blink(self) -> np.ndarray:
        return self._blink[self._a : self._b]

    @property
    def speed(self) -> np.ndarray:
        return self._speed[self._a : self._b]

    @property
    def lum(self) -> np.ndarray:
        return self._lum[self._a : self._b]

    def at(self, tau: float, probe: float) -> np.ndarray | None:
        """Mean positions over ``tau`` +- ``probe`` (the nearest sample when none falls inside and
        it is at most ``2 * probe + 0.05`` s away; None otherwise)."""
        # Called several times per frame and face: plain slices and ndarray methods, no wrappers.
        a, b = self._a, self._b
        if a == b:
            return None
        t = self._t[a:b]
        i0 = int(t.searchsorted(tau - probe, side="left"))
        i1 = int(t.searchsorted(tau + probe, side="right"))
        if i1 > i0:
            # What ndarray.mean computes (pairwise sum, then a division), without its overhead.
            return np.add.reduce(self._pos[a + i0 : a + i1], axis=0) / (i1 - i0)
        j = min(i0, b - a - 1)
        k = j - 1 if j > 0 and abs(t[j - 1] - tau) < abs(t[j] - tau) else j
        return self._pos[a + k] if abs(t[k] - tau) <= 2 * probe + 0.05 else None
