"""A short, growable time window of one face's channel positions and per-frame flags (NumPy arrays)."""

from __future__ import annotations

import numpy as np


class History:
    """Samples in time order: ``t`` (N,), ``pos`` (N, C, 2), ``blink`` (N,), ``speed`` (N,),
    ``lum`` (N,). Old samples are dropped by :meth:`trim`; storage grows as the frame rate needs."""

    def __init__(self, n_channels: int, capacity: int = 64) -> None:
        self._t = np.empty(capacity)
        # One row more than the other arrays: the row past the newest sample always exists, so
        # it may serve as a window's end index in :meth:`means` (reduceat reads it into an output
        # that is dropped: zeros, not uninitialised memory, so no invalid-value warning).
        self._pos = np.zeros((capacity + 1, n_channels, 2))
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
                    new = np.zeros((cap + (name == "_pos"),) + old.shape[1:], old.dtype)
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

    def means(self, taus: np.ndarray, probe: float) -> np.ndarray | None:
        """(K, C, 2) mean positions over each ``taus`` +- ``probe`` (the nearest sample when none
        falls inside and it is at most ``2 * probe + 0.05`` s away); None when any is too far.

        All windows at once, in two searches and one reduction: the spotter asks for several probe
        times every frame, and per-call overhead was most of their cost."""
        a, b = self._a, self._b
        if a == b:
            return None
        t = self._t[a:b]
        i0 = t.searchsorted(taus - probe, side="left")
        i1 = t.searchsorted(taus + probe, side="right")
        empty = i1 <= i0
        if empty.any():  # the nearest sample instead, if near enough
            j = np.minimum(i0, b - a - 1)
            left = np.maximum(j - 1, 0)
            k = np.where((j > 0) & (np.abs(t[left] - taus) < np.abs(t[j] - taus)), left, j)
            if (np.abs(t[k] - taus)[empty] > 2 * probe + 0.05).any():
                return None
            i0, i1 = np.where(empty, k, i0), np.where(empty, k + 1, i1)
        # Sums over [i0, i1) are the even outputs of reduceat (the odd ones span the gaps; the
        # storage's spare row past the newest sample makes i1 = b a valid index).
        edges = np.empty(2 * len(i0), dtype=np.intp)
        edges[0::2], edges[1::2] = i0, i1
        pos = self._pos[a : b + 1]
        sums = np.add.reduceat(pos.reshape(len(pos), -1), edges, axis=0)[::2].reshape(-1, *pos.shape[1:])
        return sums / (i1 - i0)[:, None, None]

    def at(self, tau: float, probe: float) -> np.ndarray | None:
        """:meth:`means` of one time: (C, 2) or None."""
        m = self.means(np.array([tau]), probe)
        return None if m is None else m[0]
