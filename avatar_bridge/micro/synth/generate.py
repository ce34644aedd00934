"""Inject labelled micro-expressions into real face video and write the ground truth beside it.

The face in the video is tracked once (real MediaPipe); each injected event moves the tracked
landmarks of its AU pattern with a realistic temporal profile, and every frame it touches is
warped piecewise-affinely on the mesh. Untouched frames are written bit for bit (lossless FFV1),
so the video's own blinks and expressions stay as natural negatives. Hard negatives are added on
purpose: low-amplitude macro-expressions (1-3 s) and small rigid head jitter.

By default the output is a close-up (:mod:`closeup`): a square video framed on the face and scaled
so that the face is 640 px wide, as a high-resolution camera would film it; amplitudes (given "at
640 px face width" by the spec) are then real pixels of the written video. Micro-expressions go
where the face is locally calm (little natural motion in a window around the event), as in a lab
recording; frames without a face never hold an event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.channels import ARKIT_INDEX
from avatar_bridge.errors import InputError, OutputError
from avatar_bridge.fileio import write_text_atomic
from avatar_bridge.micro.features import face_axes, face_width_px, reference_shape
from avatar_bridge.micro.synth.closeup import Closeup, plan_closeup
from avatar_bridge.micro.synth.patterns import PATTERNS, landmark_displacements, temporal_profile
from avatar_bridge.micro.synth.still import CameraOptions, film, held_still, light_spans
from avatar_bridge.micro.synth.warp import shift_image, warp_image
from avatar_bridge.records import FaceObservation, Frame, TrackingResult

FORMAT = "avatar-bridge-synth/1"
#: Bumped whenever the same options and seed would give different videos (cache keys use it).
GENERATOR_VERSION = 4
FOURCC = "FFV1"  # lossless: sub-pixel warps must survive encoding
SUFFIX = ".mkv"
#: The ground truth beside a generated video: ``<name>.truth.json`` (not ``.events.json``, which is
#: what ``export`` writes, so exporting into the same folder never overwrites the truth).
TRUTH_SUFFIX = ".truth.json"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SynthOptions:
    """What to inject. Amplitudes are pixels at 640 px face width (scaled to the real face).

    events: micro-expressions per video (None = as many as fit with ``spacing``); each takes the next
    amplitude of ``amplitudes`` and a random pattern of ``patterns``. onset/total: seconds ranges
    of onset-to-apex and onset-to-offset. macro / jitter: how many hard negatives of each kind.
    spacing: least seconds between two injected items; blink_margin: least seconds between a micro
    event and a natural blink (eyeBlink above ``blink_threshold``); lead_in: untouched seconds at the start
    (a spotter's warm-up). quiet: micro-expressions start at random among the free moments that
    are among the quietest ``quiet`` fraction of the whole video's (the face's own motion within
    ``calm_margin`` seconds around them); a micro that finds no such moment is left out (with
    ``events=None`` the video is then full). Hard negatives take the quietest fraction of the
    moments still free.
    sigma: spatial fall-off of a pattern (units of 640 px face width). closeup: side in pixels of
    the square close-up video written (None = keep the source framing and size); face_width: the
    face's median width in the close-up, in pixels.
    """

    events: int | None = None
    amplitudes: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    patterns: tuple[str, ...] = tuple(PATTERNS)
    onset: tuple[float, float] = (0.04, 0.26)
    total: tuple[float, float] = (0.15, 0.5)
    macro: int = 1
    macro_duration: tuple[float, float] = (1.0, 3.0)
    macro_amplitude: tuple[float, float] = (3.0, 6.0)
    jitter: int = 1
    jitter_amplitude: tuple[float, float] = (1.0, 4.0)
    jitter_duration: tuple[float, float] = (0.1, 0.3)
    spacing: float = 1.0
    lead_in: float = 0.6
    sigma: float = 40.0
    blink_threshold: float = 0.45
    blink_margin: float = 0.2
    quiet: float = 0.25
    calm_margin: float = 0.4
    closeup: int | None = 800
    face_width: float = 640.0
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [p for p in self.patterns if p not in PATTERNS]
        if unknown:
            raise InputError(f"unknown pattern(s) {', '.join(unknown)}; known: {', '.join(PATTERNS)}")
        if not self.amplitudes or min(self.amplitudes) <= 0:
            raise InputError(f"amplitudes must be positive pixels, got {self.amplitudes}")
        for name in (
            "onset",
            "total",
            "macro_duration",
            "macro_amplitude",
            "jitter_amplitude",
            "jitter_duration",
        ):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(f"{name} must be a range 0 < low <= high, got {(lo, hi)}")
        if self.closeup is not None and not 64 <= self.face_width < self.closeup:
            raise InputError(f"face_width must be 64..closeup pixels, got {self.face_width} / {self.closeup}")
        if self.onset[0] >= self.total[1]:
            raise InputError(f"onset {self.onset} must be shorter than total {self.total}")


@dataclass(slots=True)
class Injected:
    """One ground-truth item. kind: 'micro', 'macro' (hard negative) or 'jitter' (hard negative)."""

    kind: str
    onset: float
    apex: float
    offset: float
    amplitude: float  # px at 640 px face width
    amplitude_px: float = 0.0  # px in this video (at the median face width)
    hold: float = 0.0
    pattern: str = ""
    aus: tuple[str, ...] = ()
    side: str = "both"
    label: str = ""
    emotion: str = ""
    jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)  # unit dx, dy, rotation sign
    frames: list[int] = field(default_factory=list)


def natural_blinks(
    results: list[TrackingResult], threshold: float = 0.45, longest: float = 1.0
) -> list[tuple[float, float]]:
    """(start, end) seconds where MediaPipe's eyeBlink stays above ``threshold`` for under ``longest`` s."""
    out, start = [], None
    il, ir = ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]
    for r in results:
        closed = bool(r.faces) and max(r.faces[0].blendshapes[il], r.faces[0].blendshapes[ir]) > threshold
        if closed and start is None:
            start = r.timestamp
        elif not closed and start is not None:
            if r.timestamp - start < longest:
                out.append((start, r.timestamp))
            start = None
    if start is not None and results[-1].timestamp - start < longest:
        out.append((start, results[-1].timestamp))
    return out


def motion_score(results: list[TrackingResult]) -> np.ndarray:
    """Per frame, how much the face moves by itself (px at 640 px face width per frame, non-rigid)."""
    from avatar_bridge.micro.features import GROUPS, align

    first = next((r.faces[0] for r in results if r.faces), None)
    if first is None:
        raise InputError("no face was found in the video; nothing to inject into")
    ref = reference_shape(first)
    idx = [g for _, g in GROUPS.values()]
    prev, out = None, np.zeros(len(results))
    for i, r in enumerate(results):
        if not r.faces:
            out[i] = np.inf
            continue
        a = align(r.faces[0].landmarks_px, ref)[:, :2]
        cur = np.array([a[g].mean(axis=0) for g in idx])
        out[i] = 0.0 if prev is None else float(np.hypot(*(cur - prev).T).max())
        prev = cur
    return out


def flow_motion(images: Iterable[np.ndarray], results: list[TrackingResult], h: float = 0.15) -> np.ndarray:
    """Per frame, the face's own non-rigid motion seen by optical flow (the spotter's patch tracks):
    the largest bump ``|x(t-h) - (x(t-2h) + x(t)) / 2|`` over the patches, in px at 640 px face
    width, placed at ``t - h``; inf where there is no face."""
    from avatar_bridge.micro.spotting.channels import load_config
    from avatar_bridge.micro.spotting.flowtracks import FlowTracks

    cfg = load_config()
    tracks = FlowTracks(cfg.patches, cfg.rigid)
    times = np.array([r.timestamp for r in results])
    pos = np.full((len(results), len(cfg.patches), 2), np.nan)
    for i, (img, r) in enumerate(zip(images, results, strict=True)):
        if r.faces:
            pos[i] = tracks.update(img, r.faces[0], r.timestamp)
        else:
            tracks.reset()
    idx = np.arange(len(times))
    at = [np.clip(np.searchsorted(times, times - k * h), 0, len(times) - 1) for k in (1, 2)]
    bump = np.linalg.norm(pos[at[0]] - 0.5 * (pos[at[1]] + pos[idx]), axis=2).max(axis=1)
    out = np.full(len(times), np.inf)
    ok = np.isfinite(bump) & (times - 2 * h >= times[0])
    out[at[0][ok]] = bump[ok]
    return out


def plan(
    results: list[TrackingResult], options: SynthOptions, score: np.ndarray | None = None
) -> list[Injected]:
    """Choose what to inject and when: quiet moments, away from natural blinks, ``spacing`` apart.

    ``score``: per-frame natural motion (:func:`flow_motion`); None = from the landmarks
    (:func:`motion_score`), coarser.
    """
    rng = np.random.default_rng(options.seed)
    times = np.array([r.timestamp for r in results])
    end = times[-1]
    score = motion_score(results) if score is None else score
    closed = natural_blinks(results, options.blink_threshold, longest=np.inf)  # blinks and longer closures
    micro: list[Injected] = []
    n_micro = options.events if options.events is not None else 10_000
    for k in range(n_micro):
        total = rng.uniform(max(options.total[0], options.onset[0] + 0.05), options.total[1])
        onset = rng.uniform(options.onset[0], min(options.onset[1], total - 0.05))
        p = PATTERNS[options.patterns[int(rng.integers(len(options.patterns)))]]
        amp = options.amplitudes[k % len(options.amplitudes)]
        micro.append(Injected("micro", 0.0, onset, total, amp, pattern=p.name, aus=p.aus, side=p.side,
                              label=p.label, emotion=p.emotion))  # fmt: skip
    negatives: list[Injected] = []
    for _ in range(options.macro):
        dur = rng.uniform(*options.macro_duration)
        rise, fall = rng.uniform(0.2, 0.45), rng.uniform(0.2, 0.45)
        p = PATTERNS[options.patterns[int(rng.integers(len(options.patterns)))]]
        negatives.append(Injected("macro", 0.0, rise, dur, rng.uniform(*options.macro_amplitude),
                                  hold=dur - rise - fall, pattern=p.name, aus=p.aus, side=p.side,
                                  label=p.label, emotion=p.emotion))  # fmt: skip
    for _ in range(options.jitter):
        dur = rng.uniform(*options.jitter_duration)
        angle = rng.uniform(0, 2 * math.pi)
        negatives.append(Injected("jitter", 0.0, dur / 2, dur, rng.uniform(*options.jitter_amplitude),
                                  jitter=(math.cos(angle), math.sin(angle),
                                          float(rng.choice([-1.0, 1.0])))))  # fmt: skip
    # One micro first (short videos hold little), then the hard negatives, then the other micros.
    items = micro[:1] + negatives + micro[1:]
    placed: list[Injected] = []
    busy: list[tuple[float, float]] = []
    for item in items:
        dur = item.offset
        starts = times[(times >= options.lead_in) & (times + dur <= end - 0.3)]
        gap = options.spacing
        avoid = [(a - gap, b + gap) for a, b in busy]
        if item.kind == "micro":
            avoid += [(a - options.blink_margin, b + options.blink_margin) for a, b in closed]
        m = options.calm_margin
        # The face's own motion around the item; a frame without a face scores inf, so windows
        # that lose the face are never chosen (and never reach the quantile as NaN).
        motion = np.array([score[(times >= t - m) & (times <= t + dur + m)].max(initial=0.0) for t in starts])
        free = np.array([all(t + dur <= a or t >= b for a, b in avoid) for t in starts], dtype=bool)
        free &= np.isfinite(motion)
        ok, quiet = [t for t, f in zip(starts, free, strict=True) if f], motion[free]
        if not ok:
            if options.events is None and item.kind == "micro":
                break  # the video is full
            continue
        if item.kind == "micro":
            # Calm in absolute terms: among the quietest ``quiet`` fraction of the whole video's
            # moments, not merely of what is still free (a busy video holds few micro-expressions).
            whole = motion[np.isfinite(motion)]
            good = np.flatnonzero(quiet <= np.quantile(whole, options.quiet))
            if not len(good):
                if options.events is None:
                    break  # no calm moment left
                continue
        else:
            good = np.flatnonzero(quiet <= np.quantile(quiet, options.quiet))
        t0 = float(ok[int(rng.choice(good))])
        item.onset, item.apex, item.offset = t0, t0 + item.apex, t0 + item.offset
        placed.append(item)
        busy.append((t0, item.offset))
    return sorted(placed, key=lambda it: it.onset)


def read_frames(video: Path) -> tuple[list, float]:
    """All frames (RGB) of ``video`` and its fps, through the project's capture stage."""
    from avatar_bridge.capture import open_source

    with open_source(video) as src:
        return list(src), src.info.fps


def render_frame(img: np.ndarray, face: FaceObservation | None, t: float, index: int, items: list[Injected],
                 unit: dict[str, np.ndarray], scale: float | None = None) -> np.ndarray:  # fmt: skip
    """One output image: ``img`` warped for the ``items`` active at ``t`` (the original when none is).

    ``face``: the tracking of this very image; ``unit``: unit displacements per pattern name;
    ``scale``: output pixels per unit of amplitude (None = this face's width / 640).
    """
    active = [it for it in items if it.onset < t < it.offset]
    if face is None or not active:
        return img
    pts = face.landmarks_px[:468, :2].astype(np.float64)
    lateral, up = face_axes(face.landmarks_px)
    k = face_width_px(face) / 640.0 if scale is None else scale
    disp = np.zeros((468, 2))
    for it in active:
        w = float(temporal_profile(t, it.onset, it.apex, it.offset, it.hold))
        if it.kind in ("micro", "macro") and w > 0:
            u = unit[it.pattern][:468]
            disp += w * it.amplitude * k * (u[:, :1] * lateral + u[:, 1:] * up)
            it.frames.append(index)
    if np.abs(disp).max() > 0:
        img = warp_image(img, pts, disp)
    for it in active:
        w = float(temporal_profile(t, it.onset, it.apex, it.offset, it.hold))
        if it.kind == "jitter" and w > 0:
            a = w * it.amplitude * k
            centre = tuple(float(c) for c in pts.mean(axis=0))
            img = shift_image(img, a * it.jitter[0], a * it.jitter[1], math.degrees(a * it.jitter[2] / 200.0),
                              centre)  # fmt: skip
            it.frames.append(index)
    return img


def unit_displacements(
    results: list[TrackingResult], items: list[Injected], sigma: float
) -> dict[str, np.ndarray]:
    """Unit-peak landmark displacements of every pattern used by ``items`` (on the first tracked face)."""
    first = next(r.faces[0] for r in results if r.faces)
    ref = reference_shape(first)
    return {
        n: landmark_displacements(PATTERNS[n], ref, sigma) for n in {it.pattern for it in items if it.pattern}
    }


def render(frames: list, results: list[TrackingResult], items: list[Injected], sigma: float = 40.0,
           progress: Progress | None = None) -> list[np.ndarray]:  # fmt: skip
    """Warp the frames for ``items`` in the source framing; returns RGB images (untouched = originals)."""
    by_index = {r.index: r for r in results}
    unit = unit_displacements(results, items, sigma)
    out = []
    for i, frame in enumerate(frames):
        r = by_index.get(frame.index)
        face = r.faces[0] if r is not None and r.faces else None
        out.append(render_frame(frame.image, face, frame.timestamp, frame.index, items, unit))
        if progress is not None:
            progress(i + 1, len(frames))
    return out


@dataclass
class Prepared:
    """What :func:`prepare` decided for one video: the items, the close-up (None = source framing)
    and the tracking in output coordinates (source tracking mapped into the close-up)."""

    items: list[Injected]
    closeup: Closeup | None
    results: list[TrackingResult]
    options: SynthOptions
    face_width_px: float
    #: Per frame, the untouched face's own non-rigid motion the plan used (:func:`flow_motion`,
    #: px at 640 px face width; None when planned from the landmarks).
    motion: np.ndarray | None = None


def prepare(
    results: list[TrackingResult], options: SynthOptions, frames: list[Frame] | None = None
) -> Prepared:
    """Frame the close-up and plan the items of one video (source tracking ``results``).

    With the source ``frames``, calm moments are found by optical flow on the output framing
    (what a spotter sees); without, from the landmarks.
    """
    if options.closeup is not None:
        view = plan_closeup(results, options.closeup, options.face_width)
        out_results = [view.result(r, i) for i, r in enumerate(results)]
    else:
        view, out_results = None, list(results)
    score = None
    if frames is not None and (options.events is None or options.events > 0):
        images = (view.image(f.image, i) if view is not None else f.image for i, f in enumerate(frames))
        score = flow_motion(images, out_results)
    items = plan(out_results, options, score)
    widths = [face_width_px(r.faces[0]) for r in out_results if r.faces]
    median_width = float(np.median(widths))
    scale = options.face_width / 640.0 if view is not None else median_width / 640.0
    for it in items:
        it.amplitude_px = it.amplitude * scale
    return Prepared(items, view, out_results, options, median_width, score)


def stream(frames: Iterable[Frame], prepared: Prepared) -> Iterator[Frame]:
    """The output frames, one by one (close-up, warped), for writing or for feeding a tracker."""
    p = prepared
    unit = unit_displacements(p.results, p.items, p.options.sigma)
    by_index = {r.index: (i, r) for i, r in enumerate(p.results)}
    scale = p.options.face_width / 640.0 if p.closeup is not None else None
    last: tuple[object, tuple[float, ...], np.ndarray] | None = None  # a held-still source repeats one image
    for frame in frames:
        i, r = by_index.get(frame.index, (None, None))
        if i is None:
            raise InputError(f"frame {frame.index} has no tracking; the tracking is not of this video")
        img = frame.image
        if p.closeup is not None:
            box = tuple(p.closeup.corners[i])
            if last is None or last[0] is not frame.image or last[1] != box:
                last = (frame.image, box, p.closeup.image(frame.image, i))
            img = last[2]
        face = r.faces[0] if r.faces else None
        img = render_frame(img, face, frame.timestamp, frame.index, p.items, unit, scale)
        yield Frame(frame.index, frame.timestamp, img)


def write_video(path: Path, images: Iterable[np.ndarray], fps: float) -> None:
    """Write RGB ``images`` losslessly to ``path`` as they come (temp file, then rename)."""
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    writer = None
    try:
        for img in images:
            if writer is None:
                h, w = img.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps, (w, h))
                if not writer.isOpened():
                    raise OutputError(f"cannot write {tmp} (OpenCV has no {FOURCC} encoder here)")
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    except BaseException:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        raise InputError(f"no frames to write to {path}")
    writer.release()
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class HeldStill:
    """Make a lab-like held-still recording (:mod:`still`) instead of warping the whole video:
    frame ``frame`` held for ``seconds`` and filmed by ``camera`` (sway, flicker, noise, codec)."""

    frame: int
    seconds: float = 8.0
    camera: CameraOptions = field(default_factory=CameraOptions)


def generate(
    video: str | Path,
    out_dir: str | Path,
    results: list[TrackingResult],
    options: SynthOptions | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    still: HeldStill | None = None,
) -> tuple[Path, Path]:
    """Inject events into ``video`` (tracked as ``results``), or into one of its frames held still
    (``still``); write ``<name>.mkv`` and ``<name>.truth.json``.

    Returns the two paths. ``results`` must be real tracking of this very video (frame indices match).
    """
    options = options or SynthOptions()
    video = Path(video)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out_dir}: {e}") from e
    frames, fps = read_frames(video)
    if len(frames) != len(results):
        raise InputError(f"{video.name} has {len(frames)} frames but its tracking has {len(results)}")
    if still is None:
        name = name or f"{video.stem}-s{options.seed}"
        prepared = prepare(results, options, frames)
        out = stream(frames, prepared)
    else:
        name = name or f"{video.stem}-still{still.frame}-s{options.seed}"
        frames, results = held_still(frames, results, still.frame, still.seconds, fps)
        prepared = prepare(results, options)  # a still face: calm everywhere, no flow needed to plan
        out = filmed(frames, prepared, still.camera)

    def images() -> Iterator[np.ndarray]:
        for k, f in enumerate(out):
            yield f.image
            if progress is not None:
                progress(k + 1, len(frames))

    video_out = out_dir / f"{name}{SUFFIX}"
    write_video(video_out, images(), fps)
    truth = truth_document(video.name, video_out.name, fps, frames, prepared)
    if still is not None:
        truth["still"] = {"frame": still.frame, "seconds": still.seconds, "camera": asdict(still.camera)}
        truth["negatives"] += light_spans(still.camera.light, frames[-1].timestamp)
    json_out = out_dir / f"{name}{TRUTH_SUFFIX}"
    write_text_atomic(json_out, json.dumps(truth, indent=1), "ground truth")
    return video_out, json_out


def filmed(still: list[Frame], prepared: Prepared, camera: CameraOptions) -> Iterator[Frame]:
    """A held-still recording's output frames: the events injected, then filmed by ``camera``."""
    for item in prepared.items:
        item.frames.clear()
    times = [f.timestamp for f in still]
    images = (f.image for f in stream(still, prepared))
    for f, img in zip(still, film(images, times, camera), strict=True):
        yield Frame(f.index, f.timestamp, img)


def truth_document(source: str, video: str, fps: float, frames: list, prepared: Prepared) -> dict:
    """The ground truth written beside a generated video (``<name>.truth.json``)."""
    p, options = prepared, prepared.options
    size = (p.closeup.size, p.closeup.size) if p.closeup is not None else frames[0].image.shape[1::-1]
    return {
        "format": FORMAT,
        "generator_version": GENERATOR_VERSION,
        "source": source,
        "video": video,
        "fps": fps,
        "frame_count": len(frames),
        "width": int(size[0]),
        "height": int(size[1]),
        "face_width_px": p.face_width_px,
        "closeup": None if p.closeup is None else p.closeup.as_dict(),
        "amplitude_unit": (
            "pixels of this video (close-up, median face width about 640 px)"
            if p.closeup is not None
            else "pixels at 640 px face width (amplitude_px: pixels of this video)"
        ),
        "timestamps": [f.timestamp for f in frames],
        "options": asdict(options),
        "events": [_item_json(it) for it in p.items if it.kind == "micro"],
        "negatives": [_item_json(it) for it in p.items if it.kind != "micro"]
        + [
            {"kind": "blink", "onset": a, "offset": b}
            for a, b in natural_blinks(p.results, options.blink_threshold)
        ],
    }


def _item_json(it: Injected) -> dict:
    d = asdict(it)
    d["aus"] = list(it.aus)
    d["duration"] = it.offset - it.onset
    if it.kind != "jitter":
        d.pop("jitter")
    return d


def load_truth(path: str | Path) -> dict:
    """Read a ground-truth JSON written by :func:`generate` (checks the format tag)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read ground truth {path}: {e}") from e
    if data.get("format") != FORMAT:
        raise InputError(f"{path} is not avatar-bridge synth ground truth (format {data.get('format')!r})")
    return data
