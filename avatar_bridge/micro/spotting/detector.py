"""Per-face temporal detection on channel tracks: bumps that come back (micro) and held expressions (macro).

For each scale ``h`` the bump of a channel is how far its position ``h`` seconds ago stands out
from the straight line between ``2h`` ago and now: slow drift cancels, a movement that returns
stands out. Scores are in units of the person's own variability, learnt online while nothing is
spotted. The strongest bump is kept until nothing stronger came for ``hold`` seconds, then timed:
onset and offset extend the half-maximum crossings around the apex to the full raised-cosine width
(exact for the symmetric rise and fall of a muscle twitch), so they do not depend on where a
threshold cut a faint movement. A bump whose two ends differ (an expression that stays) opens a
held expression instead, reported as macro when the face returns or after ``max_event``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from avatar_bridge.micro.spotting.channels import Layout
from avatar_bridge.micro.spotting.history import History
from avatar_bridge.micro.spotting.options import SpotterOptions
from avatar_bridge.micro.spotting.stabilise import design, rigid_motion


@dataclass(slots=True)
class Found:
    """A detected movement before it is described: times, the channels involved, each channel's
    movement vector at the apex (C, 2), the dominant channel's peak (px) and score."""

    macro: bool
    onset: float
    apex: float
    offset: float
    emitted_at: float
    involved: np.ndarray
    movement: np.ndarray
    peak: float
    z: float
    truncated: bool = False
    zone: int = 0


@dataclass(slots=True)
class _Peak:
    z: float
    scale: int
    channel: int
    t: float
    centre: float
    zvec: np.ndarray
    template: int = -1  # the AU template whose score opened it, or -1 (the channel's own)


@dataclass(slots=True)
class _Held:
    """A held expression: reference positions before it, and the scored samples since."""

    ref: np.ndarray
    start: float
    involved: np.ndarray
    t: list[float] = field(default_factory=list)
    z: list[np.ndarray] = field(default_factory=list)
    excess: list[np.ndarray] = field(default_factory=list)
    blink: list[bool] = field(default_factory=list)
    pos: list[np.ndarray] = field(default_factory=list)
    quiet_since: float | None = None
    top: np.ndarray = field(default_factory=lambda: np.zeros(0))
    end: float | None = None  # once back for ``hold``: when it ends (a brief one's fall), or -inf


class Detector:
    """Detection state of one face (``push`` one frame's channel positions; get finished movements)."""

    def __init__(self, options: SpotterOptions, layout: Layout) -> None:
        o = self.options = options
        self.layout = layout
        n = len(layout.names)
        self.eye = layout.eye
        # Channels that are never an expression's (excluded): the nose (landmark groups) and the
        # rigid motion (flow); the nose alone is also evidence of head motion by its size.
        self.nose, self.rigid = layout.nose, layout.rigid
        self.excluded = self.nose | self.rigid
        self.expressive = ~self.excluded
        self.scales = np.asarray(o.scales, dtype=np.float64)
        self.max_scale = max(o.scales)
        self.window = 2 * max(o.scales) + 2 * o.probe + o.hold + 0.3  # seconds of history kept
        self.history = History(n)
        self.n_channels = n
        # AU templates: each a signed sum of its channels' bump vectors along the AU's directions,
        # scored as one more column after the channels (weights: (C * 2, T); members: (C, T)).
        self._tpl = layout.templates if o.templates else ()
        t = len(self._tpl)
        self._tw, self._tmember = np.zeros((n, 2, t)), np.zeros((n, t), dtype=bool)
        for ti, (idx, dirs) in enumerate(self._tpl):
            self._tw[idx, :, ti] = dirs / np.sqrt(len(idx))
            self._tmember[idx, ti] = True
        self._tw = self._tw.reshape(2 * n, t)
        # Some score this high is needed for a candidate to open (pooling needs pool_min on each
        # pooled channel); for templates, the raw scores that map onto the channels' thresholds.
        self._opening = min(o.z_on, o.pool_min) if o.pool > 1 else o.z_on
        self._t_open, self._t_learn = template_z(self._opening), template_z(o.z_learn)
        self.mu = np.zeros((len(o.scales), n + t))
        self.var = np.full((len(o.scales), n + t), 0.25)  # cautious prior (0.5 px) until learnt
        self.sd = np.maximum(np.sqrt(self.var), o.sd_floor)  # kept with var: the scale z is scored in
        self._lum_ref = float("nan")  # the face's brightness the noise was learnt in (_learn)
        # Probe times of the bumps relative to now (now, h and 2h ago per scale), each averaged once
        # per frame; _mid, _old: per scale, the indices of its middle and old probes.
        rel = sorted({0.0} | {-s for s in o.scales} | {-2 * s for s in o.scales}, reverse=True)
        self._rel = np.array(rel)
        self._mid = np.array([rel.index(-s) for s in o.scales])
        self._old = np.array([rel.index(-2 * s) for s in o.scales])
        # Zones (upper face: brows and eyes; lower face: mouth) each keep their own candidate,
        # refractory time and context, so an expression of one half neither hides nor vetoes a brief
        # movement of the other; one zone of every channel when ``zones`` is off.
        upper = self.eye & self.expressive
        masks = (
            [upper, self.expressive & ~upper]
            if o.zones and upper.any() and (~upper).any()
            else [self.expressive]
        )
        self.zone_masks = [m for m in masks if m.any()]
        self.zone_of = np.zeros(n, dtype=np.intp)
        for zi, m in enumerate(self.zone_masks):
            self.zone_of[m] = zi
        # The zones' channels one zone after another, and where each zone starts: every zone's
        # largest bump in one reduction (the context rule, each frame).
        self._by_zone = np.concatenate([np.flatnonzero(m) for m in self.zone_masks])
        self._zone_starts = np.cumsum([0] + [int(m.sum()) for m in self.zone_masks[:-1]])
        #: Zone names (``zone_masks`` order), and per zone the time spans ([start, end], s) in which
        #: the face was calm there: no bump over ``busy_peak`` centred in the last ``busy_window``
        #: (where the context rule lets a micro-expression be reported), within ``watched`` seconds
        #: of warm, full-window input.
        self.zone_names = ("upper", "lower") if len(self.zone_masks) == 2 else ("face",)
        self.calm_spans: tuple[list[list[float]], ...] = tuple([] for _ in self.zone_masks)
        self.watched = 0.0
        self._last_busy = np.full(len(self.zone_masks), -np.inf)  # latest bump centre over busy_peak
        self.learnt = 0.0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.peaks: list[_Peak | None] = [None] * len(self.zone_masks)
        self.refractory = np.full(len(self.zone_masks), -np.inf)
        self.last_micro: list[Found | None] = [None] * len(self.zone_masks)
        self.held: _Held | None = None
        #: Macro bumps the micro layer found while a held expression was open over them (``_settle``).
        self.deferred: list[Found] = []
        self.quiet = True  # no channel's bump passed z_pair in the last frame
        self.counts: dict[str, int] = {}
        #: (t, (S, zones) largest bump of each zone's channels per scale) of recent frames: the context rule.
        self.recent: deque[tuple[float, np.ndarray]] = deque()
        self.keep = o.busy_window + 2 * max(o.scales) + o.max_micro + o.hold + 2 * o.probe

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def peak(self) -> _Peak | None:
        """An open candidate (the strongest of the zones'), or None."""
        open_ = [p for p in self.peaks if p is not None]
        return max(open_, key=lambda p: p.z) if open_ else None

    @property
    def busy(self) -> bool:
        """A candidate or a held expression is open, or something moves (the flow reference should stay)."""
        return self.held is not None or not self.quiet or any(p is not None for p in self.peaks)

    def drop(self, why: str) -> None:
        """Forget open candidates and the window (a gap in the input)."""
        for zi, p in enumerate(self.peaks):
            if p is not None:
                self._count(why)
                self.peaks[zi] = None
        if self.held is not None:
            self._count(why)
            self.held = None
        self.deferred.clear()  # parts of the held expression dropped with it
        self.history.clear()
        self.recent.clear()

    # ------------------------------------------------------------------ per frame
    def push(self, t: float, pos: np.ndarray, blink: bool, speed: float, lum: float) -> list[Found]:
        o = self.options
        prev = t if self.last_t is None else self.last_t
        dt = t - prev
        self.last_t = t
        self.first_t = t if self.first_t is None else self.first_t
        h = self.history
        h.append(t, pos, blink, speed, lum)
        h.trim(t - self.window)
        out: list[Found] = []
        if self.held is not None:
            out += self._observe_held(t, pos, blink)
        bumps = self._bump(t)
        if bumps is None:
            return out
        bump, ends, tb, te = bumps
        warm = t - self.first_t >= o.warmup
        if o.busy_window > 0:
            zone_max = np.maximum.reduceat(bump[:, self._by_zone], self._zone_starts, axis=1)
            self.recent.append((t, zone_max))
            while self.recent[0][0] < t - self.keep:
                self.recent.popleft()
            over = zone_max > o.busy_peak
            if over.any():  # the latest centre (t - h) of a bump over busy_peak, per zone
                centres = np.where(over, (t - self.scales)[:, None], -np.inf).max(axis=0)
                np.maximum(self._last_busy, centres, out=self._last_busy)
        if warm:  # with the context rule off nothing is ever busy (_last_busy stays -inf)
            self.watched += dt
            for zi in np.flatnonzero(t - self._last_busy > o.busy_window).tolist():
                spans = self.calm_spans[zi]  # the time since the last frame was calm: extend or open
                if spans and spans[-1][1] == prev:
                    spans[-1][1] = t
                else:
                    spans.append([prev, t])
        full = np.hstack([bump, tb]) if self._tpl else bump
        # In a darker light than the noise was learnt in, the flow's noise is larger in proportion
        # (the camera's own noise, on a face of less contrast): its usual bump and deviation are
        # scaled up until they are learnt again there. Never down: not all of the noise is the camera's.
        dim = self._lum_ref / lum if lum > 0 and self._lum_ref > lum else 1.0
        rise_all = full - dim * self.mu
        z_all = rise_all / (dim * self.sd)
        n = self.n_channels  # the channels' columns, then the templates'
        rise, z, zt = rise_all[:, :n], z_all[:, :n], z_all[:, n:]
        horizon = t - 2 * self.max_scale - o.probe
        if h.blink[int(np.searchsorted(h.t, horizon)) :].any():
            z[:, self.eye] = 0.0  # eye channels do not count around a blink
        self.quiet = not ((z > o.z_pair) & self.expressive).any()
        cand_any = step_any = False
        # Warm, and some score high enough that a candidate could open: most frames are quiet and
        # stop here.
        if warm and (z.max() >= self._opening or zt.max(initial=-np.inf) >= self._t_open):
            zs = self._pooled(z) if o.pool > 1 else z
            is_bump = ends < o.step_ratio * bump
            by_tpl = None
            if self._tpl:
                came_back = np.abs(te) < o.step_ratio * tb
                zs, by_tpl = self._templated(z, zs, as_channel_z(zt), is_bump, came_back, ends)
            strong = (zs > o.z_on) & (rise > o.min_peak)
            strong[:, self.excluded] = False
            if strong.any():
                centre = t - self.scales
                cand = strong & is_bump & (centre[:, None] > self.refractory[self.zone_of][None, :])
                step = strong & ~is_bump
                cand_any, step_any = bool(cand.any()), bool(step.any())
                if step_any and self.held is None:
                    _, js = np.unravel_index(int(np.argmax(np.where(step, z, -np.inf))), z.shape)
                    if t - 2 * self.max_scale > self.refractory[self.zone_of[js]]:
                        self._open_held(t, z, step)  # not on the falling edge of a movement already reported
                if cand_any:
                    for zi, m in enumerate(self.zone_masks):
                        cz = cand & m
                        if not cz.any():
                            continue
                        k, j = np.unravel_index(int(np.argmax(np.where(cz, zs, -np.inf))), z.shape)
                        p = self.peaks[zi]
                        if p is None or zs[k, j] > p.z:
                            self.peaks[zi] = _Peak(
                                float(zs[k, j]), int(k), int(j), t, float(centre[k]), z[k].copy(),
                                -1 if by_tpl is None else int(by_tpl[k, j]),
                            )
        for zi, p in enumerate(self.peaks):
            if p is None or t - p.t < o.hold:
                continue
            self.peaks[zi] = None
            if self._other_zone_stronger(zi, p):
                self._count("same_event_other_zone")
                continue
            found = self._time_micro(p, t)
            seen = None if found is None else self._reported_as_micro(found)
            # The movement a micro-expression was, seen again: by the other half of the face, or in
            # this half at a larger scale as a longer bump (a macro-expression it is not).
            if found is not None and seen is not None and (seen != zi or found.macro):
                self.refractory[zi] = found.offset
                self._count("duplicate" if seen == zi else "same_event_other_zone")
                continue
            if found is not None and found.macro and self._in_held(found):
                # Most likely part of the held expression open over it, which will time it whole:
                # kept back until that one is reported (or turns out to be none).
                self.refractory[zi] = found.offset
                self.deferred.append(found)
                self._count("macro_in_held")
                continue
            if found is not None:
                self.refractory[zi] = found.offset
                if not found.macro:
                    self.last_micro[zi] = found
                out.append(found)
                if (
                    not found.macro
                    and self.held is not None
                    and self.held.start <= found.offset + o.hold
                    and self.held.involved[self.zone_masks[zi]].any()
                ):
                    self.held = None  # the held expression was this movement's rising edge
                    self._count("held_was_micro")
            else:
                self.refractory[zi] = p.centre + o.scales[p.scale]
        if self.deferred and self.held is None:  # the held expression was dropped without an event
            out += self._settle(None, t)
        if not (cand_any or step_any):
            skip = (blink & self.eye) | (z > o.z_learn)
            if self._tpl:
                skip = np.hstack([skip, (skip @ self._tmember) | (zt > self._t_learn)])
            self._learn(full, dt, skip, lum)
        return out

    def _in_held(self, found: Found) -> bool:
        """A held expression is open and ``found`` ends after it began (part of it)."""
        return self.held is not None and found.offset >= self.held.start

    def _other_zone_stronger(self, zi: int, p: _Peak) -> bool:
        """Another zone holds a stronger open candidate at the same time: one movement seen by both
        halves of the face (the other one will report it)."""
        h = self.options.scales[p.scale]
        return any(
            q is not None and k != zi and abs(q.centre - p.centre) <= h and q.z > p.z
            for k, q in enumerate(self.peaks)
        )

    def _reported_as_micro(self, found: Found) -> int | None:
        """The zone whose last micro-expression overlaps ``found`` by at least half of the shorter
        (the same movement, seen again), or None; another zone's before ``found``'s own."""
        for k in sorted(range(len(self.last_micro)), key=lambda k: k == found.zone):
            f = self.last_micro[k]
            if f is not None and f is not found and same_movement(f, found):
                return k
        return None

    def _templated(
        self, z: np.ndarray, zs: np.ndarray, zt: np.ndarray, is_bump: np.ndarray, came_back: np.ndarray,
        ends: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """``zs`` with each template's score (``zt``, on the channels' scale) given to its strongest
        channel per scale when higher: a candidate opens there, and that channel times it. Where the
        template's score is given, whether the movement came back (a bump, not a step) is the
        template's to say too (``is_bump`` updated in place), as a patch that drifts aside must not
        make the AU's movement a step: its own movement came back (``came_back``, (S, T)) and none of
        its patches moved further than ``busy_peak`` between the ends (``ends``, (S, C): a face at
        rest but for drift, not one in motion). Also returns (S, C) the template given to each cell,
        or -1."""
        out = zs.copy() if zs is z else zs
        rows = np.arange(len(z))
        by = np.full(z.shape, -1)
        for ti, (idx, _) in enumerate(self._tpl):
            best = idx[np.argmax(z[:, idx], axis=1)]
            wins = zt[:, ti] > out[rows, best]
            out[rows, best] = np.where(wins, zt[:, ti], out[rows, best])
            bump = came_back[:, ti] & (ends[:, idx].max(axis=1) <= self.options.busy_peak)
            is_bump[rows, best] = np.where(wins, bump, is_bump[rows, best])
            by[rows, best] = np.where(wins, ti, by[rows, best])
        return out, by

    def _pooled(self, z: np.ndarray) -> np.ndarray:
        """(S, C) scores with each group's evidence pooled onto its strongest channel: the sum of
        the group's ``pool`` highest scores (each at least ``pool_min``) over sqrt(pool), when that is
        higher. One AU moves these channels together: their movement adds up, noise partly cancels."""
        o = self.options
        groups = [g for g in self.layout.groups if ((z[:, g] >= o.pool_min).sum(axis=1) >= o.pool).any()]
        if not groups:  # most frames: no group has ``pool`` channels at pool_min on any scale
            return z
        out = z.copy()
        rows = np.arange(len(z))
        for g in groups:
            zg = np.sort(z[:, g], axis=1)[:, ::-1][:, : o.pool]
            ok = (zg[:, -1] >= o.pool_min) & (zg.shape[1] == o.pool)
            pooled = zg.sum(axis=1) / np.sqrt(zg.shape[1])
            best = g[np.argmax(z[:, g], axis=1)]
            out[rows, best] = np.where(ok, np.maximum(z[rows, best], pooled), z[rows, best])
        return out

    def flush(self) -> list[Found]:
        """End of stream: decide a pending bump and report a held expression as truncated."""
        out = []
        for zi, peak in enumerate(self.peaks):
            if peak is not None and self.last_t is not None:
                self.peaks[zi] = None
                found = self._time_micro(peak, self.last_t)
                out += [found] if found is not None else []
        if self.held is not None and self.last_t is not None:
            held, self.held = self.held, None
            found = self._close_held(held, self.last_t, truncated=True)
            out += self._settle(found, self.last_t) + ([found] if found is not None else [])
        return out

    # ------------------------------------------------------------------ micro layer
    def _bump(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(S, C) bump heights and (S, C) distances between the two ends, then the same two, signed,
        of each AU template's movement (S, T); or None (window not full)."""
        probes = self.history.means(t + self._rel, self.options.probe)
        if probes is None:
            return None
        now, mid, old = probes[0], probes[self._mid], probes[self._old]
        v, w = mid - 0.5 * (old + now), now - old
        tb = v.reshape(len(v), -1) @ self._tw  # (S, T) the templates' signed movements
        te = w.reshape(len(w), -1) @ self._tw  # (S, T) and their signed distances between the ends
        return np.hypot(v[..., 0], v[..., 1]), np.hypot(w[..., 0], w[..., 1]), tb, te

    def _time_micro(self, peak: _Peak, now: float) -> Found | None:
        o = self.options
        h, j, c = o.scales[peak.scale], peak.channel, peak.centre
        zone = int(self.zone_of[j])
        hist = self.history
        probes = hist.means(np.array([c - h, c + h, c]), o.probe)
        if probes is None:
            return None
        a, b, mid = probes
        sel = (hist.t >= c - 2 * h - o.probe) & (hist.t <= now)
        ts, pos = hist.t[sel], hist.pos[sel]
        if len(ts) < 3:
            return None
        line = a[j] + np.outer((ts - (c - h)) / (2 * h), b[j] - a[j])
        v = mid[j] - 0.5 * (a[j] + b[j])
        v = v / max(float(np.hypot(*v)), 1e-9)
        sig = (pos[:, j] - line) @ v
        near = np.abs(ts - c) <= h / 2
        i_apex = int(np.flatnonzero(near)[np.argmax(sig[near])]) if near.any() else int(np.argmax(sig))
        apex, top = float(ts[i_apex]), float(sig[i_apex])
        timed, height = sig, top
        if float((b[j] - a[j]) @ v) > o.tail_cut * top:
            # The scale's far probe still stands raised: its line ends inside the movement and cuts
            # a long fall short (a quick rise, a slow return). Time it against the level before it.
            flat = (pos[:, j] - a[j]) @ v
            if flat[i_apex] > 0:
                timed, height = flat, float(flat[i_apex])
        onset = max(2.0 * half_crossing(ts, timed, i_apex, height, -1) - apex, float(ts[0]))
        offset = min(max(2.0 * half_crossing(ts, timed, i_apex, height, +1) - apex, apex), now)
        if offset - onset < o.min_duration:
            self._count("rejected_spike")
            return None
        if apex <= self.refractory[zone]:
            self._count("duplicate")  # the movement reported last, seen again at another scale
            return None
        # Has it come back? An expression that stays is the onset of a held (macro) expression.
        # Along the AU template's movement when its score opened the candidate (it judged the ends too).
        if peak.template >= 0:
            tw = self._tw[:, peak.template]
            a_t, b_t = float(a.ravel() @ tw), float(b.ravel() @ tw)
            tsig = pos.reshape(len(pos), -1) @ tw - (a_t + (ts - (c - h)) / (2 * h) * (b_t - a_t))
            stay, back_line, back_top = float(tsig[-1]), b_t - a_t, float(tsig[i_apex])
        else:
            stay = float((pos[-1, j] - (a[j] + (ts[-1] - (c - h)) / (2 * h) * (b[j] - a[j]))) @ v)
            back_line, back_top = float((b[j] - a[j]) @ v), top
        if max(stay, back_line) > o.step_ratio * back_top:
            self._count("rejected_macro_onset")  # the first edge of an expression that stays
            return None
        inside = (ts >= onset) & (ts <= offset)
        involved = (peak.zvec >= o.region_z) & self.zone_masks[zone]
        involved[j] = True
        involved &= ~self.excluded
        if hist.blink[sel][inside].any() and involved[~self.eye].sum() == 0:
            self._count("rejected_blink")
            return None
        nose_z = float(np.max(peak.zvec[self.nose], initial=0.0))
        speed = float(np.max(hist.speed[sel][inside], initial=0.0))
        if nose_z > o.z_on or nose_z > o.nose_ratio * peak.z or speed > o.head_speed:
            self._count("rejected_head_motion")
            self._forget_activity(onset, offset)
            return None
        lum = hist.lum[sel]
        lum0, lum1 = lum[0], lum[i_apex]
        if np.isfinite(lum0) and np.isfinite(lum1) and lum0 > 0 and abs(lum1 - lum0) / lum0 > o.lighting:
            self._count("rejected_lighting")
            return None
        movement = pos[i_apex] - (a + (apex - (c - h)) / (2 * h) * (b - a))
        if self.rigid.any() and self.layout.centres is not None:
            # With the rigid motion a stabiliser took out put back (none when the tracks were not
            # stabilised), a head movement the alignment did not follow is judged as a whole, and the
            # AUs are read from the whole movement (the fit takes a little of what patches share).
            movement = movement + rigid_motion(self.layout.centres, self.rigid, movement[self.rigid])
        macro = offset - onset > o.max_micro or top > o.max_peak
        if self._head_motion(movement, onset, offset):
            return None
        if not macro and o.crest > 0:
            # The earlier probe already stands raised over the level one scale before it: the line
            # spans only the top of a longer movement (a word, an expression), brief at this scale
            # alone. No micro-expression; the longer movement is left to the held (macro) layer.
            before = hist.at(c - 2 * h, o.probe)
            if before is not None and float((a[j] - before[j]) @ v) > o.crest * top:
                self._count("rejected_crest")
                return None
        if not macro and self._busy(onset, zone):
            return None
        return Found(macro, onset, apex, offset, now, involved, movement, top, peak.z, zone=zone)

    def _head_motion(self, movement: np.ndarray, onset: float, offset: float) -> bool:
        """True (and counted) for a movement of the whole face that one similarity transform of all
        channels explains (``rigid_fit``): head motion, neither a micro- nor a macro-expression. It is
        then no activity for the context rule either."""
        o = self.options
        keep = ~self.excluded
        if o.rigid_fit < 1 and rigid_fraction(movement[keep], self.layout.centres, keep) > o.rigid_fit:
            self._count("rejected_head_motion")
            self._forget_activity(onset, offset)
            if self.held is not None and self.held.start <= offset + o.hold:
                self.held = None  # opened by this same head movement's first edge
            return True
        return False

    def _busy(self, onset: float, zone: int) -> bool:
        """True (and counted) for a candidate inside ongoing activity of its zone (the context rule)."""
        o = self.options
        if o.busy_window > 0:
            lo = onset - o.busy_window
            if self.first_t is None or lo < self.first_t:
                # The face was not watched for busy_window before it (a stream or a face that just
                # began): at rest or in motion, nobody knows, and a face already moving is the rule.
                self._count("rejected_unseen_context")
                return True
            # A bump measured at t (scale h) is a movement centred at t - h: it counts when that
            # centre lies within busy_window before the onset (a head jitter whose last probes
            # reach into the window is not activity there). Only the candidate's own zone counts.
            before = [np.where(t - self.scales >= lo, v[:, zone], 0.0) for t, v in self.recent if t <= onset]
            if before and float(np.max(before)) > o.busy_peak:
                self._count("rejected_busy")
                return True
        return False

    def _forget_activity(self, onset: float, offset: float) -> None:
        """A movement found to be head motion is not non-rigid activity for the context rule: drop
        the bumps measured while it was inside their probes (up to ``2 * max(scales)`` after it)."""
        end = offset + 2 * self.max_scale
        self.recent = deque((t, v) for t, v in self.recent if not onset <= t <= end)

    def _learn(self, bump: np.ndarray, dt: float, skip: np.ndarray, lum: float) -> None:
        """Running mean and variance of the bumps (clipped at 2.5 deviations: a robust scale), and
        the face's brightness (``lum``) they were learnt in."""
        o = self.options
        if self.learnt == 0:
            a = 1.0
        elif self.learnt < o.noise_tau:
            a = dt / max(self.learnt + dt, 1e-9)
        else:
            a = 1.0 - np.exp(-dt / o.noise_tau)
        self.learnt += dt
        if np.isfinite(lum):
            ref = self._lum_ref
            self._lum_ref = ref + a * (lum - ref) if ref > 0 else lum
        if a >= 1.0:
            self.mu = bump.copy()
            return
        lim = 2.5 * self.sd
        d = np.minimum(np.maximum(bump - self.mu, -lim), lim)
        learn = ~skip
        np.copyto(self.mu, self.mu + a * d, where=learn)
        np.copyto(self.var, (1 - a) * self.var + a * d * d, where=learn)
        self.sd = np.maximum(np.sqrt(self.var), o.sd_floor)

    # ------------------------------------------------------------------ macro layer
    def _score(self, pos: np.ndarray, ref: np.ndarray, blink: bool) -> tuple[np.ndarray, np.ndarray]:
        excess = np.hypot(*(pos - ref).T) - self.mu[-1, : self.n_channels]
        z = excess / self.sd[-1, : self.n_channels]
        return (np.where(self.eye, 0.0, z) if blink else z), excess

    def _open_held(self, t: float, z: np.ndarray, step: np.ndarray) -> None:
        o = self.options
        k = int(np.argmax(np.where(step, z, -np.inf).max(axis=1)))
        begin = t - 2 * o.scales[k]
        hist = self.history
        before = (hist.t >= begin - 0.1) & (hist.t <= begin)
        if not before.any():
            before = np.zeros(len(hist.t), bool)
            before[int(np.argmin(np.abs(hist.t - begin)))] = True
        held = _Held(hist.pos[before].mean(axis=0), begin, step.any(axis=0), top=np.zeros(len(self.excluded)))
        for ti, p, bl in zip(hist.t, hist.pos, hist.blink, strict=True):
            if ti > begin - 0.1:
                self._add(held, float(ti), p, bool(bl))
        held.quiet_since = None
        self.held = held
        self._count("macro_opened")

    def _add(self, held: _Held, t: float, pos: np.ndarray, blink: bool) -> None:
        o = self.options
        z, excess = self._score(pos, held.ref, blink)
        held.t.append(t)
        held.z.append(z)
        held.excess.append(excess)
        held.blink.append(blink)
        held.pos.append(pos)
        held.involved |= (z > o.z_on) & self.expressive
        np.maximum(held.top, excess, out=held.top)
        # Back when every channel that carries it (involved, its peak at least back_share of the
        # strongest one's) is under z_off deviations or half its own peak.
        back = (z <= o.z_off) | (excess <= 0.5 * held.top)
        carry = held.involved
        if o.back_share > 0 and carry.any():
            carry = carry & (held.top >= o.back_share * held.top[carry].max())
        quiet = not (carry & ~back).any()
        held.quiet_since = (held.quiet_since if held.quiet_since is not None else t) if quiet else None

    def _observe_held(self, t: float, pos: np.ndarray, blink: bool) -> list[Found]:
        o = self.options
        held = self.held
        assert held is not None
        self._add(held, t, pos, blink)
        if held.quiet_since is None:
            held.end = None
        elif held.end is None and t - held.quiet_since >= o.hold:
            held.end = self._held_end(held)
        if (held.end is not None and t >= held.end) or t - held.start > o.max_event:
            self.held = None
            found = self._held_report(self._close_held(held, t, truncated=False))
            return self._settle(found, t) + ([found] if found is not None else [])
        return []

    def _held_report(self, found: Found | None) -> Found | None:
        """A closed held expression's event, or None when the micro layer reported it already."""
        if found is None:
            return None
        if found.macro:  # its falling edge opens no new held expression
            self.refractory[found.zone] = max(self.refractory[found.zone], found.offset)
            return found
        zi = found.zone  # timed here: the micro layer must not report it again
        if found.apex <= self.refractory[zi]:
            self._count("duplicate")  # the micro layer reported this movement already
            return None
        self.refractory[zi] = max(self.refractory[zi], found.offset)
        seen = self._reported_as_micro(found)
        if seen is not None and seen != zi:
            self._count("same_event_other_zone")
            return None
        self.last_micro[zi] = found
        p = self.peaks[zi]
        o = self.options
        if p is not None and found.onset - o.hold <= p.centre <= found.offset + o.hold:
            self.peaks[zi] = None
        return found

    def _settle(self, found: Found | None, now: float) -> list[Found]:
        """The macro bumps deferred while a held expression was open over them, once it is gone:
        the ones its event (``found``) does not cover for the most part, all of them when it made
        none (rejected, say), decided ``now``; one movement deferred twice (by both halves of the
        face, or at two scales) is reported once, the first time."""
        def covered(f: Found) -> bool:
            inside = min(f.offset, found.offset) - max(f.onset, found.onset) if found is not None else 0.0
            return inside >= 0.5 * (f.offset - f.onset)

        out: list[Found] = []
        for f in self.deferred:
            if not covered(f) and not any(same_movement(f, g) for g in out):
                out.append(replace(f, emitted_at=now))
        self.deferred.clear()
        return out

    def _held_shape(self, held: _Held) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, float]:
        """(times, scores, strongest channel's excess, that channel, apex index, onset) of a held
        expression. It may keep growing: its onset is where its first rise to half the peak began."""
        ts, z, ex = np.array(held.t), np.array(held.z), np.array(held.excess)
        after = ts >= held.start
        peak_z = np.where(after[:, None] & ~self.excluded[None, :], z, -np.inf).max(axis=0)
        j = int(np.argmax(peak_z))
        sig = np.where(np.array(held.blink) & self.eye[j], 0.0, ex[:, j])
        i0 = int(np.argmax(after))
        i_apex = i0 + int(np.argmax(sig[i0:]))
        peak = float(sig[i_apex])
        i_on = i0 + int(np.argmax(sig[i0:] >= 0.5 * peak))
        while i_on > 0 and sig[i_on - 1] > 0.1 * peak:
            i_on -= 1
        return ts, peak_z, sig, j, i_apex, float(ts[max(i_on - 1, 0)])

    def _held_end(self, held: _Held) -> float:
        """Where a held expression whose channels are back under half their peak ends: a brief one
        (a micro-expression after all) where its fall ends, twice the time from the apex to the fall's
        half-way point (as the micro layer times a fall), so that it is timed as the micro layer
        would and closed then; a longer one where it came back (-inf: close now, timed by
        ``quiet_since``)."""
        ts, _, sig, _, i_apex, onset = self._held_shape(held)
        apex = float(ts[i_apex])
        end = 2.0 * half_crossing(ts, sig, i_apex, float(sig[i_apex]), +1) - apex
        brief = end - _rise_onset(ts, sig, i_apex, onset, self.options.probe) <= self.options.max_micro
        return end if brief else -np.inf

    def _close_held(self, held: _Held, now: float, truncated: bool) -> Found | None:
        o = self.options
        ts, peak_z, sig, j, i_apex, onset = self._held_shape(held)
        ex, blink = np.array(held.excess), np.array(held.blink)
        apex, peak = float(ts[i_apex]), float(sig[i_apex])
        if not truncated and held.quiet_since is not None:
            offset = min(max(held.quiet_since, held.end if held.end is not None else -np.inf), now)
        else:
            offset = min(2.0 * half_crossing(ts, sig, i_apex, peak, +1) - apex, now)
        offset = max(offset, apex)
        # Brief, small and back: a micro-expression after all, its onset timed as the micro layer
        # times a rise (not walked back into the noise or an earlier drift before it).
        brief_onset = _rise_onset(ts, sig, i_apex, onset, o.probe)
        macro = truncated or offset - brief_onset > o.max_micro or peak > o.max_peak
        onset = onset if macro else brief_onset
        inside = (ts >= onset) & (ts <= offset)
        zone = int(self.zone_of[j])
        involved = peak_z >= o.region_z
        involved[j] = True
        involved &= ~self.excluded
        if blink[inside].any() and involved[~self.eye].sum() == 0:
            self._count("rejected_blink")
            return None
        nose = self.nose[None, :] & (ts >= held.start)[:, None]
        nose_peak = float(np.where(nose, ex, -np.inf).max(initial=-np.inf))
        if nose_peak > o.nose_ratio * peak:
            self._count("rejected_head_motion")
            return None
        movement = held.pos[i_apex] - held.ref
        if self._head_motion(movement, onset, offset):
            return None
        if not macro:
            involved &= self.zone_masks[zone]
            if self._busy(onset, zone):
                return None
        return Found(
            macro, onset, apex, offset, now, involved, movement, peak, float(peak_z[j]), truncated, zone
        )


def same_movement(a: Found, b: Found) -> bool:
    """``a`` and ``b`` overlap by more than half of the shorter: one movement, found twice."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset)
    return inter > 0.5 * min(a.offset - a.onset, b.offset - b.onset)


def _rise_onset(ts: np.ndarray, sig: np.ndarray, i_apex: int, onset: float, slack: float) -> float:
    """A brief held expression's onset: as the micro layer times a rise (the apex mirrored about the
    rise's half-way point) less ``slack`` (a probe's half-width: that timing's resolution), or
    ``onset`` (walked back from the half-way point while the signal stays over a tenth of the peak)
    when that is later. The walk alone can run back into noise or an earlier drift."""
    apex = float(ts[i_apex])
    return max(onset, 2.0 * half_crossing(ts, sig, i_apex, float(sig[i_apex]), -1) - apex - slack)


def half_crossing(ts: np.ndarray, sig: np.ndarray, i_apex: int, peak: float, step: int) -> float:
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


def rigid_fraction(movement: np.ndarray, centres: np.ndarray | None, mask: np.ndarray) -> float:
    """Fraction (0-1) of ``movement`` (C, 2) explained by one similarity transform (shift, rotation,
    scale) of the channels at ``centres[mask]`` (least squares); 0 when the centres are unknown."""
    if centres is None or len(movement) < 3:
        return 0.0
    p = centres[mask] - centres[mask].mean(axis=0)
    m = movement
    total = float((m * m).sum())
    if total <= 0:
        return 0.0
    rows = design(p)
    rhs = np.concatenate([m[:, 0], m[:, 1]])
    coef, *_ = np.linalg.lstsq(rows, rhs, rcond=None)
    resid = rhs - rows @ coef
    return max(0.0, 1.0 - float(resid @ resid) / total)


_RAYLEIGH_MEAN, _RAYLEIGH_SD = math.sqrt(math.pi / 2), math.sqrt((4 - math.pi) / 2)


def as_channel_z(z: np.ndarray) -> np.ndarray:
    """Signed one-dimensional scores (a template's movement along its directions) on the scale of a
    channel's, whose bump is the length of a two-dimensional movement: the channel score with the
    same tail probability for Gaussian noise (z 4.67 one-sided is a channel's 6), so one ``z_on``
    holds the false alarms of both alike."""
    tail = np.array([0.5 * math.erfc(k / math.sqrt(2)) for k in np.clip(z, -8.0, 35.0).ravel()])
    r = np.sqrt(-2.0 * np.log(np.minimum(tail, 1.0 - 1e-12)))
    return ((r - _RAYLEIGH_MEAN) / _RAYLEIGH_SD).reshape(z.shape)


def template_z(channel_z: float) -> float:
    """The template score that :func:`as_channel_z` maps onto ``channel_z`` (its inverse)."""
    lo, hi = -8.0, 35.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(as_channel_z(np.array([mid]))[0]) < channel_z else (lo, mid)
    return 0.5 * (lo + hi)
