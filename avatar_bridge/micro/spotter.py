"""The online micro-expression spotter: causal, per face, with a bounded decision delay.

Per frame and face it looks, for small groups of head-pose-normalised landmarks (and, optionally,
optical flow in three regions), for a bump: how far the position ``h`` seconds ago stands out from
the straight line between the positions ``2h`` seconds ago and now (``h`` in ``scales``). Slow
drift cancels; the score is in units of that person's own variability, learnt online while nothing
is spotted. A group passing ``z_on`` opens a candidate with the position before the bump as its
reference; the candidate closes once its groups have been back under ``z_off`` for ``hold``. Onset and
offset are placed by the half-maximum crossings of the dominant group (full width from half
maximum), so they do not depend on where a threshold cut a faint movement. A candidate that has
not come back after ``max_micro`` seconds is handed to a macro tracker (reported as a macro event
when the face returns, or after ``max_event``), and the micro layer re-arms at once, so a
micro-expression on top of a held expression is still seen. Blinks, head motion and lighting
changes are rejected. Every window is in seconds, so 30, 120 and 200 fps behave alike.
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

    z_on / z_off: distance from the reference, in units of the person's own variability, that opens
    / keeps an event. min_peak: least distance above the usual one that may open an event.
    scales: bump half-widths h in seconds (micro-expressions last 0.15-0.5 s); each probe position is
    the mean over +-``probe`` seconds, so high frame rates average their extra samples.
    ref_span: seconds averaged, before the bump, for an event's reference position.
    hold: seconds every group must stay quiet before an event closes (most of the decision delay).
    noise_tau: seconds of the running variability statistics. landmark_tau: light smoothing of
    landmarks (fixed latency), 0 = raw. baseline_tau: the features' slow neutral (not used to spot).
    warmup: seconds of face before anything is spotted. max_micro: longer is a macro-expression.
    max_event: a macro-expression still held after this is reported and dropped.
    min_duration: shortest event kept (drops one-frame tracking spikes). step_ratio: a bump whose
    two ends differ by more than this times its height is the edge of an expression that stays
    (a macro-expression starts), not a micro-expression. z_learn: values above this many
    deviations are not learnt as noise (they are movements).
    max_gap: a missing face or a time jump longer than this drops open events.
    blink_threshold: eyeBlink (or AU45 / 5) above this is eye closure; eye-only events are rejected.
    head_speed: deg/s of head rotation that marks an event as head motion; nose_ratio: the nose's
    own displacement, as a fraction of the peak, that marks misalignment (head motion) too.
    lighting: relative change of face brightness (needs frames) that marks a lighting change.
    region_z: z a region must reach to be listed. side_ratio: left/right contrast that names a side.
    use_flow: add dense optical flow channels (needs frames; cost in benchmarks/bench_spotting.py).
    au_min: least AU intensity rise (0-5) to list an AU; au_px: px of geometric cue per AU unit
    when no AU estimator runs.
    """

    z_on: float = 8.0
    z_off: float = 2.0
    min_peak: float = 0.6
    scales: tuple[float, ...] = (0.1, 0.2)
    probe: float = 0.02
    ref_span: float = 0.1
    hold: float = 0.06
    noise_tau: float = 4.0
    landmark_tau: float = 0.0
    baseline_tau: float = 1.5
    warmup: float = 0.5
    max_micro: float = 0.5
    max_event: float = 4.0
    min_duration: float = 0.06
    step_ratio: float = 0.6
    z_learn: float = 8.0
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
        for name in ("hold", "noise_tau", "max_micro", "max_event", "max_gap", "ref_span"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive seconds, got {getattr(self, name)}")
        if not self.scales or min(self.scales) <= 0:
            raise InputError(f"scales must be positive seconds, got {self.scales}")
        if self.max_event <= self.max_micro:
            raise InputError(f"max_event ({self.max_event}) must exceed max_micro ({self.max_micro})")


@dataclass(slots=True)
class _Sample:
    t: float
    pos: np.ndarray  # (C, 2) channel positions
    aligned: np.ndarray  # (478, 3)
    blink: bool
    head_speed: float
    luminance: float
    aus: np.ndarray | None
    z: np.ndarray | None = None  # distance from the open event's reference, in noise units
    excess: np.ndarray | None = None


@dataclass(slots=True)
class _Open:
    """An open candidate (micro layer) or a held expression (macro layer)."""

    ref: np.ndarray  # (C, 2) frozen reference positions
    ref_aligned: np.ndarray
    samples: list[_Sample]
    start: float  # time the event was opened (trigger)
    involved: np.ndarray  # channels that passed z_on; the event ends when they are back
    quiet_since: float | None = None

    def observe(self, s: _Sample, z_on: float, z_off: float, nose: np.ndarray) -> None:
        """Add a scored sample; keep track of when the involved channels came back under ``z_off``."""
        assert s.z is not None
        self.samples.append(s)
        self.involved |= (s.z > z_on) & ~nose
        quiet = not (s.z[self.involved] > z_off).any()
        self.quiet_since = (self.quiet_since if self.quiet_since is not None else s.t) if quiet else None


@dataclass(slots=True)
class _Peak:
    """The strongest bump seen lately: emitted once nothing stronger came for ``hold`` seconds."""

    z: float
    scale: int
    channel: int
    t: float  # when it was seen
    centre: float  # its apex estimate, t - h
    zvec: np.ndarray  # every channel's z at that scale and time


class _FaceState:
    """Everything the spotter keeps for one face id."""

    def __init__(self, face: FaceObservation, opts: SpotterOptions, n_channels: int) -> None:
        self.baseline = LandmarkBaseline(reference_shape(face), opts.baseline_tau)
        self.flow = RegionFlow(opts.flow) if opts.use_flow else None
        self.mu = np.zeros((len(opts.scales), n_channels))
        self.var = np.full((len(opts.scales), n_channels), 0.25)  # cautious prior (0.5 px) until learnt
        self.learnt = 0.0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.rotation: np.ndarray | None = None
        self.history: deque[_Sample] = deque()
        self.peak: _Peak | None = None
        self.refractory = -np.inf  # no new micro-expression centred before this time
        self.macro: _Open | None = None
        self.au_base: np.ndarray | None = None


class MicroSpotter:
    """Online spotter: ``update(result, aus, frame=None) -> list[ExpressionEvent]`` (closed events only).

    >>> spotter = MicroSpotter(SpotterOptions())  # doctest: +SKIP
    >>> for result, aus in stream:
    ...     for event in spotter.update(result, aus):
    ...         print(event.kind, event.onset, event.offset, event.aus)
    """

    def __init__(self, options: SpotterOptions | None = None) -> None:
        self.options = o = options or SpotterOptions()
        flow_regions = [REGION_NAMES.index(n) for n in CROPS] if o.use_flow else []
        self.channels: tuple[str, ...] = GROUP_NAMES + (_FLOW_NAMES if o.use_flow else ())
        self._region = list(GROUP_REGION) + flow_regions
        self._side = GROUP_SIDE + (_FLOW_SIDE if o.use_flow else ())
        self._eye = np.array([REGION_NAMES[r] in _EYE_REGIONS for r in self._region])
        self._nose = np.array([REGION_NAMES[r] == "nose" for r in self._region])
        self._faces: dict[int, _FaceState] = {}
        self._last_t: float | None = None
        #: Why candidates were dropped or rejected, and how much input was skipped (counts).
        self.stats: dict[str, int] = {}

    # ----------------------------------------------------------------- public
    def update(
        self, result: TrackingResult, aus: tuple[ActionUnits, ...] = (), frame: Frame | None = None
    ) -> list[ExpressionEvent]:
        """Feed one frame's tracking (and AUs, optionally the frame); return the events that just closed."""
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
                st.history.clear()
        self._last_t = t
        out: list[ExpressionEvent] = []
        by_id = {a.face_id: a for a in aus}
        seen = set()
        for face in result.faces:
            seen.add(face.face_id)
            st = self._faces.get(face.face_id)
            if st is None:
                st = self._faces[face.face_id] = _FaceState(face, self.options, len(self.channels))
            out += self._update_face(st, face, by_id.get(face.face_id), frame, t)
        for fid, st in list(self._faces.items()):
            if fid in seen or st.last_t is None:
                continue
            if t - st.last_t > self.options.max_gap:
                self._drop(st, "dropped_missing_face")
                st.history.clear()
            if t - st.last_t > 10 * self.options.max_event:
                del self._faces[fid]  # the person left long ago: forget them
        return out

    def flush(self) -> list[ExpressionEvent]:
        """End of stream: report held expressions (macro layer) with what was seen, offset = last sample.

        Their confidence is halved to mark them as cut by the end of the stream. A bump already
        seen but not yet confirmed is decided now, with what was seen.
        """
        out = []
        for fid, st in self._faces.items():
            if st.peak is not None and st.last_t is not None:
                peak, st.peak = st.peak, None
                ev = self._micro_event(st, fid, peak, st.last_t)
                out += [ev] if ev is not None else []
            if st.macro is not None and st.last_t is not None:
                m, st.macro = st.macro, None
                closed = self._close(st, fid, m, st.last_t, truncated=True, macro=True)
                out += [closed] if closed is not None else []
        return out

    def reset(self) -> None:
        """Forget every face, reference and open event (a new stream)."""
        self._faces.clear()
        self._last_t = None
        self.stats.clear()

    def close(self) -> None:
        self.reset()

    # ---------------------------------------------------------------- private
    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _drop(self, st: _FaceState, why: str) -> None:
        for layer in ("peak", "macro"):
            if getattr(st, layer) is not None:
                self._count(why)
                log.debug("micro spotter: open %s event dropped (%s)", layer, why)
                setattr(st, layer, None)

    def _sample(self, st: _FaceState, face: FaceObservation, aus: ActionUnits | None, frame: Frame | None,
                t: float) -> _Sample:  # fmt: skip
        o = self.options
        feat = st.baseline.update(face, t, False, o.landmark_tau)
        pos = feat.positions
        if st.flow is not None:
            if frame is not None:
                flow = st.flow.update(frame, face, t, st.peak is not None)[:3]
            else:  # no frame: flow channels stay where they were
                flow = st.history[-1].pos[len(GROUP_NAMES) :, 0] if st.history else np.zeros(len(CROPS))
            pos = np.vstack([pos, np.stack([flow, np.zeros_like(flow)], axis=1)])
        dt = 0.0 if st.last_t is None else t - st.last_t
        rot = face.pose.rotation.astype(np.float64)
        speed = 0.0
        if st.rotation is not None and dt > 0:
            cos = np.clip((np.trace(st.rotation.T @ rot) - 1.0) / 2.0, -1.0, 1.0)
            speed = float(np.degrees(np.arccos(cos)) / dt)
        st.rotation = rot
        bl = face.blendshapes
        blink = max(float(bl[ARKIT_INDEX["eyeBlinkLeft"]]), float(bl[ARKIT_INDEX["eyeBlinkRight"]]))
        if aus is not None:
            blink = max(blink, aus["AU45"] / 5.0)
        lum = _luminance(frame, face) if frame is not None else float("nan")
        au_vec = aus.intensity.astype(np.float64) if aus is not None else None
        return _Sample(t, pos, feat.aligned, bool(blink > o.blink_threshold), speed, lum, au_vec)

    def _at(self, st: _FaceState, tau: float) -> np.ndarray | None:
        """Mean channel positions over tau +- probe (the nearest sample if none falls inside)."""
        w = self.options.probe
        picked, best, best_d = [], None, np.inf
        for smp in reversed(st.history):
            d = abs(smp.t - tau)
            if d <= w:
                picked.append(smp.pos)
            elif smp.t < tau - w:
                if not picked and d < best_d:
                    best = smp.pos
                break
            if d < best_d:
                best, best_d = smp.pos, d
        if picked:
            return np.mean(picked, axis=0)
        return best if best_d <= 2 * w + 0.05 else None

    def _bump(self, st: _FaceState, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Per scale h and channel: the bump |x(t-h) - (x(t-2h) + x(t)) / 2| and the step |x(t) - x(t-2h)|.

        A bump that comes back (micro-expression) has a small step; an expression that stays has a
        step about twice its bump.
        """
        now = self._at(st, t)
        bumps, steps = [], []
        for h in self.options.scales:
            mid, old = self._at(st, t - h), self._at(st, t - 2 * h)
            if now is None or mid is None or old is None:
                return None
            bumps.append(np.hypot(*(mid - 0.5 * (old + now)).T))
            steps.append(np.hypot(*(now - old).T))
        return np.array(bumps), np.array(steps)

    def _reference(self, st: _FaceState, start: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean positions and aligned landmarks over [start - ref_span, start] (the face before the bump)."""
        win = [s for s in st.history if start - self.options.ref_span <= s.t <= start]
        if not win:
            win = [min(st.history, key=lambda s: abs(s.t - start))]
        return np.mean([s.pos for s in win], axis=0), np.mean([s.aligned for s in win], axis=0)

    def _score(self, st: _FaceState, s: _Sample, ref: np.ndarray) -> None:
        dist = np.hypot(*(s.pos - ref).T)
        s.excess = dist - st.mu[-1]
        s.z = s.excess / np.maximum(np.sqrt(st.var[-1]), self.options.sd_floor)
        if s.blink:
            s.z = np.where(self._eye, 0.0, s.z)  # eye channels do not count while the eyes close

    def _update_face(
        self, st: _FaceState, face: FaceObservation, aus: ActionUnits | None, frame: Frame | None, t: float
    ) -> list[ExpressionEvent]:
        o = self.options
        s = self._sample(st, face, aus, frame, t)
        dt = 0.0 if st.last_t is None else t - st.last_t
        st.last_t = t
        st.first_t = t if st.first_t is None else st.first_t
        st.history.append(s)
        while st.history and t - st.history[0].t > 2 * max(o.scales) + o.ref_span + 0.3:
            st.history.popleft()
        out: list[ExpressionEvent] = []

        if st.macro is not None:
            m = st.macro
            scored = _Sample(s.t, s.pos, s.aligned, s.blink, s.head_speed, s.luminance, s.aus)
            self._score(st, scored, m.ref)
            m.observe(scored, o.z_on, o.z_off, self._nose)
            if (m.quiet_since is not None and t - m.quiet_since >= o.hold) or t - m.start > o.max_event:
                st.macro = None
                ev = self._close(st, face.face_id, m, t, truncated=False, macro=True)
                out += [ev] if ev is not None else []

        bumps = self._bump(st, t)
        if bumps is None:
            return out
        bump, ends = bumps
        sd = np.maximum(np.sqrt(st.var), o.sd_floor)
        z = (bump - st.mu) / sd
        horizon = t - 2 * max(o.scales) - o.probe
        if any(p.blink for p in st.history if p.t >= horizon):
            z[:, self._eye] = 0.0  # eye channels do not count around a blink
        warm = t - st.first_t >= o.warmup
        strong = (z > o.z_on) & (bump - st.mu > o.min_peak) & ~self._nose[None, :]  # the nose only vetoes
        centre = t - np.asarray(o.scales)[:, None]
        is_bump = ends < o.step_ratio * bump
        cand = strong & is_bump & (centre > st.refractory) & warm
        step = strong & ~is_bump & warm
        if step.any() and st.macro is None:
            k = int(np.argmax(np.where(step, z, -np.inf).max(axis=1)))
            begin = t - 2 * o.scales[k]
            ref, ref_aligned = self._reference(st, begin)
            macro = _Open(ref, ref_aligned, [], begin, step.any(axis=0))
            for p in (p for p in st.history if p.t > begin - o.ref_span):
                scored = _Sample(p.t, p.pos, p.aligned, p.blink, p.head_speed, p.luminance, p.aus)
                self._score(st, scored, ref)
                macro.observe(scored, o.z_on, o.z_off, self._nose)
            macro.quiet_since = None
            st.macro = macro
            self._count("macro_opened")
        if cand.any():
            k, j = np.unravel_index(int(np.argmax(np.where(cand, z, -np.inf))), z.shape)
            if st.peak is None or z[k, j] > st.peak.z:
                st.peak = _Peak(float(z[k, j]), int(k), int(j), t, float(centre[k, 0]), z[k].copy())
        if st.peak is not None and t - st.peak.t >= o.hold:
            peak, st.peak = st.peak, None
            ev = self._micro_event(st, face.face_id, peak, t)
            if ev is not None:
                st.refractory = ev.offset
                out.append(ev)
            else:
                st.refractory = peak.centre + o.scales[peak.scale]
        if not (cand.any() or step.any()):
            self._learn(st, bump, dt, (s.blink & self._eye) | (z > o.z_learn), s.aus)
        return out

    def _micro_event(self, st: _FaceState, face_id: int, peak: _Peak, now: float) -> ExpressionEvent | None:
        """Time, check and describe a confirmed bump (``peak``); None when it is rejected."""
        o = self.options
        h, j, c = o.scales[peak.scale], peak.channel, peak.centre
        a, b = self._at(st, c - h), self._at(st, c + h)
        mid = self._at(st, c)
        if a is None or b is None or mid is None:
            return None
        win = [p for p in st.history if c - 2 * h - o.probe <= p.t <= now]
        ts = np.array([p.t for p in win])
        line = a[j] + np.outer((ts - (c - h)) / (2 * h), b[j] - a[j])
        v = mid[j] - 0.5 * (a[j] + b[j])
        v = v / max(float(np.hypot(*v)), 1e-9)
        sig = (np.array([p.pos[j] for p in win]) - line) @ v
        near = np.abs(ts - c) <= h / 2
        i_apex = int(np.flatnonzero(near)[np.argmax(sig[near])]) if near.any() else int(np.argmax(sig))
        apex, top = float(ts[i_apex]), float(sig[i_apex])
        onset = max(2.0 * _half_crossing(ts, sig, i_apex, top, -1) - apex, float(ts[0]))
        offset = min(max(2.0 * _half_crossing(ts, sig, i_apex, top, +1) - apex, apex), now)
        if offset - onset < o.min_duration:
            self._count("rejected_spike")
            return None
        if st.macro is not None and onset - 2 * h <= st.macro.start <= offset:
            self._count("rejected_macro_onset")  # the first edge of an expression that stays
            return None
        inside = [p for p in win if onset <= p.t <= offset]
        involved = peak.zvec >= o.region_z
        involved[j] = True
        involved &= ~self._nose
        regions = sorted({REGION_NAMES[self._region[i]] for i in np.flatnonzero(involved)})
        if any(p.blink for p in inside) and set(regions) <= _EYE_REGIONS:
            self._count("rejected_blink")
            return None
        nose_z = float(np.max(peak.zvec[self._nose], initial=0.0))
        speed = max((p.head_speed for p in inside), default=0.0)
        if nose_z > o.z_on or nose_z > o.nose_ratio * peak.z or speed > o.head_speed:
            self._count("rejected_head_motion")
            return None
        lum0, lum1 = win[0].luminance, win[i_apex].luminance
        if np.isfinite(lum0) and np.isfinite(lum1) and lum0 > 0 and abs(lum1 - lum0) / lum0 > o.lighting:
            self._count("rejected_lighting")
            return None
        excess = np.hypot(*(mid - 0.5 * (a + b)).T)
        side = self._side_of(np.where(involved, excess, 0.0), involved)
        kind = EventKind.MACRO if offset - onset > o.max_micro else EventKind.MICRO
        conf = float(1.0 / (1.0 + np.exp(-(peak.z - o.z_on) / 1.5)))
        apex_s = win[i_apex]
        before = self._aligned_at(st, c - h)
        after = self._aligned_at(st, c + h)
        disp = apex_s.aligned - 0.5 * (before + after)
        aus = self._aus(st, apex_s, disp, side)
        return ExpressionEvent(kind, face_id, onset, apex, offset, now, aus, tuple(regions), side, top, conf)

    def _aligned_at(self, st: _FaceState, tau: float) -> np.ndarray:
        return min(st.history, key=lambda p: abs(p.t - tau)).aligned

    def _learn(
        self, st: _FaceState, dist: np.ndarray, dt: float, skip: np.ndarray, au_vec: np.ndarray | None
    ) -> None:
        """Update the person's variability statistics (and AU baseline) while nothing is open.

        ``skip`` marks values not to learn from (eye channels in a blink, outliers above z_on), so
        that expressions do not inflate the noise estimate; the rest is clipped at 2.5 deviations.
        """
        o = self.options
        a = dt / max(st.learnt + dt, 1e-9) if st.learnt < o.noise_tau else 1.0 - np.exp(-dt / o.noise_tau)
        a = 1.0 if st.learnt == 0 else float(np.clip(a, 0.0, 1.0))
        st.learnt += dt
        learn = ~skip
        if a >= 1.0:
            st.mu = dist.copy()
        else:
            sd = np.maximum(np.sqrt(st.var), o.sd_floor)
            d = np.clip(dist - st.mu, -2.5 * sd, 2.5 * sd)
            st.mu = np.where(learn, st.mu + a * d, st.mu)
            st.var = np.where(learn, (1 - a) * st.var + a * d * d, st.var)
        if au_vec is not None:
            st.au_base = au_vec.copy() if st.au_base is None else st.au_base + a * (au_vec - st.au_base)

    def _close(self, st: _FaceState, face_id: int, ev: _Open, now: float, truncated: bool, macro: bool
               ) -> ExpressionEvent | None:  # fmt: skip
        o = self.options
        samples = ev.samples
        ts = np.array([s.t for s in samples])
        z = np.array([s.z for s in samples])
        ex = np.array([s.excess for s in samples])
        blink = np.array([s.blink for s in samples])
        after = ts >= ev.start
        peak_z = np.where(after[:, None] & ~self._nose[None, :], z, -np.inf).max(axis=0)
        channel = int(np.argmax(peak_z))
        sig = np.where(blink & self._eye[channel], 0.0, ex[:, channel])
        i0 = int(np.argmax(after))
        i_apex = i0 + int(np.argmax(sig[i0:]))
        apex, peak = float(ts[i_apex]), float(sig[i_apex])
        # Full width from half maximum; a long expression is timed on its first rise instead.
        i_rise = i0 + int(np.argmax(sig[i0:] >= 0.9 * peak)) if macro else i_apex
        onset = max(2.0 * _half_crossing(ts, sig, i_rise, peak, -1) - float(ts[i_rise]), float(ts[0]))
        if macro and not truncated and ev.quiet_since is not None:
            offset = ev.quiet_since
        else:
            offset = min(2.0 * _half_crossing(ts, sig, i_apex, peak, +1) - apex, now)
        offset = max(offset, apex)
        in_event = (ts >= onset) & (ts <= offset)
        involved = peak_z >= o.region_z
        involved[channel] = True
        regions = sorted({REGION_NAMES[self._region[i]] for i in np.flatnonzero(involved)})
        if blink[in_event].any() and set(regions) <= _EYE_REGIONS | {"nose"}:
            self._count("rejected_blink")
            return None
        nose_peak = float(np.where(self._nose[None, :] & after[:, None], ex, -np.inf).max())
        speeds = np.array([s.head_speed for s in samples])[in_event]
        if (
            REGION_NAMES[self._region[channel]] == "nose"
            or nose_peak > o.nose_ratio * peak
            or (speeds.size and speeds.max() > o.head_speed)
        ):
            self._count("rejected_head_motion")
            return None
        lum = np.array([s.luminance for s in samples])
        if np.isfinite(lum).all() and lum[0] > 0 and abs(lum[i_apex] - lum[0]) / lum[0] > o.lighting:
            self._count("rejected_lighting")
            return None
        side = self._side_of(ex[i_apex], involved)
        regions = [r for r in regions if r != "nose"]
        kind = EventKind.MACRO if macro or offset - onset > o.max_micro else EventKind.MICRO
        conf = float(1.0 / (1.0 + np.exp(-(peak_z[channel] - o.z_on) / 1.5)))
        conf *= 0.5 if truncated else 1.0
        aus = self._aus(st, samples[i_apex], samples[i_apex].aligned - ev.ref_aligned, side)
        return ExpressionEvent(kind, face_id, onset, apex, offset, now, aus, tuple(regions), side, peak, conf)

    def _side_of(self, excess: np.ndarray, involved: np.ndarray) -> str:
        sides = np.array(self._side)
        left = float(np.max(excess[(sides == "left") & involved], initial=0.0))
        right = float(np.max(excess[(sides == "right") & involved], initial=0.0))
        r = self.options.side_ratio
        if left > 0 and left > r * right:
            return "left"
        if right > 0 and right > r * left:
            return "right"
        return "both"

    def _aus(self, st: _FaceState, apex: _Sample, disp: np.ndarray, side: str) -> dict[str, float]:
        """AUs of the event: rises of the AU estimator's intensities, or geometric cues without one."""
        o = self.options
        if apex.aus is not None and st.au_base is not None:
            rise = apex.aus - st.au_base
            return {AU_INTENSITY[i]: round(float(rise[i]), 3) for i in np.flatnonzero(rise >= o.au_min)}
        out = {}
        for au, (left, right) in au_cues(disp).items():
            v = left if side == "left" else right if side == "right" else max(left, right)
            if v / o.au_px >= o.au_min:
                out[au] = round(min(v / o.au_px, 5.0), 3)
        return out


def _half_crossing(ts: np.ndarray, sig: np.ndarray, i_apex: int, peak: float, step: int) -> float:
    """Time where ``sig`` crosses ``peak / 2`` walking from the apex by ``step`` (linear interpolation)."""
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
