"""Region clips for TP-HA3DNet: from a video, its tracking and event times, or from the project's own
generated data (micro-expressions injected into real video; subjects = people, not files).

A clip is (3 regions, T frames, 64, 64) grey uint8, regions in :data:`tp_ha3dnet.REGIONS` order, cut
from the 128 x 128 aligned face (:mod:`avatar_bridge.micro.flow`: the crops of ``region_crops``).

Two generated tiers: :func:`generated_clips` (the moving close-ups of the face samples, framed by
the source tracking) and :func:`lab_clips` (held-still recordings: a real frame of each person
held still, events injected, filmed with sway, flicker, noise and JPEG, tracked by MediaPipe; the
tier TP-HA3DNet's committed weights were trained on, see ``models/tp_ha3dnet.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.classify.tp_ha3dnet import REGIONS
from avatar_bridge.records import Frame, TrackingResult

if TYPE_CHECKING:
    from avatar_bridge.micro.datasets import Sample

Progress = Callable[[int, int], None]


def frame_crops(image: np.ndarray, face, matrix: np.ndarray | None = None) -> np.ndarray:
    """(3, 64, 64) grey crops of one frame; ``matrix``: the 2x3 alignment to use instead of this
    face's own (:func:`avatar_bridge.micro.flow.alignment_matrix`)."""
    from avatar_bridge.micro.flow import grey, region_crops

    crops = region_crops(grey(image), face, matrix)  # grey first: one channel to warp
    return np.stack([crops[r] for r in REGIONS])


def event_clip(frames: Sequence[Frame], results: dict[int, TrackingResult], onset: float, offset: float,
               pad: float = 0.0, steady: bool = False) -> np.ndarray:  # fmt: skip
    """The clip of frames whose timestamps lie in [onset - pad, offset + pad].

    Frames without a face take the nearest earlier face (a face lost mid-event keeps its position);
    a clip with no face at all is an error. ``steady``: one alignment for the whole clip (the mean
    of its frames' alignments) instead of one per frame, so the tracker's frame-to-frame jitter of
    a fraction of a pixel does not move the crops as much as the expression itself does."""
    from avatar_bridge.micro.flow import alignment_matrix

    chosen = [f for f in frames if onset - pad <= f.timestamp <= offset + pad]
    if not chosen:
        raise InputError(f"no frames between {onset:.3f} s and {offset:.3f} s")
    pairs, last = [], None
    for f in chosen:
        r = results.get(f.index)
        face = r.faces[0] if r is not None and r.faces else last
        if face is None:
            continue
        last = face
        pairs.append((f, face))
    if not pairs:
        raise InputError(f"no face in the frames between {onset:.3f} s and {offset:.3f} s")
    matrix = np.mean([alignment_matrix(face) for _, face in pairs], axis=0) if steady else None
    return np.stack([frame_crops(f.image, face, matrix) for f, face in pairs], axis=1)  # (3, T, 64, 64)


@dataclass
class ClipSet:
    """Clips with their labels, subjects (LOSO groups) and where each came from."""

    clips: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: ClipSet) -> None:
        self.clips += other.clips
        self.labels += other.labels
        self.subjects += other.subjects
        self.sources += other.sources
        self.problems += other.problems


def clips_from_truth(
    truth_json: Path, results: list[TrackingResult], subject: str, pad: float = 0.0
) -> ClipSet:
    """Clips of every injected micro-expression in a generated video (its ``.events.json``).

    ``results``: tracking of the *source* video (the warp moves landmarks by a few pixels only, so
    the source's face boxes fit the generated frames)."""
    from avatar_bridge.capture import open_source
    from avatar_bridge.micro.synth import load_truth

    truth = load_truth(truth_json)
    video = Path(truth_json).parent / truth["video"]
    with open_source(video) as src:
        frames = list(src)
    by_index = {r.index: r for r in results}
    out = ClipSet()
    for ev in truth["events"]:
        try:
            clip = event_clip(frames, by_index, ev["onset"], ev["offset"], pad)
        except InputError as e:
            out.problems.append(f"{video.name} {ev['onset']:.2f}s: {e}")
            continue
        out.clips.append(clip)
        out.labels.append(ev["label"])
        out.subjects.append(subject)
        out.sources.append(
            {
                "video": video.name,
                "onset": ev["onset"],
                "offset": ev["offset"],
                "pattern": ev.get("pattern", ""),
                "amplitude": ev.get("amplitude", 0.0),
            }
        )
    return out


def dataset_clips(samples: Sequence[Sample], progress: Progress | None = None) -> ClipSet:
    """Clips of a dataset's labelled micro-expressions, onset to offset frame, each tracked by
    MediaPipe from its first frame (a fresh tracker per clip, at the dataset's frame rate).

    Subjects are the dataset's, for leave-one-subject-out; a sample whose frames are missing or
    unreadable, or show no face, is listed in ``problems`` and left out."""
    import cv2

    from avatar_bridge.tracking import FaceTracker

    out = ClipSet()
    for k, s in enumerate(samples):
        try:
            frames = []
            for i, path in enumerate(s.frames()):
                bgr = cv2.imread(str(path))
                if bgr is None:
                    raise InputError(f"cannot read {path.name}")
                frames.append(Frame(i, i / s.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            if not frames:
                raise InputError(f"no frames from {s.onset} to {s.offset}")
            with FaceTracker() as tracker:
                results = {f.index: tracker.update(f) for f in frames}
            clip = event_clip(frames, results, frames[0].timestamp, frames[-1].timestamp)
        except InputError as e:
            out.problems.append(f"{s.video} frames {s.onset}-{s.offset}: {e}")
        else:
            out.clips.append(clip)
            out.labels.append(s.label)
            out.subjects.append(s.subject)
            out.sources.append({"video": s.video, "onset": s.onset, "offset": s.offset, "aus": s.aus,
                                "row": s.row})  # fmt: skip
        if progress is not None:
            progress(k + 1, len(samples))
    return out


def generated_clips(
    out_dir: Path | None,
    sources: Sequence[str],
    seeds: Sequence[int],
    events: int | None = None,
    progress: Progress | None = None,
    spacing: float = 0.7,
) -> ClipSet:
    """Micro-expressions injected into the bundled ``sources`` (one plan per seed), cut as clips.

    The generator's close-up is rendered only around each event, and the source tracking mapped
    into it frames the crops (the warp moves the face by a few pixels only), so no video is written
    and no tracker runs. Subjects are recordings, not files: face_noface.mov and noface_face.mov
    hold the single_face.mp4 clip itself, so leaving one *file* out would test on training footage.
    ``out_dir``: where to cache each (source, seed) clip set (None = no cache).
    """
    from avatar_bridge import sample_media
    from avatar_bridge.micro.synth import GENERATOR_VERSION, SynthOptions, prepare, stream
    from avatar_bridge.micro.synth.cache import RECORDINGS, sample_frames
    from avatar_bridge.recording import load_recording

    todo = [(s, k) for s in sources for k in seeds]
    result = ClipSet()
    for n, (source, seed) in enumerate(todo):
        subject = RECORDINGS.get(source, Path(source).stem)
        opts = SynthOptions(seed=seed, events=events, macro=0, jitter=0, spacing=spacing, quiet=1.0)
        cache = None
        if out_dir is not None:
            cache = (
                Path(out_dir)
                / f"clips-v{GENERATOR_VERSION}-{Path(source).stem}-s{seed}-{events}-{spacing:g}.npz"
            )
        if cache is not None and cache.is_file():
            part = _load_clips(cache)
        else:
            try:
                results = load_recording(sample_media.sample_recording(source))
                frames, _ = sample_frames(source)
                prepared = prepare(results, opts)
            except (InputError, ValueError) as e:  # keep the other videos; say which one failed
                result.problems.append(f"generator failed on {source} seed {seed}: {e}")
                continue
            part = ClipSet()
            by_index = {r.index: r for r in prepared.results}
            for it in (i for i in prepared.items if i.kind == "micro"):
                window = [f for f in frames if it.onset <= f.timestamp <= it.offset]
                try:
                    clip = event_clip(list(stream(window, prepared)), by_index, it.onset, it.offset)
                except InputError as e:
                    part.problems.append(f"{source} seed {seed} {it.onset:.2f}s: {e}")
                    continue
                part.clips.append(clip)
                part.labels.append(it.label)
                part.subjects.append(subject)
                part.sources.append({"video": source, "seed": seed, "onset": it.onset, "offset": it.offset,
                                     "pattern": it.pattern, "amplitude": it.amplitude})  # fmt: skip
            if cache is not None:
                _save_clips(cache, part)
        result.extend(part)
        if progress is not None:
            progress(n + 1, len(todo))
    if not result.clips:
        raise InputError(f"no micro-expression clips were generated from {list(sources)}")
    return result


def _save_clips(path: Path, clips: ClipSet, steady: Sequence[np.ndarray] = ()) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    arrays = {f"clip{i}": c for i, c in enumerate(clips.clips)}
    arrays.update({f"steady{i}": c for i, c in enumerate(steady)})
    meta = json.dumps({"labels": clips.labels, "subjects": clips.subjects, "sources": clips.sources,
                       "problems": clips.problems})  # fmt: skip
    np.savez_compressed(tmp, meta=np.array(meta), **arrays)
    tmp.replace(path)


def _load_clips(path: Path, which: str = "clip") -> ClipSet:
    import json

    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        clips = [data[f"{which}{i}"] for i in range(len(meta["labels"]))]
    return ClipSet(clips, meta["labels"], meta["subjects"], meta["sources"], meta["problems"])


# ---------------------------------------------------------------------------------------------------
# Held-still recordings (the lab-like tier): many labelled events per person, tracked by MediaPipe


@dataclass(frozen=True)
class StillPlan:
    """One held-still recording: frame ``index`` of ``source`` held ``seconds``, events ``options``
    injected, filmed by ``camera`` (:func:`avatar_bridge.micro.synth.cache.tracked_still`)."""

    source: str
    index: int
    seconds: float
    options: object  # SynthOptions (imported on use: the generator pulls in the spotter's flow)
    camera: object  # CameraOptions


def still_plan(source: str, index: int, amplitude: float, seed: int, seconds: float = 8.0) -> StillPlan:
    """The spotting benchmark's lab-like recording for (``amplitude``, ``seed``) on frame ``index``
    (:func:`avatar_bridge.micro.synth.still.lab_recording`): same options, same cache entry."""
    from avatar_bridge.micro.synth.still import lab_recording

    options, camera = lab_recording(amplitude, seed, index)
    return StillPlan(source, index, seconds, options, camera)


def still_clips(plan: StillPlan, out_dir: Path | None = None, pad: float = 0.12, steady: bool = False,
                spot: bool = True) -> ClipSet:  # fmt: skip
    """Clips of every injected micro-expression of one held-still recording, tracked by MediaPipe.

    Each clip covers [onset - ``pad``, offset + ``pad``] of the ground truth at the video's frame
    rate (``sources[i]['times']`` holds its timestamps, so a model can cut onset-to-offset itself).
    With ``spot``, the online spotter (default options) runs over the same frames, and each clip's
    source records the spotted event that matches it (IoU >= 0.5: onset, apex, offset and the
    AU-rule label) or None: the AU-rule classifier judged on the same events. ``out_dir``: cache
    (both alignments are stored; ``steady`` picks one, see :func:`event_clip`); with ``spot`` the
    entry is keyed by the spotter's code and settings too, so a changed spotter labels them again.
    """
    from avatar_bridge.micro.synth.cache import RECORDINGS, cache_folder, key, still_frames_of, tracked_still

    folder = Path(out_dir) if out_dir is not None else cache_folder()
    name = key(plan.source, plan.options, "still", plan.index, plan.seconds, plan.camera)
    cache = folder / f"clips-{name}-p{pad:g}{'-spot' + _spotter_fingerprint() if spot else ''}.npz"
    if cache.is_file():
        return _load_clips(cache, "steady" if steady else "clip")
    prepared, results, truth = tracked_still(plan.source, plan.index, plan.seconds, plan.options, plan.camera)
    by_index = {r.index: r for r in results}
    events = truth["events"]
    keep = [(e["onset"] - pad, e["offset"] + pad) for e in events]
    frames, spotted = [], []
    spotter = None
    if spot:
        from avatar_bridge.micro import MicroSpotter, SpotterOptions

        spotter = MicroSpotter(SpotterOptions())
    for frame in still_frames_of(plan.source, plan.index, plan.seconds, prepared, plan.camera):
        if spotter is not None:
            spotted += spotter.update(by_index[frame.index], (), frame)
        if any(a <= frame.timestamp <= b for a, b in keep):
            frames.append(frame)
    if spotter is not None:
        spotted += spotter.flush()
    match = _spotted_matches(events, spotted) if spot else {}
    subject = RECORDINGS.get(plan.source, Path(plan.source).stem)
    part, steady_clips = ClipSet(), []
    for i, ev in enumerate(events):
        try:
            clip = event_clip(frames, by_index, ev["onset"], ev["offset"], pad)
            steady_clips.append(event_clip(frames, by_index, ev["onset"], ev["offset"], pad, steady=True))
        except InputError as e:
            where = f"{plan.source}#{plan.index} seed {plan.options.seed} {ev['onset']:.2f}s"
            part.problems.append(f"{where}: {e}")
            continue
        times = [f.timestamp for f in frames if ev["onset"] - pad <= f.timestamp <= ev["offset"] + pad]
        part.clips.append(clip)
        part.labels.append(ev["label"])
        part.subjects.append(subject)
        part.sources.append({"video": plan.source, "frame": plan.index, "seed": plan.options.seed,
                             "onset": ev["onset"], "apex": ev["apex"], "offset": ev["offset"],
                             "pattern": ev["pattern"], "amplitude": ev["amplitude"], "times": times,
                             "spotted": match.get(i)})  # fmt: skip
    _save_clips(cache, part, steady_clips)
    return _load_clips(cache, "steady" if steady else "clip")


def _spotter_fingerprint() -> str:
    """Digest of the spotter's code, settings file and default options: cached spotted events are
    made again when any of them changes (they are the spotter's output, not the generator's)."""
    import hashlib

    from avatar_bridge.micro import SpotterOptions, flow, spotting
    from avatar_bridge.micro.spotting.channels import SPOTTING_FILE
    from avatar_bridge.resources import data_dir

    digest = hashlib.sha256(repr(SpotterOptions()).encode())
    files = sorted(Path(spotting.__file__).parent.glob("*.py")) + [Path(flow.__file__)]
    for f in [*files, data_dir("blendshapes") / SPOTTING_FILE]:
        digest.update(f.read_bytes())
    return digest.hexdigest()[:10]


def _spotted_matches(events: list[dict], spotted: list) -> dict[int, dict]:
    from avatar_bridge.micro.evaluation import match_intervals
    from avatar_bridge.records import EventKind

    micro = [e for e in spotted if e.kind == EventKind.MICRO]
    pairs = match_intervals([(e["onset"], e["offset"]) for e in events], [(e.onset, e.offset) for e in micro])
    return {i: {"onset": micro[j].onset, "apex": micro[j].apex, "offset": micro[j].offset,
                "label": micro[j].label, "emotion": micro[j].emotion, "aus": dict(micro[j].aus), "iou": iou}
            for i, j, iou in pairs}  # fmt: skip


#: The held-still recordings the spotting benchmark made (their tracking is cached): seeds 1-3 at
#: 1-4 px on frames 2, 17, 71 / 240, 380, and its development seeds 100-103 at 2-4 px on 5, 30 / 245, 300.
LAB_PLANS: tuple[tuple[str, int, float, int], ...] = tuple(
    [(s, i, a, k) for s, idx in (("single_face.mp4", (2, 17, 71)), ("WolfgangLanger_Pexels.mp4", (240, 380)))
     for i in idx for a in (1.0, 2.0, 3.0, 4.0) for k in (1, 2, 3)]
    + [(s, i, a, k) for s, idx in (("single_face.mp4", (5, 30)), ("WolfgangLanger_Pexels.mp4", (245, 300)))
       for i in idx for k in (100, 101, 102, 103) for a in ((2.0, 3.0, 4.0) if k < 102 else (2.0, 3.0))]
)  # fmt: skip


def lab_clips(plans: Sequence[tuple[str, int, float, int]] = LAB_PLANS, out_dir: Path | None = None,
              steady: bool = False, progress: Progress | None = None) -> ClipSet:  # fmt: skip
    """Clips of the held-still recordings ``plans``, each (source, frame, amplitude, seed): see
    :func:`still_plan`."""
    out = ClipSet()
    for n, (source, index, amplitude, seed) in enumerate(plans):
        plan = still_plan(source, index, amplitude, seed)
        try:
            out.extend(still_clips(plan, out_dir, steady=steady))
        except InputError as e:  # keep the other recordings; say which one failed
            out.problems.append(f"{source}#{index} seed {seed}: {e}")
        if progress is not None:
            progress(n + 1, len(plans))
    if not out.clips:
        raise InputError("no held-still micro-expression clips were made")
    return out


def event_window(clip: np.ndarray, source: dict, spotted: bool = False) -> np.ndarray | None:
    """The frames of a stored clip from its event's onset to its offset, onset first: the ground
    truth's, or with ``spotted`` the matching spotted event's (None when the spotter missed it).

    Clips stored without timestamps are returned whole. At least two frames are kept (the two
    nearest the interval's middle when the interval falls between frames)."""
    times = source.get("times")
    if not times:
        return clip if not spotted else None
    ev = source.get("spotted") if spotted else source
    if ev is None:
        return None
    t = np.asarray(times)
    sel = np.flatnonzero((t >= ev["onset"] - 1e-6) & (t <= ev["offset"] + 1e-6))
    if len(sel) < 2:
        sel = np.sort(np.argsort(np.abs(t - 0.5 * (ev["onset"] + ev["offset"])))[:2])
    return clip[:, sel]
