"""Live pipeline: camera or video -> tracking -> facs -> micro -> retarget -> every sink, paced.

Videos play at their own frame rate (``fast`` = as fast as possible); cameras are read by a thread
that keeps only the newest frame, so latency stays bounded when tracking is slower than the camera.
MediaPipe tracks each next frame in a thread of its own while the frame before is analysed and sent
(``LiveOptions.overlap``); every frame still goes through every stage, in order.
One :class:`FaceRetargeter` runs per face and serves every distinct profile (the session's plus any
a sink declares) from one smoothing filter and one stacked matmul. A sink that fails while sending
is reported once and the others keep running; a receiver that goes away never stops the loop. Ctrl-C
ends the run cleanly and :meth:`LivePipeline.run` still returns its :class:`LiveStats`.

End-to-end latency is measured from the moment a frame is available (read from the camera, or due by
the video's clock) to the moment the last sink returned from ``send``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from avatar_bridge.capture import CaptureOptions, SourceInfo, open_source
from avatar_bridge.errors import AvatarBridgeError, ConfigError
from avatar_bridge.facs import AUEstimator, FACSOptions
from avatar_bridge.micro import MicroSpotter, SpotterOptions
from avatar_bridge.pipeline.threads import Prefetched, gil_switch_interval, opencv_threads
from avatar_bridge.records import ActionUnits, ExpressionEvent, Frame, FrameOutput, RigWeights, TrackingResult
from avatar_bridge.retarget import CalibrationFile, FaceRetargeter, RetargetOptions, load_profile
from avatar_bridge.retarget.profile import Profile
from avatar_bridge.sinks import Sink, open_sink
from avatar_bridge.tracking import Detection, FaceTracker, TrackerOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What a live session runs.

    source: camera index or video path. sinks: sink URLs (see :mod:`avatar_bridge.sinks`).
    profile: the session's rig profile (sinks may declare their own). spelling / mirror: profile
    options. calibration: a file written by ``avatar-bridge calibrate``. fast: ignore the video's
    frame rate. max_frames: stop after this many frames (None = until the source ends).
    micro: run the micro-expression spotter when it is installed; spotter: its settings (among them
    which classifier labels the events: the AU rules by default, or TP-HA3DNet, whose model is
    loaded when the run starts). replay_events: also replay each
    detected event on the avatar (Retargeter.play_event). status_interval: seconds between
    status callbacks. opencv_threads: OpenCV's worker threads during the run (restored after); 1
    by default, as for ``export``: the analysis works on small images that threads do not speed up,
    and idle workers spinning after each call take CPU from MediaPipe (None leaves OpenCV's setting).
    overlap: track the next frame (MediaPipe, in a thread of its own) while this one is analysed and
    sent, so that FACS, spotting and the sinks no longer lower the frame rate: for sources faster than
    the pipeline (120 fps cameras, ``fast`` files). Every frame is still analysed, in order, with the
    same results. On by default: in four runs here it gave 1.06-1.20 times the frames a second of
    frame-by-frame runs (121-132 fps on a 24 fps video played as fast as possible) and the same
    latency at 30 fps (median 8.3-10.0 against 8.1-10.0 ms, ``benchmarks/bench_live.py``). False:
    one thread, one frame at a time (for a single core).
    switch_interval: with ``overlap``, Python's thread switch interval during the run (seconds; restored
    after; None leaves it): 0.5 ms, so that the tracking thread, back from MediaPipe, need not wait
    for the analysis to yield the GIL. At Python's 5 ms, overlapping gave 0.98-1.05 times the frames a
    second and up to 1.3 ms more latency at 30 fps.
    """

    source: str | int = 0
    sinks: tuple[str, ...] = ("osc://127.0.0.1:9100",)
    profile: str = "arkit52"
    spelling: str | None = None
    calibration: Path | None = None
    fast: bool = False
    max_frames: int | None = None
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    retarget: RetargetOptions = field(default_factory=RetargetOptions)
    micro: bool = True
    spotter: SpotterOptions = field(default_factory=SpotterOptions)
    replay_events: bool = False
    status_interval: float = 0.5
    opencv_threads: int | None = 1
    overlap: bool = True
    switch_interval: float | None = 0.0005

    def __post_init__(self) -> None:
        if not self.sinks:
            raise ConfigError("live needs at least one sink (e.g. --sink osc://127.0.0.1:9100)")
        if self.switch_interval is not None and not self.switch_interval > 0:
            raise ConfigError(f"switch_interval must be positive (seconds), got {self.switch_interval}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be 1 or more, got {self.max_frames}")


@dataclass(slots=True)
class LiveStatus:
    """What the status line shows, refreshed every ``status_interval`` seconds."""

    frames: int
    fps: float
    latency_ms: float  # median over the last interval
    face_found: bool
    faces: int
    events: int
    sink_errors: int


def _recent() -> deque[float]:
    return deque(maxlen=STATS_WINDOW)


#: Per-frame timings kept for the summary: the most recent ones only, so hours-long runs stay flat
#: in memory (36,000 = 20 minutes at 30 fps).
STATS_WINDOW = 36_000


@dataclass(slots=True)
class LiveStats:
    """Everything measured in one run (times in seconds; percentiles over the last STATS_WINDOW frames)."""

    frames: int = 0
    frames_with_face: int = 0
    events: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    latency: deque[float] = field(default_factory=_recent)  # frame available -> last sink returned
    tracking: deque[float] = field(default_factory=_recent)  # MediaPipe
    analysis: deque[float] = field(default_factory=_recent)  # facs + micro
    output: deque[float] = field(default_factory=_recent)  # retarget + smoothing + every sink
    sink_errors: dict[str, int] = field(default_factory=dict)
    sink_first_error: dict[str, str] = field(default_factory=dict)
    datagrams: dict[str, int] = field(default_factory=dict)
    #: Per face id, seconds watched and calm per zone (:meth:`MicroSpotter.calm_time`).
    calm: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @staticmethod
    def _ms(values: deque[float], q: float) -> float:
        return float(np.percentile(values, q) * 1e3) if values else math.nan

    def summary(self) -> dict[str, object]:
        """Plain numbers for printing or JSON."""
        return {
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "events": self.events,
            "elapsed_s": round(self.elapsed, 3),
            "fps": round(self.fps, 2),
            "interrupted": self.interrupted,
            "latency_ms_median": round(self._ms(self.latency, 50), 3),
            "latency_ms_p99": round(self._ms(self.latency, 99), 3),
            "tracking_ms_median": round(self._ms(self.tracking, 50), 3),
            "analysis_ms_median": round(self._ms(self.analysis, 50), 3),
            "output_ms_median": round(self._ms(self.output, 50), 3),
            "output_ms_p99": round(self._ms(self.output, 99), 3),
            "sink_errors": dict(self.sink_errors),
            "sink_first_error": dict(self.sink_first_error),
            "datagrams": dict(self.datagrams),
            "calm_time": {f: {k: round(v, 3) for k, v in c.items()} for f, c in self.calm.items()},
        }


class _LatestFrame:
    """A camera reader thread that keeps only the newest frame (and when it arrived)."""

    def __init__(self, frames: Iterator[Frame]) -> None:
        self._frames = frames
        self._cond = threading.Condition()
        self._item: tuple[Frame, float] | None = None
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avatar-bridge-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if self._stop.is_set():
                    break
                with self._cond:
                    self._item = (frame, time.perf_counter())
                    self._cond.notify()
        except BaseException as e:  # re-raised in the consumer
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[tuple[Frame, float]]:
        while True:
            with self._cond:
                while self._item is None and not self._done:
                    self._cond.wait(0.1)
                item, self._item = self._item, None
                done = self._done
            if item is not None:
                yield item
            elif done:
                if self._error is not None:
                    raise self._error
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


def _paced(frames: Iterator[Frame], fast: bool) -> Iterator[tuple[Frame, float]]:
    """Video frames, each released when the video's clock says it is due (or at once if fast)."""
    start_wall: float | None = None
    start_ts = 0.0
    for frame in frames:
        now = time.perf_counter()
        if fast:
            yield frame, now
            continue
        if start_wall is None:
            start_wall, start_ts = now, frame.timestamp
        due = start_wall + (frame.timestamp - start_ts)
        if due > now:  # early: wait for its time, from which it counts as available
            time.sleep(due - now)
            now = due
        yield frame, now  # a late frame counts as available from when it was decoded


def _tracked(
    frames: Iterator[tuple[Frame, float]], tracker: FaceTracker, halt: threading.Event
) -> Iterator[tuple[Frame, float, Detection, float]]:
    """Each new frame with when it was available, MediaPipe's detection and how long that took (s).

    A frame whose index is not past the last one is skipped (a camera reader may hand one over
    twice); once ``halt`` is set no further frame is tracked."""
    last_index = -1
    for frame, available in frames:
        if halt.is_set():
            return
        if frame.index <= last_index:
            continue
        last_index = frame.index
        t0 = time.perf_counter()
        detection = tracker.detect(frame)
        yield frame, available, detection, time.perf_counter() - t0


class LivePipeline:
    """Runs one live session; see the module docstring.

    >>> stats = LivePipeline(LiveOptions(source="face.mp4", sinks=("osc://",))).run()  # doctest: +SKIP

    ``extra_sinks``: sink objects built by the caller (anything with open/send/close and a name),
    run beside the URL sinks.
    """

    def __init__(
        self,
        options: LiveOptions,
        on_status: Callable[[LiveStatus], None] | None = None,
        tracker: FaceTracker | None = None,
        extra_sinks: Sequence[Sink] = (),
        on_start: Callable[[SourceInfo], None] | None = None,
    ) -> None:
        self.options = opts = options
        self.on_status = on_status
        self.on_start = on_start  # told what the source really gives (a camera may ignore requests)
        self.sinks: list[Sink] = [open_sink(u) for u in opts.sinks] + list(extra_sinks)
        calib = CalibrationFile.load(opts.calibration) if opts.calibration is not None else None
        self._facs_calibration = calib.facs if calib else None
        retarget_opts = opts.retarget
        if calib is not None and calib.retarget is not None:
            retarget_opts = replace(retarget_opts, calibration=calib.retarget)
        self._retarget_options = retarget_opts
        # One profile per distinct name: the session's plus any a sink declares.
        self.profiles: dict[str, Profile] = {opts.profile: load_profile(opts.profile, spelling=opts.spelling)}
        for sink in self.sinks:
            name = getattr(sink, "profile", None)
            if name and name not in self.profiles:
                self.profiles[name] = load_profile(name)
        self._tracker = tracker
        self._retargeters: dict[int, FaceRetargeter] = {}
        self.stats = LiveStats()

    def _profile_of(self, sink: Sink) -> str:
        return getattr(sink, "profile", None) or self.options.profile

    def _retargeter(self, face_id: int) -> FaceRetargeter:
        rt = self._retargeters.get(face_id)
        if rt is None:
            rt = self._retargeters[face_id] = FaceRetargeter(
                self.profiles, self._retarget_options, face_id=face_id
            )
        return rt

    def _open_sinks(self) -> None:
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open()
                opened.append(sink)
        except BaseException:
            for sink in opened:
                _close_quietly(sink)
            raise

    def _analysis(self) -> tuple[AUEstimator, MicroSpotter | None]:
        facs = AUEstimator(FACSOptions())
        if self._facs_calibration is not None:
            facs.set_calibration(self._facs_calibration)
        return facs, (MicroSpotter(self.options.spotter) if self.options.micro else None)

    def outputs(
        self,
        result: TrackingResult,
        aus: tuple[ActionUnits, ...],
        events: list[ExpressionEvent],
        frame: Frame | None,
    ) -> dict[str, FrameOutput]:
        """Retarget every face for every profile; faces that left keep easing to neutral."""
        faces = {f.face_id: f for f in result.faces}
        aus_by_id = {a.face_id: a for a in aus}
        per_face: list[dict[str, RigWeights]] = []
        for fid in sorted(set(self._retargeters) | set(faces)):
            rt = self._retargeter(fid)
            if self.options.replay_events:
                for e in events:
                    if e.face_id == fid:
                        rt.play_event(e)
            per_face.append(rt.update(faces.get(fid), aus_by_id.get(fid), result.timestamp, result.index))
        return {
            profile: FrameOutput(
                result.index,
                result.timestamp,
                tuple(w[profile] for w in per_face),
                aus,
                tuple(events),
                frame,
                result.faces,
            )
            for profile in self.profiles
        }

    def _send(self, outputs: dict[str, FrameOutput]) -> None:
        stats = self.stats
        for sink in self.sinks:
            try:
                sink.send(outputs[self._profile_of(sink)])
            except Exception as e:  # one failing sink never stops the others
                name = sink.name
                stats.sink_errors[name] = stats.sink_errors.get(name, 0) + 1
                if name not in stats.sink_first_error:
                    msg = str(e) if isinstance(e, AvatarBridgeError) else f"{type(e).__name__}: {e}"
                    stats.sink_first_error[name] = msg
                    log.warning("sink %s failed (it keeps being tried; other sinks go on): %s", name, msg)

    def run(self) -> LiveStats:
        """Run until the source ends, ``max_frames`` is reached, or Ctrl-C; always closes everything."""
        opts, stats = self.options, self.stats
        source = open_source(opts.source, opts.capture)
        reader: _LatestFrame | None = None
        tracker = self._tracker
        own_tracker = tracker is None
        try:
            facs, micro = self._analysis()
            if tracker is None:
                tracker = FaceTracker(opts.tracker)
            self._open_sinks()
        except BaseException:
            source.close()
            if own_tracker and tracker is not None:
                tracker.close()
            raise
        if self.on_start is not None:  # everything opened: say what the source really gives
            self.on_start(source.info)
        halt = threading.Event()  # once set, no frame is tracked (the tracker is about to close)
        t_start = time.perf_counter()
        last_status = t_start
        window: list[float] = []
        try:
            with ExitStack() as ahead:
                ahead.enter_context(opencv_threads(opts.opencv_threads))
                if source.info.live:
                    reader = _LatestFrame(iter(source))
                    frames: Iterator[tuple[Frame, float]] = iter(reader)
                else:
                    frames = _paced(iter(source), opts.fast)
                items = _tracked(frames, tracker, halt)
                if opts.overlap:  # the next frame is tracked while this one is analysed and sent
                    ahead.enter_context(gil_switch_interval(opts.switch_interval))
                    items = iter(ahead.enter_context(Prefetched(items, 1, "avatar-bridge-track")))
                ahead.callback(halt.set)  # first thing on the way out
                for frame, available, detection, tracking in items:
                    t1 = time.perf_counter()
                    result = tracker.convert(detection)
                    aus = facs.update(result, frame)
                    events = micro.update(result, aus, frame) if micro is not None else []
                    t2 = time.perf_counter()
                    self._send(self.outputs(result, aus, events, frame))
                    t3 = time.perf_counter()
                    stats.frames += 1
                    stats.frames_with_face += bool(result.faces)
                    stats.events += len(events)
                    stats.tracking.append(tracking)
                    stats.analysis.append(t2 - t1)
                    stats.output.append(t3 - t2)
                    stats.latency.append(t3 - available)
                    window.append(t3 - available)
                    if self.on_status is not None and t3 - last_status >= opts.status_interval:
                        self.on_status(self._status(t3 - t_start, window, result))
                        last_status, window = t3, []
                    if opts.max_frames is not None and stats.frames >= opts.max_frames:
                        break
        except KeyboardInterrupt:
            stats.interrupted = True
        finally:
            stats.elapsed = time.perf_counter() - t_start
            if micro is not None:
                stats.calm = micro.calm_time()
            if reader is not None:
                reader.stop()
            source.close()
            if own_tracker:
                tracker.close()
            for sink in self.sinks:
                stats.datagrams[sink.name] = int(getattr(sink, "datagrams_sent", 0))
                _close_quietly(sink)
        return stats

    def _status(self, elapsed: float, window: list[float], result: TrackingResult) -> LiveStatus:
        s = self.stats
        return LiveStatus(
            frames=s.frames,
            fps=s.frames / elapsed if elapsed > 0 else 0.0,
            latency_ms=float(np.median(window) * 1e3) if window else math.nan,
            face_found=bool(result.faces),
            faces=len(result.faces),
            events=s.events,
            sink_errors=sum(s.sink_errors.values()),
        )


def _close_quietly(sink: Sink) -> None:
    try:
        sink.close()
    except Exception as e:  # closing must not hide the run's own outcome
        log.warning("closing sink %s failed: %s", getattr(sink, "name", sink), e)
