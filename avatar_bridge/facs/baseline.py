"""A running, person-specific neutral: causal percentiles over a bounded window of samples.

Like OpenFace's running median, but per input and at a chosen percentile: the neutral face sits at
the quiet end of what a person's face does, so a low percentile of a feature that an AU increases
(and a high one of a feature it decreases) stands for neutral. Samples are taken at most every
``interval`` seconds of source time (so the window covers the same time at any frame rate) into a
ring buffer of ``capacity`` samples: memory and cost are bounded however long the video.
With ``partial=True`` a sample may lack some inputs (NaN, e.g. an appearance patch that left the
image): each input's percentile is then taken over its own measured samples.

The window is also kept sorted per input. Re-sorting every input's window on each new sample costs
about 0.4 ms for 60 inputs x 600 samples (a full minute); instead the new sample overwrites the one
it replaces in the sorted rows, and a stable sort (a merge of already sorted runs, close to linear)
restores the order: about 4 times cheaper. Partial mode (few inputs, NaN-aware) re-sorts instead.
"""

from __future__ import annotations

import numpy as np


class RunningBaseline:
    """Running percentiles of an (S,)-vector stream; online, causal, bounded memory."""

    def __init__(self, size: int, capacity: int, interval: float, partial: bool = False) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._partial = partial
        self._finite: np.ndarray | None = None  # per row: measured samples (partial mode)
        self._ring = np.empty((size, capacity), np.float64)
        self._interval = float(interval)
        self._count = 0  # samples ever added
        self._last_t = -np.inf
        self._sorted: np.ndarray | None = None  # each row's held samples, ascending (NaN last)

    @property
    def samples(self) -> int:
        """Samples currently held (at most ``capacity``)."""
        return min(self._count, self._ring.shape[1])

    def add(self, values: np.ndarray, timestamp: float) -> bool:
        """Take ``values`` as a sample if ``interval`` has passed since the last one (or time went back).

        A sample with a NaN is skipped (in partial mode: only one with no finite input). Returns
        whether the sample was taken.
        """
        due = self._count == 0 or timestamp - self._last_t >= self._interval or timestamp < self._last_t
        finite = np.isfinite(values)
        if not due or not (finite.any() if self._partial else finite.all()):
            return False
        capacity = self._ring.shape[1]
        slot = self._count % capacity
        values = np.asarray(values, np.float64)
        if self._partial or self._sorted is None:
            self._sorted = None  # re-sorted when next asked
        else:
            if self._count >= capacity:  # the ring is full: the new sample takes the oldest one's place
                where = (self._sorted == self._ring[:, slot, None]).argmax(axis=1)
                self._sorted[np.arange(len(values)), where] = values
            else:
                self._sorted = np.concatenate((self._sorted, values[:, None]), axis=1)
            self._sorted.sort(axis=1, kind="stable")  # sorted runs merge in about linear time
        self._ring[:, slot] = values
        self._count += 1
        self._last_t = timestamp
        return True

    def percentiles(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Percentile ``q[t]`` (0-100, nearest rank) of row ``rows[t]``, for every t at once."""
        n = self.samples
        if n == 0:
            return np.full(len(rows), np.nan)
        if self._sorted is None:
            self._sorted = np.sort(self._ring[:, :n], axis=1)  # NaN sort last
            if self._partial:
                self._finite = np.isfinite(self._sorted).sum(axis=1)
        if not self._partial:
            k = np.rint(np.asarray(q) * ((n - 1) / 100.0)).astype(np.int64)
            return self._sorted[rows, k]
        m = self._finite[rows]
        k = np.rint(np.asarray(q) * (np.maximum(m - 1, 0) / 100.0)).astype(np.int64)
        return np.where(m > 0, self._sorted[rows, k], np.nan)
