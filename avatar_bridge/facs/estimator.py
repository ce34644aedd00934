"""The FACS stage: OpenFace-style action units from MediaPipe blendshapes and landmark geometry.

``AUEstimator(FACSOptions()).update(result, frame)`` gives one :class:`ActionUnits` per face. Each
face has its own neutral: a running percentile baseline of its own inputs by default, or an explicit
:class:`Calibration` measured on a neutral segment. With the camera ``frame``, appearance cues
(:mod:`.appearance`: creases in small face-aligned patches) add their share to the AUs that read
them; without it the blendshape + geometry mapping applies alone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_bridge.channels import AU_INTENSITY, AU_PRESENCE
from avatar_bridge.errors import ConfigError
from avatar_bridge.facs.appearance import appearance_features
from avatar_bridge.facs.baseline import RunningBaseline
from avatar_bridge.facs.calibration import Calibration, face_sources
from avatar_bridge.facs.geometry import head_fit
from avatar_bridge.facs.mapping import INPUTS, SOURCES, FACSMapping, load_mapping
from avatar_bridge.records import ActionUnits, Frame, TrackingResult

#: Index of each intensity AU (AU_INTENSITY order) in AU_PRESENCE order.
_INTENSITY_ROWS = np.array([AU_PRESENCE.index(a) for a in AU_INTENSITY])
MAX_INTENSITY = 5.0


@dataclass(frozen=True)
class FACSOptions:
    """Options of :class:`AUEstimator`.

    - ``mapping_path``: the mapping TOML; None = the packaged ``blendshapes/facs_mapping.toml``.
    - ``calibration_path``: a saved neutral :class:`Calibration` applied to every face;
      None = each face's running baseline.
    - ``baseline_window``: seconds of history the running baseline remembers (60 s: long enough that
      a minute-long expression does not become "neutral", short enough to follow lighting and fatigue).
    - ``baseline_interval``: seconds between baseline samples (0.1 s: 600 samples per minute at any fps).
    - ``baseline_prior_seconds``: how much history the typical neutral face of the mapping is worth
      (2 s: it rules the first seconds of a face, then the person's own baseline takes over).
    - ``calibration_deadband``: with a calibration, deviations within this many rest spreads (median
      absolute deviations measured on the neutral segment) count as neutral: jitter is not an action.
    - ``max_faces``: per-face states kept; the least recently seen face is forgotten beyond that.
    """

    mapping_path: Path | None = None
    calibration_path: Path | None = None
    baseline_window: float = 60.0
    baseline_interval: float = 0.1
    baseline_prior_seconds: float = 2.0
    calibration_deadband: float = 2.0
    max_faces: int = 16

    def __post_init__(self) -> None:
        if not self.baseline_window > 0:
            raise ConfigError(f"baseline_window must be positive seconds, got {self.baseline_window}")
        if not self.baseline_interval > 0:
            raise ConfigError(f"baseline_interval must be positive seconds, got {self.baseline_interval}")
        if not self.baseline_prior_seconds >= 0:
            raise ConfigError(f"baseline_prior_seconds must be >= 0, got {self.baseline_prior_seconds}")
        if not self.calibration_deadband >= 0:
            raise ConfigError(f"calibration_deadband must be >= 0, got {self.calibration_deadband}")
        if self.max_faces < 1:
            raise ConfigError(f"max_faces must be at least 1, got {self.max_faces}")


def au_intensities(values: np.ndarray, neutral: np.ndarray, mapping: FACSMapping) -> np.ndarray:
    """Intensities 0-5 of every AU in AU_PRESENCE order (AU28 included).

    ``values`` and ``neutral`` are per mapping term: the input's current value and its neutral value.
    The landmark terms (blendshapes, geometry) and the appearance terms of an AU are two estimates
    of the same intensity, each clipped to 0-5, mixed by the AU's appearance share ``a``:
    ``(1 - a) * landmark + a * appearance``. An AU whose appearance terms are NaN (no frame, or a
    patch off the image) is its landmark estimate alone.
    """
    contrib = mapping.term_gain * (values - neutral)
    app = mapping.term_appearance
    n = len(AU_PRESENCE)
    land = ~app
    raw = np.bincount(mapping.term_au[land], weights=contrib[land], minlength=n)
    raw[np.isnan(raw)] = 0.0  # an input that could not be measured gives no evidence
    est = np.minimum(np.maximum(raw, 0.0), MAX_INTENSITY)  # np.clip costs several times more
    if app.any():
        app_sum = np.bincount(mapping.term_au[app], weights=contrib[app], minlength=n)
        use = (mapping.appearance_share > 0) & np.isfinite(app_sum)
        if use.any():
            a = mapping.appearance_share[use]
            app_est = np.minimum(np.maximum(app_sum[use] / a, 0.0), MAX_INTENSITY)
            est[use] = (1.0 - a) * est[use] + a * app_est
    return est


def presence_with_hysteresis(
    intensity: np.ndarray, previous: np.ndarray, on: np.ndarray, off: np.ndarray
) -> np.ndarray:
    """Presence 0/1: switches on at ``on``, stays on until the intensity falls below ``off``."""
    return np.where(previous, intensity >= off, intensity >= on)


class _FaceState:
    def __init__(self, n_sources: int, n_appearance: int, capacity: int, interval: float) -> None:
        self.baseline = RunningBaseline(n_sources, capacity, interval)
        # Appearance has its own baseline: frames come and go (a call without one must not stall
        # the landmark baseline), and a patch that leaves the image must not stall the others.
        self.appearance = RunningBaseline(max(n_appearance, 1), capacity, interval, partial=True)
        self.presence = np.zeros(len(AU_PRESENCE), bool)


class AUEstimator:
    """Action units per face and frame, each relative to that person's neutral face.

    >>> est = AUEstimator(FACSOptions())          # doctest: +SKIP
    >>> aus = est.update(result, frame)            # one ActionUnits per face in result.faces
    """

    def __init__(self, options: FACSOptions | None = None) -> None:
        self.options = options or FACSOptions()
        self.mapping = load_mapping(self.options.mapping_path)
        src = self.mapping.term_source
        self._app = self.mapping.term_appearance  # terms that read an appearance feature
        self._geo = ~self._app
        self._used = np.array(sorted(set(src[self._geo].tolist())), np.int64)  # SOURCES indices read
        self._term_col = np.searchsorted(self._used, src[self._geo])  # geometric term -> column of _used
        app_src = src[self._app] - len(SOURCES)
        self._app_used = np.array(sorted(set(app_src.tolist())), np.int64)  # appearance features read
        self._app_col = np.searchsorted(self._app_used, app_src)  # appearance term -> feature column
        self._capacity = max(1, round(self.options.baseline_window / self.options.baseline_interval))
        self._no_prior = np.isnan(self.mapping.term_typical)
        self._prior_samples = self.options.baseline_prior_seconds / self.options.baseline_interval
        self._states: OrderedDict[int, _FaceState] = OrderedDict()
        self._calibrations: dict[int | None, tuple[Calibration, np.ndarray]] = {}
        if self.options.calibration_path is not None:
            self.set_calibration(Calibration.load(self.options.calibration_path))

    def set_calibration(self, calibration: Calibration | None, face_id: int | None = None) -> None:
        """Use ``calibration`` as the neutral of face ``face_id`` (None: every face without its own).

        Passing None removes it, and that face goes back to its running baseline.
        """
        if calibration is None:
            self._calibrations.pop(face_id, None)
            return
        m = self.mapping
        spread = np.array([calibration.spread.get(INPUTS[i], 0.0) for i in m.term_source])
        neutral = np.full(len(m.term_source), np.nan)  # appearance terms keep their running baseline
        neutral[self._geo] = calibration.vector(SOURCES)[m.term_source[self._geo]]
        neutral = neutral + np.sign(m.term_gain) * self.options.calibration_deadband * spread
        self._calibrations[face_id] = (calibration, neutral)

    def calibrate(self, results: Iterable[TrackingResult], face_id: int | None = None) -> Calibration:
        """Measure a neutral face from a neutral segment, use it (see :meth:`set_calibration`), return it."""
        calibration = Calibration.from_results(results, face_id=face_id)
        self.set_calibration(calibration, face_id)
        return calibration

    def calibration_for(self, face_id: int) -> Calibration | None:
        entry = self._calibrations.get(face_id) or self._calibrations.get(None)
        return entry[0] if entry else None

    def reset(self) -> None:
        """Forget every face's running baseline and presence state (calibrations are kept)."""
        self._states.clear()

    def _state(self, face_id: int) -> _FaceState:
        state = self._states.get(face_id)
        if state is None:
            state = _FaceState(
                len(self._used), len(self._app_used), self._capacity, self.options.baseline_interval
            )
            self._states[face_id] = state
            while len(self._states) > self.options.max_faces:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(face_id)
        return state

    def _running_neutral(self, baseline: RunningBaseline, terms: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Person percentile of mapping ``terms`` (baseline rows ``cols``), shrunk towards the typical
        face while samples are few, clamped to the plausible neutral range."""
        m = self.mapping
        lo, hi, typical = m.term_neutral_lo[terms], m.term_neutral_hi[terms], m.term_typical[terms]
        if baseline.samples == 0:
            return np.minimum(np.maximum(typical, lo), hi)
        own = baseline.percentiles(cols, m.term_percentile[terms])
        w = baseline.samples / (baseline.samples + self._prior_samples)
        neutral = np.where(self._no_prior[terms], own, w * own + (1.0 - w) * typical)
        return np.minimum(np.maximum(neutral, lo), hi)

    def update(self, result: TrackingResult, frame: Frame | None = None) -> tuple[ActionUnits, ...]:
        """Action units of every face in ``result``, in the order of ``result.faces``.

        ``frame``: the image ``result`` was tracked on; with it, the appearance inputs of the
        mapping are measured (their neutral is always the face's running baseline, also under a
        calibration, which holds landmark inputs only). Without it they are skipped.
        """
        m = self.mapping
        out = []
        for face in result.faces:
            fit = head_fit(face.landmarks, face.image_size)  # shared by geometry and appearance
            x = face_sources(face, fit)[self._used]
            state = self._state(face.face_id)
            cal = self._calibrations.get(face.face_id) or self._calibrations.get(None)
            values = np.full(len(m.term_source), np.nan)
            values[self._geo] = x[self._term_col]
            if cal is None:
                state.baseline.add(x, result.timestamp)
                neutral = np.empty(len(m.term_source))
                neutral[self._geo] = self._running_neutral(state.baseline, self._geo, self._term_col)
            else:
                neutral = cal[1].copy()
            if frame is not None and len(self._app_used):
                same = frame.size == face.image_size  # else the fit's pixel scale does not apply
                a = appearance_features(frame.image, face.landmarks, fit if same else None)[self._app_used]
                values[self._app] = a[self._app_col]
                state.appearance.add(a, result.timestamp)
                neutral[self._app] = self._running_neutral(state.appearance, self._app, self._app_col)
            intensity = au_intensities(values, neutral, m)
            state.presence = presence_with_hysteresis(
                intensity, state.presence, m.threshold_on, m.threshold_off
            )
            out.append(
                ActionUnits(
                    index=result.index,
                    timestamp=result.timestamp,
                    face_id=face.face_id,
                    intensity=intensity[_INTENSITY_ROWS].astype(np.float32),
                    presence=state.presence.astype(np.float32),
                    calibrated=cal is not None,
                )
            )
        return tuple(out)
