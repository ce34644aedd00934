"""Several compiled profiles as one dense matrix, so one face is retargeted to all of them at once.

Each profile is ``clamp(curve(gain * W @ s[perm] + offset))``. Folding the mirror permutation into
the columns of ``W`` and stacking every profile's rows gives one ``(sum of targets) x sources``
matrix: a frame costs one matmul and one vectorised gain/offset/curve/clamp however many rig
profiles the session streams to, and each profile's weights are a slice of the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avatar_bridge.retarget.profile import CompiledProfile, Curve

_CURVES = list(Curve)
_POWER = _CURVES.index(Curve.POWER)
_SMOOTH = _CURVES.index(Curve.SMOOTHSTEP)


@dataclass(frozen=True, slots=True)
class StackedProfiles:
    """Row-stacked compiled profiles; ``slices[k]`` selects profile ``k``'s targets."""

    names: tuple[tuple[str, ...], ...]
    slices: tuple[slice, ...]
    weights: np.ndarray  # (targets, sources), mirror permutation folded in
    gain: np.ndarray
    offset: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    exponent: np.ndarray
    power: np.ndarray | None  # bool per target, None when no target uses the curve
    smooth: np.ndarray | None
    neutral: np.ndarray  # values when every source is at rest (0)

    @classmethod
    def build(cls, compiled: Sequence[CompiledProfile]) -> StackedProfiles:
        rows, slices, start = [], [], 0
        for c in compiled:
            # (W @ s[perm])[i] = sum_j W[i, j] s[perm[j]]  ->  column perm[j] of the folded matrix.
            w = np.zeros_like(c.weights)
            w[:, c.perm] = c.weights
            rows.append(w)
            slices.append(slice(start, start + len(c.names)))
            start += len(c.names)
        curve = np.concatenate([c.curve for c in compiled])
        power, smooth = curve == _POWER, curve == _SMOOTH
        stacked = cls(
            names=tuple(c.names for c in compiled),
            slices=tuple(slices),
            weights=np.ascontiguousarray(np.vstack(rows)),
            gain=np.concatenate([c.gain for c in compiled]),
            offset=np.concatenate([c.offset for c in compiled]),
            lo=np.concatenate([c.lo for c in compiled]),
            hi=np.concatenate([c.hi for c in compiled]),
            exponent=np.concatenate([c.exponent for c in compiled]),
            power=power if power.any() else None,
            smooth=smooth if smooth.any() else None,
            neutral=np.zeros(0),
        )
        object.__setattr__(stacked, "neutral", stacked.shape(np.zeros(start)))
        return stacked

    def apply(self, sources: np.ndarray) -> np.ndarray:
        """Every profile's target values for ``sources`` (SOURCE_NAMES order; NaN contributes 0)."""
        s = np.asarray(sources, dtype=np.float64)
        s = np.where(np.isnan(s), 0.0, s)
        return self.shape(self.weights @ s)

    def shape(self, v: np.ndarray) -> np.ndarray:
        """gain, offset, curve and clamp (the same maths as :meth:`CompiledProfile.shape`)."""
        x = self.gain * v + self.offset
        if self.power is not None:
            x = np.where(self.power, np.sign(x) * np.abs(x) ** self.exponent, x)
        if self.smooth is not None:
            a = np.clip(np.abs(x), 0.0, 1.0)
            x = np.where(self.smooth, np.sign(x) * a * a * (3.0 - 2.0 * a), x)
        return np.clip(x, self.lo, self.hi, out=x)
