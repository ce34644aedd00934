"""Per-channel smoothing on the avatar path that keeps micro-expressions.

A plain One Euro filter (Casiez et al. 2012) raises its cutoff with the signal's *speed*;
micro-expressions are so small and slow in absolute terms that the speed term hardly engages and
the filter acts as a fixed low-pass that eats half the apex (reference section 8).

:class:`DeviationGatedFilter` keeps One Euro's resting low-pass but opens on the *deviation* of
the raw signal from the filtered one, measured in units of the channel's own noise (estimated
online from frame-to-frame differences). At rest the deviation stays within a few noise sigmas and
the output is heavily smoothed; an expression, however small, soon leaves that band and the filter
passes it through with no lag. Both filters are vectorised over channels; NaN inputs (untracked
channels) leave that channel's state untouched and give NaN out.

Detection reads the raw signals; only the avatar path is smoothed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from avatar_bridge.errors import ConfigError


class SmoothingKind(StrEnum):
    GATED = "gated"  # deviation-gated One Euro (default; keeps micro-expressions)
    ONE_EURO = "one_euro"  # the plain One Euro filter
    NONE = "none"


@dataclass(frozen=True, slots=True)
class SmoothingOptions:
    """Tunables of the avatar-path filter.

    min_cutoff: Hz, cutoff at rest (lower = steadier; 0.5 Hz drops tracker jitter about 3.5x at 60 fps).
    beta: One Euro speed coefficient (cutoff grows by beta * |speed|, speed in units per second).
    d_cutoff: Hz, cutoff of the speed estimate.
    gate_low / gate_high: deviation from the filtered value, in noise sigmas, where the gated
    filter starts to open and where it is fully open.
    noise_tau: seconds, time constant of the running noise estimate.
    noise_init / noise_floor: starting noise sigma and its lower bound (signal units).
    """

    kind: SmoothingKind = SmoothingKind.GATED
    min_cutoff: float = 0.5
    beta: float = 0.0
    d_cutoff: float = 1.0
    gate_low: float = 2.5
    gate_high: float = 5.0
    noise_tau: float = 2.0
    noise_init: float = 0.02
    noise_floor: float = 0.004

    def __post_init__(self) -> None:
        if not isinstance(self.kind, SmoothingKind):
            try:
                object.__setattr__(self, "kind", SmoothingKind(self.kind))
            except ValueError as e:
                known = ", ".join(k.value for k in SmoothingKind)
                raise ConfigError(f"smoothing kind must be one of {known}, got {self.kind!r}") from e
        for name in ("min_cutoff", "d_cutoff", "noise_tau", "noise_init", "noise_floor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"smoothing {name} must be a positive number, got {value}")
        if not (0 <= self.beta < math.inf):
            raise ConfigError(f"smoothing beta must be >= 0, got {self.beta}")
        if not (0 <= self.gate_low < self.gate_high < math.inf):
            raise ConfigError(f"need 0 <= gate_low < gate_high, got {self.gate_low}, {self.gate_high}")


def smoothing_alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz over ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The plain One Euro filter over ``n`` channels (reference for the gated one)."""

    def __init__(self, n: int, options: SmoothingOptions | None = None) -> None:
        self.options = options or SmoothingOptions(kind=SmoothingKind.ONE_EURO)
        self.n = n
        self.reset()

    def reset(self) -> None:
        self._y = np.full(self.n, np.nan)
        self._dx = np.zeros(self.n)
        self._t: float | None = None

    def _dt(self, t: float) -> float:
        dt = 1.0 / 60.0 if self._t is None or t <= self._t else t - self._t
        self._t = t
        return dt

    def update(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample ``x`` (n,) taken at time ``t`` seconds."""
        o = self.options
        x = np.asarray(x, dtype=np.float64)
        dt = self._dt(t)
        valid = np.isfinite(x)
        fresh = valid & ~np.isfinite(self._y)
        self._y[fresh] = x[fresh]
        dx = np.where(valid, (x - self._y) / dt, 0.0)
        a_d = smoothing_alpha(o.d_cutoff, dt)
        self._dx = np.where(valid, self._dx + a_d * (dx - self._dx), self._dx)
        a = smoothing_alpha(o.min_cutoff + o.beta * np.abs(self._dx), dt)
        self._y = np.where(valid, self._y + a * (x - self._y), self._y)
        return np.where(valid, self._y, np.nan)


class DeviationGatedFilter(OneEuroFilter):
    """One Euro whose smoothing factor opens towards 1 when the raw sample deviates from the
    filtered value by more than ``gate_low`` noise sigmas (fully at ``gate_high``).

    ``noise_scale`` (n,) scales ``noise_init`` and ``noise_floor`` per channel, so channels of
    different units (blendshapes, quaternion components, centimetres) share one filter.
    """

    def __init__(
        self, n: int, options: SmoothingOptions | None = None, noise_scale: np.ndarray | None = None
    ) -> None:
        self._scale = np.ones(n) if noise_scale is None else np.asarray(noise_scale, dtype=np.float64)
        super().__init__(n, options or SmoothingOptions())

    def reset(self) -> None:
        super().reset()
        self._var = (self.options.noise_init * self._scale) ** 2
        self._floor_sq = (self.options.noise_floor * self._scale) ** 2

    @property
    def noise(self) -> np.ndarray:
        """Current per-channel noise sigma estimate."""
        return np.sqrt(self._var)

    def update(self, x: np.ndarray, t: float) -> np.ndarray:
        o = self.options
        x = np.asarray(x, dtype=np.float64)
        dt = self._dt(t)
        valid = np.isfinite(x)
        y = self._y
        fresh = valid & np.isnan(y)
        if fresh.any():
            y[fresh] = x[fresh]
        d = x - y
        d_sq = d * d
        # Noise: running mean square of the deviation from the filtered value, clipped so that an
        # expression cannot pump it (at rest the deviation is the tracker's jitter, white or not).
        var = self._var
        k = 1.0 - math.exp(-dt / o.noise_tau)
        new_var = var + k * (np.minimum(d_sq, (o.gate_low**2) * var) - var)
        self._var = np.where(valid, np.maximum(new_var, self._floor_sq), var)
        # One Euro part: speed-dependent cutoff at rest (a constant when beta is 0).
        if o.beta > 0:
            dx = np.where(valid, d / dt, 0.0)
            self._dx = np.where(valid, self._dx + smoothing_alpha(o.d_cutoff, dt) * (dx - self._dx), self._dx)
            a = smoothing_alpha(o.min_cutoff + o.beta * np.abs(self._dx), dt)
        else:
            a = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * o.min_cutoff * dt))
        # Gate: open in proportion to how far (in noise sigmas) the sample left the filtered value.
        z = np.sqrt(d_sq / self._var)
        g = np.clip((z - o.gate_low) * (1.0 / (o.gate_high - o.gate_low)), 0.0, 1.0)
        self._y = np.where(valid, y + (a + (1.0 - a) * g) * d, y)
        return np.where(valid, self._y, np.nan)


class PassThrough:
    """No smoothing (``kind = none``)."""

    def __init__(
        self, n: int, options: SmoothingOptions | None = None, noise_scale: np.ndarray | None = None
    ) -> None:
        self.n = n

    def reset(self) -> None:
        pass

    def update(self, x: np.ndarray, t: float) -> np.ndarray:
        return np.asarray(x, dtype=np.float64).copy()


ChannelFilter = OneEuroFilter | DeviationGatedFilter | PassThrough


def make_filter(
    n: int, options: SmoothingOptions | None = None, noise_scale: np.ndarray | None = None
) -> ChannelFilter:
    """The filter ``options.kind`` names, over ``n`` channels (``noise_scale``: gated filter only)."""
    options = options or SmoothingOptions()
    if options.kind is SmoothingKind.GATED:
        return DeviationGatedFilter(n, options, noise_scale)
    if options.kind is SmoothingKind.ONE_EURO:
        return OneEuroFilter(n, options)
    return PassThrough(n, options)
