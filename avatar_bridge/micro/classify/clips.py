"""Region clips for TP-HA3DNet: from a video, its tracking and event times, or from the project's own
generated data (micro-expressions injected into real video; subjects = source videos).

A clip is (3 regions, T frames, 64, 64) grey uint8, regions in :data:`tp_ha3dnet.REGIONS` order, cut by
:func:`avatar_bridge.micro.flow.region_crops` from the aligned face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.classify.tp_ha3dnet import REGIONS
from avatar_bridge.records import Frame, TrackingResult

Progress = Callable[[int, int], None]


def frame_crops(image: np.ndarray, face) -> np.ndarray:
    """(3, 64, 64) grey crops of one frame."""
    from avatar_bridge.micro.flow import region_crops

    crops = region_crops(image, face)
    return np.stack([cv2.cvtColor(crops[r], cv2.COLOR_RGB2GRAY) for r in REGIONS])


def event_clip(frames: Sequence[Frame], results: dict[int, TrackingResult], onset: float, offset: float,
               pad: float = 0.0) -> np.ndarray:  # fmt: skip
    """The clip of frames whose timestamps lie in [onset - pad, offset + pad].

    Frames without a face take the nearest earlier face (a face lost mid-event keeps its position);
    a clip with no face at all is an error."""
    chosen = [f for f in frames if onset - pad <= f.timestamp <= offset + pad]
    if not chosen:
        raise InputError(f"no frames between {onset:.3f} s and {offset:.3f} s")
    out, last = [], None
    for f in chosen:
        r = results.get(f.index)
        face = r.faces[0] if r is not None and r.faces else last
        if face is None:
            continue
        last = face
        out.append(frame_crops(f.image, face))
    if not out:
        raise InputError(f"no face in the frames between {onset:.3f} s and {offset:.3f} s")
    return np.stack(out, axis=1)  # (3, T, 64, 64)


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


def _save_clips(path: Path, clips: ClipSet) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    arrays = {f"clip{i}": c for i, c in enumerate(clips.clips)}
    meta = json.dumps({"labels": clips.labels, "subjects": clips.subjects, "sources": clips.sources,
                       "problems": clips.problems})  # fmt: skip
    np.savez_compressed(tmp, meta=np.array(meta), **arrays)
    tmp.replace(path)


def _load_clips(path: Path) -> ClipSet:
    import json

    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        clips = [data[f"clip{i}"] for i in range(len(meta["labels"]))]
    return ClipSet(clips, meta["labels"], meta["subjects"], meta["sources"], meta["problems"])
