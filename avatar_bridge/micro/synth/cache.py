"""Generated videos of the bundled samples, tracked once by real MediaPipe and cached.

Benchmarks and tests need the tracking of generated videos, and their frames for optical flow.
Frames are cheap to make again (the generator is deterministic for a seed) and large to store, so
only the tracking (``.npz``) and the ground truth (``.events.json``) are kept, in the user cache,
keyed by the generator version, the source and a hash of the options (seed included).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from avatar_bridge import sample_media
from avatar_bridge.micro.synth.generate import (
    GENERATOR_VERSION,
    Prepared,
    SynthOptions,
    filmed,
    prepare,
    read_frames,
    stream,
    truth_document,
)
from avatar_bridge.micro.synth.still import CameraOptions, held_still
from avatar_bridge.records import Frame, TrackingResult

#: Which recording each bundled face sample holds: the two .mov files contain the single_face clip.
RECORDINGS = {
    "single_face.mp4": "single_face",
    "face_noface.mov": "single_face",
    "noface_face.mov": "single_face",
    "WolfgangLanger_Pexels.mp4": "wolfgang",
}
#: The bundled samples with a face.
FACE_SAMPLES = tuple(RECORDINGS)


def cache_folder() -> Path:
    return sample_media.cache_dir().parent / "synth-cache" / f"v{GENERATOR_VERSION}"


#: Fields added after recordings were cached, left out of the key at these defaults (the keys of before).
_ADDED_DEFAULTS = {"light": ()}


def key(source: str, options: SynthOptions, *extra: object) -> str:
    def fields(obj: object) -> object:
        if not hasattr(obj, "__dataclass_fields__"):
            return obj
        return {k: v for k, v in asdict(obj).items() if k not in _ADDED_DEFAULTS or v != _ADDED_DEFAULTS[k]}

    parts = [fields(options)] + [fields(e) for e in extra]
    text = json.dumps(parts if extra else parts[0], sort_keys=True)  # no extras: the keys of before
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{Path(source).stem}-{digest}"


def sample_frames(source: str) -> tuple[list[Frame], float]:
    return read_frames(sample_media.sample(source))


def tracked(source: str, options: SynthOptions) -> tuple[Prepared, list[TrackingResult], dict]:
    """(plan, tracking of the generated video, ground truth) for a bundled sample; cached."""
    from avatar_bridge.recording import load_recording

    src_results = load_recording(sample_media.sample_recording(source))
    frames, fps = sample_frames(source)
    prepared = prepare(src_results, options, frames)
    folder = cache_folder()
    base = folder / key(source, options)
    rec, truth_path = base.with_suffix(".npz"), base.with_suffix(".events.json")
    if rec.is_file() and truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        # ``frames`` of each item are filled while rendering; take them from the stored truth.
        return prepared, load_recording(rec), truth
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    with FaceTracker(TrackerOptions()) as tracker:
        results = [tracker.update(f) for f in stream(frames, prepared)]
    truth = truth_document(source, "", fps, frames, prepared)  # no video file: frames_of() remakes it
    _store(rec, truth_path, results, truth)
    return prepared, results, truth


def _store(rec: Path, truth_path: Path, results: list[TrackingResult], truth: dict) -> None:
    from avatar_bridge.recording import save_recording

    rec.parent.mkdir(parents=True, exist_ok=True)
    save_recording(rec, results)
    tmp = truth_path.with_name(truth_path.name + ".part")
    tmp.write_text(json.dumps(truth))
    tmp.replace(truth_path)


def frames_of(source: str, prepared: Prepared) -> Iterator[Frame]:
    """The generated video's frames again (deterministic), one by one (``prepared``: from ``tracked``)."""
    frames, _ = sample_frames(source)
    for item in prepared.items:
        item.frames.clear()
    return stream(frames, prepared)


def _still_source(source: str, index: int, seconds: float) -> tuple[list[Frame], list[TrackingResult], float]:
    from avatar_bridge.recording import load_recording

    frames, fps = sample_frames(source)
    results = load_recording(sample_media.sample_recording(source))
    still, still_results = held_still(frames, results, index, seconds, fps)
    return still, still_results, fps


def tracked_still(source: str, index: int, seconds: float, options: SynthOptions,
                  camera: CameraOptions) -> tuple[Prepared, list[TrackingResult], dict]:  # fmt: skip
    """Like :func:`tracked` for a held-still recording: frame ``index`` of a bundled sample held for
    ``seconds``, events injected, filmed by ``camera`` (:mod:`still`); tracking cached."""
    from avatar_bridge.recording import load_recording

    still, still_results, fps = _still_source(source, index, seconds)
    prepared = prepare(still_results, options)  # a still face: calm everywhere, no flow needed to plan
    base = cache_folder() / key(source, options, "still", index, seconds, camera)
    rec, truth_path = base.with_suffix(".npz"), base.with_suffix(".events.json")
    if rec.is_file() and truth_path.is_file():
        return prepared, load_recording(rec), json.loads(truth_path.read_text())
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    with FaceTracker(TrackerOptions()) as tracker:
        results = [tracker.update(f) for f in filmed(still, prepared, camera)]
    truth = truth_document(source, "", fps, still, prepared)
    truth["still"] = {"frame": index, "seconds": seconds, "camera": asdict(camera)}
    _store(rec, truth_path, results, truth)
    return prepared, results, truth


def still_frames_of(source: str, index: int, seconds: float, prepared: Prepared,
                    camera: CameraOptions) -> Iterator[Frame]:  # fmt: skip
    """The held-still recording's frames again (deterministic), one by one."""
    still, _, _ = _still_source(source, index, seconds)
    return filmed(still, prepared, camera)
