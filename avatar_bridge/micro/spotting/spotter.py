"""The online micro-expression spotter: per face, causal, with a bounded decision delay.

Per frame and face it measures channel positions (optical-flow patch tracks on the aligned face
when frames are given, MediaPipe landmark groups otherwise), feeds them to the face's
:class:`Detector` and describes what the detector finished: regions, side, AUs, confidence and,
by default, a label and emotion word from the AU rules (or, with ``classifier="tp-ha3dnet"``,
micro-expressions labelled by TP-HA3DNet on their aligned frames, kept per face for about a
second: ``micro.classify.online``). Every window is in seconds, so 30, 120 and
200 fps behave alike. Bad input is counted in ``stats``, never raised: repeated or backwards
timestamps are skipped, a time jump or a face lost for longer than ``max_gap`` drops open events.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX
from avatar_bridge.micro.features import align, group_positions, reference_shape
from avatar_bridge.micro.flow import aligned_face, grey
from avatar_bridge.micro.spotting.channels import RIGID_CHANNELS, SpottingConfig, load_config
from avatar_bridge.micro.spotting.describe import describe
from avatar_bridge.micro.spotting.detector import Detector, Found
from avatar_bridge.micro.spotting.flowtracks import FlowTracks
from avatar_bridge.micro.spotting.options import SpotterOptions
from avatar_bridge.micro.spotting.regionflow import RegionFlow
from avatar_bridge.micro.spotting.stabilise import Stabiliser
from avatar_bridge.records import ActionUnits, ExpressionEvent, FaceObservation, Frame, TrackingResult

if TYPE_CHECKING:  # torch is imported only when a learned classifier is chosen
    from avatar_bridge.micro.classify.online import FaceFrames, OnlineTPHA3DNet

log = logging.getLogger(__name__)


class _Face:
    """Everything kept for one face id; the signal kind is fixed by the first frame seen."""

    def __init__(self, face: FaceObservation, opts: SpotterOptions, cfg: SpottingConfig, flow: bool) -> None:
        self.flow = FlowTracks(cfg.patches, cfg.rigid, opts.flow) if flow else None
        # The dense region features read the face the patch tracker aligns (and its brightness).
        dense = flow and opts.flow_features == "regions"
        self.regions = RegionFlow(cfg.rigid, opts.flow, opts.dense_preset) if dense else None
        self.layout = cfg.regions if dense else cfg.flow if flow else cfg.landmarks
        n = len(cfg.patches)  # the flow layout's channels: the patches, then the rigid motion
        self.stabiliser = (
            Stabiliser(cfg.flow.centres[:n], cfg.flow.centres[n:], opts.stabilise_cutoff)
            if flow and opts.stabilise
            else None
        )
        self.reference = None if flow else reference_shape(face)
        self.detector = Detector(opts, self.layout)
        self.last_t: float | None = None
        self.last_pos: np.ndarray | None = None
        self.rotation: list[float] | None = None  # the last frame's head rotation, row by row
        self.au_base: np.ndarray | None = None
        self.au_recent: deque[tuple[float, np.ndarray]] = deque(maxlen=256)
        self.frames: FaceFrames | None = None  # the aligned faces, when TP-HA3DNet labels the events


class MicroSpotter:
    """Online spotter: ``update(result, aus, frame=None) -> list[ExpressionEvent]`` (closed events only).

    >>> spotter = MicroSpotter(SpotterOptions())  # doctest: +SKIP
    >>> for frame, result, aus in stream:
    ...     for event in spotter.update(result, aus, frame):
    ...         print(event.kind, event.onset, event.offset, event.aus, event.emotion)
    """

    def __init__(self, options: SpotterOptions | None = None) -> None:
        self.options = options or SpotterOptions()
        self._config = load_config()
        self._faces: dict[int, _Face] = {}
        self._last_t: float | None = None
        self._labeller = None
        self._learned: OnlineTPHA3DNet | None = None  # loaded once
        self._warned_no_frames = False
        if self.options.label:
            from avatar_bridge.micro.classify.au_rules import AURuleClassifier

            self._labeller = AURuleClassifier()  # macro events, and micro ones without frames
            if self.options.classifier == "tp-ha3dnet":
                from avatar_bridge.micro.classify.online import OnlineTPHA3DNet

                self._learned = OnlineTPHA3DNet(self.options.classifier_model)
        #: Why candidates were dropped or rejected, and how much input was skipped (counts).
        self.stats: dict[str, int] = {}
        # Faces forgotten since: seconds watched and calm spans per zone (calm_time, calm_spans).
        self._calm_left: dict[int, tuple[float, dict[str, list[tuple[float, float]]]]] = {}

    # ----------------------------------------------------------------- public
    def update(
        self, result: TrackingResult, aus: tuple[ActionUnits, ...] = (), frame: Frame | None = None
    ) -> list[ExpressionEvent]:
        """Feed one frame's tracking (and AUs, optionally the frame); return the events that just closed."""
        o = self.options
        t = float(result.timestamp)
        if not np.isfinite(t):
            self._count("bad_timestamp")
            return []
        if self._last_t is not None and t <= self._last_t:
            self._count("repeated_timestamp")  # repeated or backwards: skipped, state untouched
            return []
        if self._last_t is not None and t - self._last_t > o.max_gap:
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
                use_flow = o.use_flow and frame is not None
                st = self._faces[face.face_id] = _Face(face, o, self._config, use_flow)
                if self._learned is not None:
                    from avatar_bridge.micro.classify.online import FaceFrames

                    st.frames = FaceFrames(frame_seconds(o))
            out += self._update_face(st, face, by_id.get(face.face_id), frame, t)
        for fid, st in list(self._faces.items()):
            if fid in seen or st.last_t is None:
                continue
            if t - st.last_t > o.max_gap:
                self._drop(st, "dropped_missing_face")
            if t - st.last_t > 10 * o.max_event:
                self._calm_left[fid] = self._calm()[fid]
                del self._faces[fid]  # the person left long ago: forget them
        return out

    def flush(self) -> list[ExpressionEvent]:
        """End of stream: decide a pending bump; report a held expression as ``truncated``
        (offset = what was seen, confidence halved)."""
        out = []
        for fid, st in self._faces.items():
            out += [self._event(st, fid, f) for f in st.detector.flush()]
        self._merge_counts()
        return out

    def calm_time(self) -> dict[int, dict[str, float]]:
        """Per face id: ``seconds`` of face the spotter watched (warm, its window full) and, per zone
        ("upper" and "lower" face, or "face" with ``zones`` off), the seconds the face was calm
        there: no movement over ``busy_peak`` in the last ``busy_window`` s, so that the context rule
        let a micro-expression be reported. Micro-expressions are looked for only in calm time;
        head movements count as activity here."""
        return {
            fid: {"seconds": watched, **{zone: sum((b - a for a, b in s), 0.0) for zone, s in spans.items()}}
            for fid, (watched, spans) in self._calm().items()
        }

    def calm_spans(self) -> dict[int, dict[str, list[tuple[float, float]]]]:
        """Per face id and zone, the (start, end) source times of the calm time :meth:`calm_time`
        sums: where a micro-expression could be reported, to show beside the events."""
        return {fid: spans for fid, (_, spans) in self._calm().items()}

    def _calm(self) -> dict[int, tuple[float, dict[str, list[tuple[float, float]]]]]:
        out = dict(self._calm_left)
        for fid, st in self._faces.items():
            d = st.detector
            watched, spans = out.get(fid, (0.0, {}))
            now = {z: [(a, b) for a, b in s] for z, s in zip(d.zone_names, d.calm_spans, strict=True)}
            out[fid] = (watched + d.watched, {z: spans.get(z, []) + s for z, s in now.items()})
        return out

    def reset(self) -> None:
        """Forget every face, reference and open event (a new stream)."""
        self._faces.clear()
        self._calm_left.clear()
        self._last_t = None
        self.stats.clear()

    def close(self) -> None:
        self.reset()

    # ---------------------------------------------------------------- private
    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _merge_counts(self) -> None:
        for st in self._faces.values():
            for k, v in st.detector.counts.items():
                self.stats[k] = self.stats.get(k, 0) + v
            st.detector.counts.clear()

    def _drop(self, st: _Face, why: str) -> None:
        if st.detector.peak is not None or st.detector.held is not None:
            log.debug("micro spotter: open event dropped (%s)", why)
        st.detector.drop(why)
        if st.flow is not None:
            st.flow.reset()
        if st.regions is not None:
            st.regions.reset()
        if st.stabiliser is not None:
            st.stabiliser.reset()
        if st.frames is not None:
            st.frames.clear()
        st.last_pos = None
        self._merge_counts()

    def _positions(self, st: _Face, face: FaceObservation, frame: Frame | None, t: float) -> np.ndarray:
        if st.flow is None:
            return group_positions(align(face.landmarks_px, st.reference))
        if frame is None:  # no frame this time: the tracks stay where they were
            return st.last_pos if st.last_pos is not None else np.zeros((len(st.layout.names), 2))
        if st.regions is not None:
            return st.regions.update(st.flow.align(frame, face), t, hold=st.detector.busy)
        pos = st.flow.update(frame, face, t, hold=st.detector.busy)
        if st.stabiliser is None:  # the tracks as they are: the rigid channels stay at rest
            return np.vstack([pos, np.zeros((len(RIGID_CHANNELS), 2))])
        dt = 0.0 if st.last_t is None else t - st.last_t
        return np.vstack(st.stabiliser.fit(pos, dt))

    def _update_face(
        self, st: _Face, face: FaceObservation, aus: ActionUnits | None, frame: Frame | None, t: float
    ) -> list[ExpressionEvent]:
        o = self.options
        pos = self._positions(st, face, frame, t)
        if st.frames is not None and frame is not None:
            # The classifier's crops are made as its training clips were (grey frame, then warp: 0.23 ms
            # CPU a frame at 800 x 800), not taken from the flow's face, which averages a large face
            # before the warp (``FlowTrackOptions.antialias``).
            st.frames.push(t, aligned_face(grey(frame.image), face))
        dt = 0.0 if st.last_t is None else t - st.last_t
        rot = face.pose.rotation.ravel().tolist()  # plain floats: 9 numbers, cheaper than NumPy calls
        speed = 0.0
        if st.rotation is not None and dt > 0:  # the angle of the rotation between the two frames
            cos = (sum(a * b for a, b in zip(st.rotation, rot, strict=True)) - 1.0) / 2.0
            speed = math.degrees(math.acos(min(max(cos, -1.0), 1.0))) / dt
        st.rotation, st.last_t, st.last_pos = rot, t, pos
        bl = face.blendshapes
        blink = max(float(bl[ARKIT_INDEX["eyeBlinkLeft"]]), float(bl[ARKIT_INDEX["eyeBlinkRight"]]))
        if aus is not None:
            blink = max(blink, aus["AU45"] / 5.0)
            vec = aus.intensity.astype(np.float64)
            st.au_recent.append((t, vec))
            if st.detector.peak is None and st.detector.held is None:
                a = 1.0 if st.au_base is None else 1.0 - np.exp(-dt / o.noise_tau)
                st.au_base = vec.copy() if st.au_base is None else st.au_base + a * (vec - st.au_base)
        if frame is None:
            lum = float("nan")
        else:  # the flow has just aligned the face: its mean grey level costs nothing
            lum = st.flow.brightness if st.flow is not None else _luminance(frame, face)
        found = st.detector.push(t, pos, bool(blink > o.blink_threshold), speed, lum)
        if st.detector.counts:
            self._merge_counts()
        return [self._event(st, face.face_id, f) for f in found]

    def _event(self, st: _Face, face_id: int, found: Found) -> ExpressionEvent:
        rise = None
        if st.flow is None and st.au_base is not None and st.au_recent:
            _, vec = min(st.au_recent, key=lambda p: abs(p[0] - found.apex))
            rise = vec - st.au_base
        event = describe(found, face_id, st.layout, self.options, rise)
        if self._learned is not None and not found.macro:
            labelled = self._learned.label(event, st.frames) if st.frames is not None else None
            if labelled is not None:
                self._count("labelled_tp_ha3dnet")
                return labelled
            if st.frames is None or len(st.frames) == 0:
                self._count("tp_ha3dnet_no_frames")
                if not self._warned_no_frames:
                    self._warned_no_frames = True
                    log.warning("TP-HA3DNet labels micro-expressions from the face's frames, and none "
                                "were given: those events are labelled by the AU rules")  # fmt: skip
            else:
                self._count("tp_ha3dnet_frames_short")  # the kept frames do not reach its onset
        if self._labeller is not None:
            event = self._labeller.classify_event(event)
        return event


def frame_seconds(options: SpotterOptions) -> float:
    """Seconds of aligned frames kept per face for a learned classifier: the longest time from a
    micro-expression's onset to its decision (the detector times it from at most three scales
    before the candidate's peak, which waits ``hold``), the training clips' pad and one 10 fps frame."""
    from avatar_bridge.micro.classify.online import PAD

    o = options
    return o.hold + 3 * max(o.scales) + 2 * o.probe + PAD + 0.1


def _luminance(frame: Frame, face: FaceObservation) -> float:
    """Mean brightness (0-255) of the face box, sampled every 8th pixel."""
    img = frame.image
    p = face.landmarks_px[:, :2]
    h, w = img.shape[:2]
    lo, hi = p.min(axis=0).astype(int).tolist(), p.max(axis=0).astype(int).tolist()
    x0, y0 = min(max(lo[0], 0), w - 1), min(max(lo[1], 0), h - 1)  # plain ints: cheaper than np.clip
    x1, y1 = min(max(hi[0] + 1, 1), w), min(max(hi[1] + 1, 1), h)
    patch = img[y0:y1:8, x0:x1:8]
    return float(patch.mean()) if patch.size else float("nan")
