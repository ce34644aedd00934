"""Export pipeline: a video through capture -> tracking -> facs (-> micro) into files.

Decoding runs in a background thread (OpenCV and MediaPipe both release the GIL), so the full
export costs little more than bare MediaPipe. Every output is written under a temporary name and
renamed at the end: a failed or interrupted run never leaves files that look complete.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

import numpy as np

from avatar_bridge import __version__
from avatar_bridge.capture import CaptureOptions, SourceInfo, nominal_span, open_source
from avatar_bridge.channels import AU_INTENSITY
from avatar_bridge.errors import InputError
from avatar_bridge.export import AtomicOutputs, BlendshapeCSVWriter, OpenFaceCSVWriter
from avatar_bridge.export.events_json import check_overwritable, events_document
from avatar_bridge.export.landmarks import LandmarksWriter
from avatar_bridge.export.plot import AUPlot
from avatar_bridge.facs import AUEstimator, FACSOptions
from avatar_bridge.micro import MicroSpotter, SpotterOptions
from avatar_bridge.pipeline.threads import Prefetched, lower_priority, opencv_threads, run_yielding
from avatar_bridge.records import ActionUnits, ExpressionEvent, Frame, TrackingResult
from avatar_bridge.tracking import Detection, FaceTracker, TrackerOptions

Progress = Callable[[int, int | None], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Everything an export can be tuned by; each part documents its own defaults.

    prefetch: how many frames may wait between two threads (decode -> track -> analyse).
    analysis_batch: how many tracked frames the analysis takes at a time, running each of its
    stages (FACS, the spotter, writing) over all of them before the next stage. Frame by frame, each
    stage finds its code and data evicted from the caches by the others (and by decoding, on the
    same core): on WolfgangLanger's sample, 16 frames at a time took the analysis thread from
    1.82-2.18 to 1.11-1.27 ms of CPU a frame and the spotter from 0.69-0.78 to 0.47-0.52 ms
    (``bench_spotting.py --cost``, two runs). The outputs are the same for any batch; it holds
    ``analysis_batch`` more frames in memory. 1 analyses frame by frame.
    nice: CPU priority (Linux nice value, 0-19) of the export's own threads (decoding, the per-frame
    analysis and writing, the plots), so that MediaPipe's threads get a core first whenever they want
    one: the analysis has slack (it runs beside the tracking of the next frame), MediaPipe's graph is
    the critical path. None leaves every thread as it is. The tracking thread keeps its priority.
    opencv_threads: OpenCV's worker threads while the export runs (restored after). 1 by default:
    the analysis works on small images (a 128 px aligned face, FACS patches) that threads do not
    speed up, and the workers spin after each call (the spotter alone: 0.90-1.00 ms of CPU per frame
    with OpenCV's 2 threads, 0.45-0.56 ms with 1, ``bench_spotting.py --cost``); None leaves
    OpenCV's setting.
    plot: write ``<stem>.png``. landmarks: write ``<stem>.landmarks.npz`` (the face mesh of every
    frame); False is the anonymized export (``--anonymize``): AU and blendshape curves only.
    """

    capture: CaptureOptions = field(default_factory=lambda: CaptureOptions(max_size=1920))
    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    facs: FACSOptions = field(default_factory=FACSOptions)
    micro: SpotterOptions | None = field(default_factory=SpotterOptions)
    prefetch: int = 8
    analysis_batch: int = 16
    nice: int | None = 19
    opencv_threads: int | None = 1
    plot: bool = True
    landmarks: bool = True


@dataclass(slots=True)
class FaceSeries:
    """One face's AU intensities over the exported frames (NaN where that face was absent)."""

    face_id: int
    intensity: np.ndarray
    frames: int = 0


@dataclass(slots=True)
class ExportSummary:
    """What an export did, for the CLI's summary and for programs."""

    source: SourceInfo
    frames: int
    frames_with_face: int
    faces: dict[int, int]
    outputs: list[Path]
    warnings: list[str]
    elapsed: float
    strongest: list[tuple[str, float, float]]  # (AU, peak intensity, time of the peak in s)
    events: list[ExpressionEvent] = field(default_factory=list)
    #: Per face id, seconds watched and calm per zone (:meth:`MicroSpotter.calm_time`).
    calm: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0


def _in_background(make: Callable[[], T], nice: int | None = None) -> Future[T]:
    """Start ``make`` in a thread of its own (at priority ``nice``, see :func:`lower_priority`);
    ``.result()`` waits for it (and re-raises its error)."""

    def job() -> T:
        lower_priority(nice)
        return make()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avatar-bridge-prepare")
    future = pool.submit(job)
    pool.shutdown(wait=False)  # the thread ends with its one job
    return future


def _jsonable(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def export_video(
    video: str | Path,
    outdir: str | Path,
    options: ExportOptions | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Track ``video`` and write ``<stem>.csv`` (OpenFace), ``.blendshapes.csv``, ``.json`` and ``.png``."""
    opts = options or ExportOptions()
    video = Path(video)
    started = time.perf_counter()
    stem = video.stem if video.is_file() else video.name
    if opts.micro is not None:
        check_overwritable(Path(outdir) / f"{stem}.events.json")
    source = open_source(video, opts.capture)
    if source.info.live:
        source.close()
        raise InputError("export reads files or image folders; use 'avatar-bridge live' for cameras")
    warnings: list[str] = []
    # The plot's fixed parts (axes, labels, colour bar) need no data: they are built while the
    # frames are tracked, so only the curves are left to draw at the end.
    new_plot = functools.partial(AUPlot, span=nominal_span(source.info, opts.capture))  # time axis too
    # One plot per face, built in the background when the face first appears; the first face's
    # (or, with no face at all, the empty picture's) is started before any frame is read.
    first_plot = _in_background(new_plot, opts.nice) if opts.plot else None
    total = source.info.frame_count
    if total is not None:
        total = max(1, total // opts.capture.stride)
    # Four threads in a row: decode, track (MediaPipe), analyse + write, and the caller's, which
    # waits. OpenCV and MediaPipe release the GIL, so FACS, spotting and writing overlap with
    # tracking the next frame; every thread but the tracking one runs at ``opts.nice``.
    with (
        source,
        opencv_threads(opts.opencv_threads),
        FaceTracker(opts.tracker) as tracker,
        AtomicOutputs(Path(outdir)) as outs,
        Prefetched(iter(source), opts.prefetch, "avatar-bridge-decode", opts.nice) as decoded,
        Prefetched((tracker.detect(f) for f in decoded), opts.prefetch, "avatar-bridge-track") as detected,
    ):
        paths = (
            outs.path(f"{stem}.csv"),
            outs.path(f"{stem}.blendshapes.csv"),
            outs.path(f"{stem}.landmarks.npz") if opts.landmarks else None,
        )
        analyse = functools.partial(_analyse, detected, tracker, opts, paths, first_plot, new_plot,
                                    progress, total)  # fmt: skip
        got = run_yielding(analyse, opts.nice, "avatar-bridge-analyse")
        events, frames, frames_with_face, calm = got.events, len(got.times), got.frames_with_face, got.calm
        if opts.micro is not None:
            doc = events_document(video.name, events, got.spotter_stats, calm, got.calm_spans)
            outs.path(f"{stem}.events.json").write_text(json.dumps(doc, indent=1) + "\n")
        if source.decode_failed:
            warnings.append(f"decoding stopped early (truncated or corrupt file): {frames} frame(s) exported")
        if frames_with_face == 0:
            warnings.append(f"no face found in any of the {frames} frame(s); every row has success = 0")
        t = np.asarray(got.times)
        series = _series(got.per_face, frames)
        strongest = _strongest(series, t)
        if first_plot is not None and frames:
            for face_id, s in series.items():
                name = f"{stem}.png" if face_id == min(series) else f"{stem}.face{face_id}.png"
                face_events = [e for e in events if e.face_id == face_id]
                plot = got.figures[face_id].result()
                plot.save(outs.path(name), t, s.intensity, f"{stem} (face {face_id})", face_events,
                          calm=got.calm_spans.get(face_id))  # fmt: skip
            if not series:
                empty = np.full((frames, len(AU_INTENSITY)), np.nan)
                first_plot.result().save(outs.path(f"{stem}.png"), t, empty, stem)
        elapsed = time.perf_counter() - started
        meta = {
            "avatar_bridge_version": __version__,
            "source": {"path": str(video.resolve()), **_jsonable(source.info)},  # type: ignore[dict-item]
            "fps": source.info.fps,
            "frame_count": frames,
            "frames_with_face": frames_with_face,
            "decode_complete": not source.decode_failed,
            "faces": [{"face_id": fid, "frames": s.frames} for fid, s in series.items()],
            "model": {"file": tracker.model_path.name, "sha256": tracker.model_sha256},
            "settings": _jsonable(opts),
            "strongest_aus": [{"au": a, "peak": round(v, 3), "time": round(tt, 3)} for a, v, tt in strongest],
            "warnings": warnings,
            "elapsed_s": round(elapsed, 3),
        }
        json_path = outs.path(f"{stem}.json")
        meta["outputs"] = outs.planned()
        json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return ExportSummary(source.info, frames, frames_with_face, {f: s.frames for f, s in series.items()},
                         outs.committed, warnings, elapsed, strongest, events, calm)  # fmt: skip


@dataclass(slots=True)
class _Analysed:
    """What the per-frame analysis of an export gathered."""

    times: list[float] = field(default_factory=list)
    per_face: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    frames_with_face: int = 0
    events: list[ExpressionEvent] = field(default_factory=list)
    figures: dict[int, Future[AUPlot]] = field(default_factory=dict)
    spotter_stats: dict[str, int] = field(default_factory=dict)
    calm: dict[int, dict[str, float]] = field(default_factory=dict)
    calm_spans: dict[int, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)


def _analyse(
    detected: Iterable[Detection],
    tracker: FaceTracker,
    opts: ExportOptions,
    paths: tuple[Path, Path, Path | None],
    first_plot: Future[AUPlot] | None,
    new_plot: Callable[[], AUPlot],
    progress: Progress | None,
    total: int | None,
    cancel: threading.Event,
) -> _Analysed:
    """FACS, spotting and writing of every tracked frame (in the export's analysis thread)."""
    got = _Analysed()
    estimator = AUEstimator(opts.facs)
    spotter = MicroSpotter(opts.micro) if opts.micro is not None else None
    csv_path, bs_path, lm_path = paths
    with (
        open(csv_path, "w", newline="") as f_au,
        open(bs_path, "w", newline="") as f_bs,
        LandmarksWriter(lm_path) if lm_path else contextlib.nullcontext() as lm,
    ):
        au_writer, bs_writer = OpenFaceCSVWriter(f_au), BlendshapeCSVWriter(f_bs)

        def record(n: int, frame: Frame, result: TrackingResult, aus: tuple[ActionUnits, ...]) -> None:
            got.times.append(frame.timestamp)
            if not result.faces:
                au_writer.write(frame.index, frame.timestamp, None, None)
                bs_writer.write(frame.index, frame.timestamp, None)
                return
            got.frames_with_face += 1
            for face, au in zip(result.faces, aus, strict=True):
                au_writer.write(frame.index, frame.timestamp, face, au)
                bs_writer.write(frame.index, frame.timestamp, face)
                if lm is not None:
                    lm.write(frame.index, frame.timestamp, face)
                if first_plot is not None and face.face_id not in got.figures:
                    # Started from this thread: the plot's thread shares its priority.
                    got.figures[face.face_id] = _in_background(new_plot) if got.figures else first_plot
                got.per_face.setdefault(face.face_id, []).append((n, au.intensity))

        n = 0
        for batch in _batches(detected, opts.analysis_batch):
            if cancel.is_set():
                return got
            # Stage by stage over the batch, so that each stage's code and data stay in the caches
            # from one frame to the next (frame by frame, the other stages evict them).
            frames = [d.frame for d in batch]
            results = [tracker.convert(d) for d in batch]  # off the tracking thread
            aus = [estimator.update(r, f) for r, f in zip(results, frames, strict=True)]
            if spotter is not None:
                for r, a, f in zip(results, aus, frames, strict=True):
                    got.events += spotter.update(r, a, f)
            for frame, result, frame_aus in zip(frames, results, aus, strict=True):
                record(n, frame, result, frame_aus)
                n += 1
                if progress is not None:
                    progress(n, total)
    if spotter is not None:
        got.events += spotter.flush()
        got.spotter_stats = dict(spotter.stats)
        got.calm, got.calm_spans = spotter.calm_time(), spotter.calm_spans()
    return got


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (at least 1; the last one shorter), each as soon as it is full."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= max(1, size):
            yield batch
            batch = []
    if batch:
        yield batch


def _series(per_face: dict[int, list[tuple[int, np.ndarray]]], frames: int) -> dict[int, FaceSeries]:
    out: dict[int, FaceSeries] = {}
    for face_id in sorted(per_face):
        arr = np.full((frames, len(AU_INTENSITY)), np.nan, np.float32)
        rows = per_face[face_id]
        arr[[n for n, _ in rows]] = np.stack([v for _, v in rows])
        out[face_id] = FaceSeries(face_id, arr, len(rows))
    return out


def _strongest(
    series: dict[int, FaceSeries], times: np.ndarray, top: int = 3
) -> list[tuple[str, float, float]]:
    if not series:
        return []
    main = series[max(series, key=lambda f: series[f].frames)].intensity
    filled = np.nan_to_num(main, nan=-1.0)
    peaks = filled.max(axis=0)
    order = np.argsort(peaks)[::-1][:top]
    return [
        (AU_INTENSITY[k], float(peaks[k]), float(times[int(filled[:, k].argmax())]))
        for k in order
        if peaks[k] > 0
    ]
