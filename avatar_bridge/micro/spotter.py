"""The online micro-expression spotter: causal, per face, with a bounded decision delay.

Per frame and face it measures how far small groups of landmarks (and, optionally, optical flow
in three regions) have moved from a rolling neutral baseline, in units of that person's own noise
(a running mean and deviation learnt while nothing happens). A group passing ``z_on`` opens an
event; the event closes once every group has stayed under ``z_off`` for ``hold`` seconds. Onset
and offset are then placed by the half-maximum crossings of the dominant group (full width from
half maximum), so they do not depend on where the threshold cut a faint movement. Events over
``max_micro`` seconds become macro-expressions. Blinks, head motion and lighting changes are
rejected. Every window is in seconds, so 30, 120 and 200 fps behave alike.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX, AU_INTENSITY
from avatar_bridge.errors import InputError
from avatar_bridge.micro.features import (
    GROUP_NAMES,
    GROUP_REGION,
    GROUP_SIDE,
    REGION_NAMES,
    LandmarkBaseline,
    au_cues,
    reference_shape,
)
from avatar_bridge.micro.flow import CROPS, FlowOptions, RegionFlow
from avatar_bridge.records import (
    ActionUnits,
    EventKind,
    ExpressionEvent,
    FaceObservation,
    Frame,
    TrackingResult,
)

log = logging.getLogger(__name__)

_EYE_REGIONS = frozenset({"left_eye", "right_eye"})
_FLOW_NAMES = tuple(f"flow_{n}" for n in CROPS)
_FLOW_SIDE = tuple(
    "left" if n.startswith("left") else "right" if n.startswith("right") else "both" for n in CROPS
)


@dataclass(frozen=True, slots=True)
class SpotterOptions:
    """Spotting settings; times are seconds of source time, distances px at 640 px face width.

    z_on / z_off: a group's displacement, in units of its own noise, that opens / keeps an event.
    min_peak: least displacement above the noise mean that may open an event (absolute floor).
    hold: seconds every group must stay quiet before an event closes (the decision delay).
    baseline_tau / noise_tau: seconds of the rolling neutral shape / of the noise statistics.
    landmark_tau: light smoothing of landmarks (fixed latency), 0 = raw.
    warmup: seconds of face before anything is spotted. max_micro: longer is a macro-expression.
    max_event: an expression held longer closes as macro and becomes the new neutral.
    min_active: seconds an event must stay above z_on / 2 (drops one-frame tracking spikes).
    max_gap: a missing face or a time jump longer than this drops an open event.
    blink_threshold: eyeBlink (or AU45 / 5) above this is eye closure; eye-only events are rejected.
    head_speed: deg/s of head rotation that marks an event as head motion; nose_ratio: the nose's
    own displacement, as a fraction of the peak, that marks misalignment (head motion) too.
    lighting: relative change of face brightness (needs frames) that marks a lighting change.
    region_z: z a region must reach to be listed. side_ratio: left/right contrast that names a side.
    use_flow: add dense optical flow (needs frames; costs about 1 ms per frame, see the benchmark).
    au_min: least AU intensity rise (0-5) to list an AU; au_px: px of geometric cue per AU unit
    when no AU estimator runs.
    """

    z_on: float = 5.0
    z_off: float = 2.0
    min_peak: float = 1.0
    hold: float = 0.06
    baseline_tau: float = 1.5
    noise_tau: float = 4.0
    landmark_tau: float = 0.0
    warmup: float = 0.4
    max_micro: float = 0.5
    max_event: float = 4.0
    min_active: float = 0.03
    max_gap: float = 0.25
    blink_threshold: float = 0.45
    head_speed: float = 60.0
    nose_ratio: float = 0.6
    lighting: float = 0.06
    region_z: float = 3.5
    side_ratio: float = 1.6
    sd_floor: float = 0.05
    use_flow: bool = False
    flow: FlowOptions = field(default_factory=FlowOptions)
    au_min: float = 0.25
    au_px: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.z_off < self.z_on:
            raise InputError(f"need 0 < z_off < z_on, got z_off={self.z_off} z_on={self.z_on}")
        for name in ("hold", "baseline_tau", "noise_tau", "max_micro", "max_event", "max_gap"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive seconds, got {getattr(self, name)}")
        if self.max_event <= self.max_micro:
            raise InputError(f"max_event ({self.max_event}) must exceed max_micro ({self.max_micro})")


@dataclass(slots=True)
class _Sample:
    t: float
    excess: np.ndarray  # displacement above the noise mean, per channel
    z: np.ndarray
    blink: bool
    head_speed: float
    luminance: float
    aus: np.ndarray | None


@dataclass(slots=True)
class _Event:
    samples: list[_Sample]  # pre-trigger history included
    trigger: int  # index of the sample that opened the event
    quiet_since: float | None = None
    peak_z: float = -np.inf
    apex_displacement: np.ndarray | None = None


class _FaceState:
    """Everything the spotter keeps for one face id."""

    def __init__(self, face: FaceObservation, opts: SpotterOptions, n_channels: int) -> None:
        self.baseline = LandmarkBaseline(reference_shape(face), opts.baseline_tau)
        self.flow = RegionFlow(opts.flow) if opts.use_flow else None
        self.mu = np.zeros(n_channels)
        self.var = np.full(n_channels, 0.25)  # a cautious prior (0.5 px) until the person's noise is known
        self.seen = 0.0
        self.last_t: float | None = None
        self.rotation: np.ndarray | None = None
        self.history: deque[_Sample] = deque()
        self.event: _Event | None = None
        self.au_base: np.ndarray | None = None


class MicroSpotter:
    """Online spotter: ``update(result, aus, frame=None) -> list[ExpressionEvent]`` (closed events only).

    >>> spotter = MicroSpotter(SpotterOptions())  # doctest: +SKIP
    >>> for result, aus in stream:
    ...     for event in spotter.update(result, aus):
    ...         print(event.kind, event.onset, event.offset, event.aus)
    """

    def __init__(self, options: SpotterOptions | None = None) -> None:
        self.options = options or SpotterOptions()
        self.channels: tuple[str, ...] = GROUP_NAMES + (_FLOW_NAMES if self.options.use_flow else ())
        self._region = list(GROUP_REGION) + (
            [REGION_NAMES.index(n) for n in CROPS] if self.options.use_flow else []
        )
        self._side = GROUP_SIDE + (_FLOW_SIDE if self.options.use_flow else ())
        self._eye = np.array([REGION_NAMES[r] in _EYE_REGIONS for r in self._region])
        self._nose = np.array([REGION_NAMES[r] == "nose" for r in self._region])
        self._faces: dict[int, _FaceState] = {}
        self._last_t: float | None = None
        #: Why candidates were dropped or rejected, and how much input was skipped (counts).
        self.stats: dict[str, int] = {}

    # ----------------------------------------------------------------- public
    def update(self, result: TrackingResult, aus: tuple[ActionUnits, ...] = (), frame: Frame | None = None
               ) -> list[ExpressionEvent]:  # fmt: skip
        """Feed one frame's tracking (and AUs, and optionally the frame); return events that just closed."""
        t = float(result.timestamp)
        if not np.isfinite(t):
            self._count("bad_timestamp")
            return []
        if self._last_t is not None and t <= self._last_t:
            self._count("repeated_timestamp")  # repeated or backwards: skipped, state untouched
            return []
        if self._last_t is not None and t - self._last_t > self.options.max_gap:
            self._count("time_jump")
            for st in self._faces.values():
                self._drop(st, "dropped_gap")
        self._last_t = t
        out: list[ExpressionEvent] = []
        by_id = {a.face_id: a for a in aus}
        seen = set()
        for face in result.faces:
            seen.add(face.face_id)
            st = self._faces.get(face.face_id)
            if st is None:
                st = self._faces[face.face_id] = _FaceState(face, self.options, len(self.channels))
            ev = self._update_face(st, face, by_id.get(face.face_id), frame, t)
            if ev is not None:
                out.append(ev)
        for fid, st in list(self._faces.items()):
            if fid in seen or st.last_t is None:
                continue
            if t - st.last_t > self.options.max_gap:
                self._drop(st, "dropped_missing_face")
            if t - st.last_t > 10 * self.options.max_event:
                del self._faces[fid]  # the person left long ago: forget them
        return out

    def flush(self) -> list[ExpressionEvent]:
        """End of stream: close open events with what was seen (offset = last sample) and return them."""
        out = []
        for fid, st in self._faces.items():
            if st.event is not None and st.last_t is not None:
                ev = self._close(st, fid, st.last_t, truncated=True)
                if ev is not None:
                    out.append(ev)
        return out

    def reset(self) -> None:
        """Forget every face, baseline and open event (a new stream)."""
        self._faces.clear()
        self._last_t = None
        self.stats.clear()

    def close(self) -> None:
        self.reset()

    # ---------------------------------------------------------------- private
    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _drop(self, st: _FaceState, why: str) -> None:
        if st.event is not None:
            self._count(why)
            log.debug("micro spotter: open event dropped (%s)", why)
            st.event = None

    def _update_face(self, st: _FaceState, face: FaceObservation, aus: ActionUnits | None, frame: Frame | None,
                     t: float) -> ExpressionEvent | None:  # fmt: skip
        o = self.options
        frozen = st.event is not None
        sample = st.baseline.update(face, t, frozen, o.landmark_tau)
        mag = sample.magnitude
        if st.flow is not None and frame is not None:
            mag = np.concatenate([mag, st.flow.update(frame, face, t, frozen)[:3]])
        elif st.flow is not None:
            mag = np.concatenate([mag, st.mu[len(GROUP_NAMES) :]])  # no frame: flow channels stay neutral
        dt = 0.0 if st.last_t is None else t - st.last_t
        st.last_t = t
        rot = face.pose.rotation.astype(np.float64)
        speed = 0.0
        if st.rotation is not None and dt > 0:
            cos = np.clip((np.trace(st.rotation.T @ rot) - 1.0) / 2.0, -1.0, 1.0)
            speed = float(np.degrees(np.arccos(cos)) / dt)
        st.rotation = rot
        blink = max(
            face.blendshapes[ARKIT_INDEX["eyeBlinkLeft"]], face.blendshapes[ARKIT_INDEX["eyeBlinkRight"]]
        )
        if aus is not None:
            blink = max(blink, aus["AU45"] / 5.0)
        is_blink = bool(blink > o.blink_threshold)
        excess = mag - st.mu
        z = excess / np.maximum(np.sqrt(st.var), o.sd_floor)
        lum = _luminance(frame, face) if frame is not None else np.nan
        au_vec = aus.intensity.astype(np.float64) if aus is not None else None
        s = _Sample(t, excess, z, is_blink, speed, lum, au_vec)

        if st.event is None:
            self._learn(st, mag, dt, is_blink, au_vec)
            st.seen += dt
            st.history.append(s)
            horizon = o.max_micro + 0.2
            while st.history and t - st.history[0].t > horizon:
                st.history.popleft()
            if st.seen < o.warmup:
                return None
            live = (z > o.z_on) & (excess > o.min_peak)
            if is_blink:
                live &= ~self._eye
            if live.any():
                samples = list(st.history)
                st.event = _Event(samples, len(samples) - 1)
                self._track_apex(st.event, s, sample.displacement, is_blink)
            return None

        ev = st.event
        ev.samples.append(s)
        self._track_apex(ev, s, sample.displacement, is_blink)
        active = z > o.z_off
        if is_blink:
            active &= ~self._eye
        if active.any():
            ev.quiet_since = None
        elif ev.quiet_since is None:
            ev.quiet_since = t
        onset_t = ev.samples[ev.trigger].t
        if t - onset_t > o.max_event:
            out = self._close(st, face.face_id, t, truncated=False)
            st.baseline.rebase()
            return out
        if ev.quiet_since is not None and t - ev.quiet_since >= o.hold:
            return self._close(st, face.face_id, t, truncated=False)
        return None

    def _learn(
        self, st: _FaceState, mag: np.ndarray, dt: float, is_blink: bool, au_vec: np.ndarray | None
    ) -> None:
        """Update the person's noise statistics (and AU baseline) while nothing happens."""
        o = self.options
        young = st.seen < o.noise_tau
        a = (dt / max(st.seen + dt, 1e-6)) if young else 1.0 - np.exp(-dt / o.noise_tau)
        a = float(np.clip(a, 0.0, 1.0)) if st.seen > 0 else 1.0
        learn = np.ones(len(mag), bool)
        if is_blink:
            learn &= ~self._eye
        if st.seen == 0:
            st.mu = mag.copy()
        else:
            d = mag - st.mu
            st.mu = np.where(learn, st.mu + a * d, st.mu)
            st.var = np.where(learn, (1 - a) * st.var + a * d * d, st.var)
        if au_vec is not None:
            st.au_base = au_vec.copy() if st.au_base is None else st.au_base + a * (au_vec - st.au_base)

    def _track_apex(self, ev: _Event, s: _Sample, displacement: np.ndarray, is_blink: bool) -> None:
        z = np.where(self._eye, -np.inf, s.z) if is_blink else s.z
        zmax = float(np.max(z))
        if zmax > ev.peak_z:
            ev.peak_z = zmax
            ev.apex_displacement = displacement

    def _close(self, st: _FaceState, face_id: int, now: float, truncated: bool) -> ExpressionEvent | None:
        o = self.options
        ev, st.event = st.event, None
        assert ev is not None
        samples = ev.samples
        ts = np.array([s.t for s in samples])
        z = np.array([s.z for s in samples])
        ex = np.array([s.excess for s in samples])
        blink = np.array([s.blink for s in samples])
        zb = np.where(blink[:, None] & self._eye[None, :], -np.inf, z)  # eye channels do not count in blinks
        after = ts >= ts[ev.trigger]
        peak_z = np.where(after[:, None], zb, -np.inf).max(axis=0)
        channel = int(np.argmax(peak_z))
        sig = np.where(blink & self._eye[channel], 0.0, ex[:, channel])
        i_apex = ev.trigger + int(np.argmax(sig[ev.trigger :]))
        apex, peak = float(ts[i_apex]), float(sig[i_apex])
        onset = _half_crossing(ts, sig, i_apex, peak, -1, apex)
        offset = _half_crossing(ts, sig, i_apex, peak, +1, apex)
        onset = max(2.0 * onset - apex, float(ts[0]))
        offset = min(2.0 * offset - apex, now)
        active_span = ts[after & (zb[:, channel] > o.z_on / 2)]
        if len(active_span) < 2 or active_span[-1] - active_span[0] < o.min_active:
            self._count("rejected_spike")
            return None
        in_event = (ts >= onset) & (ts <= offset)
        involved = peak_z >= o.region_z
        involved[channel] = True
        regions = sorted({REGION_NAMES[self._region[i]] for i in np.flatnonzero(involved)})
        nose_peak = float(np.where(self._nose, ex[after], -np.inf).max()) if self._nose.any() else 0.0
        if blink[in_event].any() and set(regions) <= _EYE_REGIONS | {"nose"}:
            self._count("rejected_blink")
            return None
        speeds = np.array([s.head_speed for s in samples])[in_event]
        if (speeds.size and speeds.max() > o.head_speed) or (
            REGION_NAMES[self._region[channel]] != "nose" and nose_peak > o.nose_ratio * peak
        ):
            self._count("rejected_head_motion")
            return None
        if REGION_NAMES[self._region[channel]] == "nose":
            self._count("rejected_head_motion")
            return None
        lum = np.array([s.luminance for s in samples])
        if np.isfinite(lum).all() and lum[0] > 0 and abs(lum[i_apex] - lum[0]) / lum[0] > o.lighting:
            self._count("rejected_lighting")
            return None
        side = self._side_of(peak_z, ex[i_apex], involved)
        regions = [r for r in regions if r != "nose"]
        kind = EventKind.MACRO if offset - onset > o.max_micro else EventKind.MICRO
        conf = float(1.0 / (1.0 + np.exp(-(peak_z[channel] - o.z_on) / 1.5)))
        if truncated:
            conf *= 0.5
        aus = self._aus(st, samples, i_apex, ev.apex_displacement, side)
        return ExpressionEvent(kind, face_id, onset, apex, offset, now, aus, tuple(regions), side, peak, conf)

    def _side_of(self, peak_z: np.ndarray, excess: np.ndarray, involved: np.ndarray) -> str:
        left = max((excess[i] for i, s in enumerate(self._side) if s == "left" and involved[i]), default=0.0)
        right = max(
            (excess[i] for i, s in enumerate(self._side) if s == "right" and involved[i]), default=0.0
        )
        r = self.options.side_ratio
        if left > r * max(right, 0.0) and left > 0:
            return "left"
        if right > r * max(left, 0.0) and right > 0:
            return "right"
        return "both"

    def _aus(self, st: _FaceState, samples: list[_Sample], i_apex: int, disp: np.ndarray | None, side: str
             ) -> dict[str, float]:  # fmt: skip
        o = self.options
        apex_aus = samples[i_apex].aus
        if apex_aus is not None and st.au_base is not None:
            rise = apex_aus - st.au_base
            return {AU_INTENSITY[i]: round(float(rise[i]), 3) for i in np.flatnonzero(rise >= o.au_min)}
        if disp is None:
            return {}
        out = {}
        for au, (left, right) in au_cues(disp).items():
            v = left if side == "left" else right if side == "right" else max(left, right)
            if v / o.au_px >= o.au_min:
                out[au] = round(min(v / o.au_px, 5.0), 3)
        return out


def _half_crossing(
    ts: np.ndarray, sig: np.ndarray, i_apex: int, peak: float, step: int, apex: float
) -> float:
    """Time where ``sig`` crosses ``peak / 2`` walking from the apex in direction ``step`` (interpolated)."""
    half = peak / 2.0
    i = i_apex
    while 0 <= i + step < len(sig) and sig[i + step] > half:
        i += step
    j = i + step
    if not 0 <= j < len(sig):
        return float(ts[i])
    a, b = sig[i], sig[j]
    f = (a - half) / (a - b) if a != b else 0.0
    return float(ts[i] + f * (ts[j] - ts[i]))


def _luminance(frame: Frame, face: FaceObservation) -> float:
    """Mean brightness (0-255) of the face box, sampled every 4th pixel."""
    img = frame.image
    p = face.landmarks_px[:, :2]
    h, w = img.shape[:2]
    x0, y0 = np.clip(p.min(axis=0).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(p.max(axis=0).astype(int) + 1, 1, [w, h])
    patch = img[y0:y1:4, x0:x1:4]
    return float(patch.mean()) if patch.size else float("nan")
