"""Tracking: MediaPipe FaceLandmarker turned into :class:`TrackingResult` records.

The only module that imports mediapipe. Conversion from MediaPipe's own types (lists of
landmark and category objects) to NumPy arrays in ARKit order happens here, once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from operator import attrgetter
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES, mediapipe_to_arkit_index
from avatar_bridge.errors import BackendUnavailableError, InputError, ModelError
from avatar_bridge.records import FaceObservation, Frame, HeadPose, TrackingResult
from avatar_bridge.resources import FACE_LANDMARKER, MODEL_SHA256, resolve_model

log = logging.getLogger(__name__)
_XYZ = attrgetter("x", "y", "z")


@dataclass(frozen=True, slots=True)
class Detection:
    """MediaPipe's raw result for one frame, before :meth:`FaceTracker.convert`."""

    frame: Frame
    result: object


class TrackerMode(StrEnum):
    """IMAGE: every frame on its own (photos). VIDEO: frames of one stream with increasing
    timestamps; MediaPipe tracks between frames, which is faster and steadier. Cameras use VIDEO
    mode too, fed with the newest frame by the pipeline, which keeps latency bounded."""

    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """FaceLandmarker settings.

    model_path: explicit model file (None = ``$AVATAR_BRIDGE_MODEL_DIR`` or the packaged file).
    num_faces: most faces to track. The three confidences are MediaPipe's (0.5 each by default).
    match_distance: how far (fraction of the image width) a face centre may move between frames
    and still keep its face_id. quiet_native_logs: hide the C++ start-up chatter MediaPipe
    prints on stderr while the model loads and runs its first frame (errors still raise).
    """

    model_path: str | os.PathLike[str] | None = None
    mode: TrackerMode = TrackerMode.VIDEO
    num_faces: int = 1
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    match_distance: float = 0.25
    quiet_native_logs: bool = True

    def __post_init__(self) -> None:
        if self.num_faces < 1:
            raise InputError(f"num_faces must be 1 or more, got {self.num_faces}")
        for name in (
            "min_face_detection_confidence",
            "min_face_presence_confidence",
            "min_tracking_confidence",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be within 0..1, got {value}")


@contextlib.contextmanager
def _native_stderr_silenced(enabled: bool) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null: MediaPipe's C++ logging ignores GLOG_* settings."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass(slots=True)
class _FaceIds:
    """Keeps a face_id per person: nearest previous centre wins, newcomers take the lowest free id."""

    match_distance: float
    centres: dict[int, np.ndarray] = field(default_factory=dict)

    def assign(self, centres: list[np.ndarray]) -> list[int]:
        pairs = sorted(
            (float(np.linalg.norm(c - prev)), i, fid)
            for i, c in enumerate(centres)
            for fid, prev in self.centres.items()
        )
        ids: list[int | None] = [None] * len(centres)
        taken: set[int] = set()
        for dist, i, fid in pairs:
            if dist > self.match_distance or ids[i] is not None or fid in taken:
                continue
            ids[i] = fid
            taken.add(fid)
        for i in range(len(centres)):
            if ids[i] is None:
                fid = next(k for k in range(len(centres) + len(taken) + 1) if k not in taken)
                ids[i] = fid
                taken.add(fid)
        # A face that leaves frees its id; the next newcomer takes the lowest free one.
        self.centres = {fid: centres[i] for i, fid in enumerate(ids)}  # type: ignore[misc]
        return ids  # type: ignore[return-value]

    def reset(self) -> None:
        self.centres.clear()


class FaceTracker:
    """478 landmarks, 52 blendshapes (ARKit order) and head pose per face and frame.

    >>> with FaceTracker(TrackerOptions()) as tracker:  # doctest: +SKIP
    ...     result = tracker.update(frame)
    ...     result.faces[0].blendshape("jawOpen")
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = opts = options or TrackerOptions()
        self.model_path: Path = resolve_model(FACE_LANDMARKER, opts.model_path)
        #: What ``resolve_model`` checked the file against (recorded by exports; no second hash).
        self.model_sha256: str = MODEL_SHA256[FACE_LANDMARKER]
        try:
            from mediapipe import Image, ImageFormat
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as e:  # pragma: no cover - mediapipe is a hard dependency
            raise BackendUnavailableError(
                f"mediapipe is not importable ({e}); pip install mediapipe==1.2.2"
            ) from e
        self._image_cls, self._srgb = Image, ImageFormat.SRGB
        mode = vision.RunningMode.VIDEO if opts.mode is TrackerMode.VIDEO else vision.RunningMode.IMAGE
        mp_options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=mode,
            num_faces=opts.num_faces,
            min_face_detection_confidence=opts.min_face_detection_confidence,
            min_face_presence_confidence=opts.min_face_presence_confidence,
            min_tracking_confidence=opts.min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with _native_stderr_silenced(opts.quiet_native_logs):
                self._landmarker = vision.FaceLandmarker.create_from_options(mp_options)
        except Exception as e:  # MediaPipe raises RuntimeError/ValueError with long C++ messages
            raise ModelError(f"MediaPipe could not load {self.model_path}: {str(e).splitlines()[0]}") from e
        self._arkit_from_mp = mediapipe_to_arkit_index()
        self._tracked = self._arkit_from_mp >= 0
        self._ids = _FaceIds(opts.match_distance)
        self._last_ms = -1
        self._closed = False
        self._first = True

    def update(self, frame: Frame) -> TrackingResult:
        """Track the faces of ``frame``; timestamps must increase in VIDEO mode."""
        return self.convert(self.detect(frame))

    def detect(self, frame: Frame) -> Detection:
        """MediaPipe's part of :meth:`update`, the heavy one (it releases the GIL).

        A pipeline can run it on a tracking thread and :meth:`convert` the detections, in order,
        on another, so that the Python-side conversion stays off the tracking thread.
        """
        if self._closed:
            raise InputError("FaceTracker.update called after close()")
        image = self._image_cls(image_format=self._srgb, data=np.ascontiguousarray(frame.image))
        if self.options.mode is TrackerMode.VIDEO:
            ts_ms = int(round(frame.timestamp * 1000.0))
            if ts_ms <= self._last_ms:
                if frame.timestamp * 1000.0 < self._last_ms - 1:
                    raise InputError(
                        f"frame {frame.index}: timestamp {frame.timestamp:.4f} s goes backwards "
                        f"(previous {self._last_ms / 1000:.4f} s); VIDEO mode needs increasing timestamps"
                    )
                ts_ms = self._last_ms + 1  # sub-millisecond spacing (>1000 fps) or a repeated stamp
            self._last_ms = ts_ms
            with _native_stderr_silenced(self._first and self.options.quiet_native_logs):
                result = self._landmarker.detect_for_video(image, ts_ms)
        else:
            with _native_stderr_silenced(self._first and self.options.quiet_native_logs):
                result = self._landmarker.detect(image)
        self._first = False
        return Detection(frame, result)

    def convert(self, detection: Detection) -> TrackingResult:
        """MediaPipe's result as a :class:`TrackingResult` with stable face ids; call in frame order."""
        frame, result = detection.frame, detection.result
        size = frame.size
        raw = []
        for i, lms in enumerate(result.face_landmarks):  # type: ignore[attr-defined]
            flat = chain.from_iterable(map(_XYZ, lms))
            landmarks = np.fromiter(flat, np.float32, 3 * len(lms)).reshape(-1, 3)
            scores = np.array([c.score for c in result.face_blendshapes[i]], dtype=np.float32)  # type: ignore[attr-defined]
            blend = np.full(len(ARKIT_NAMES), np.nan, dtype=np.float32)
            blend[self._tracked] = scores[self._arkit_from_mp[self._tracked]]
            matrices = result.facial_transformation_matrixes  # type: ignore[attr-defined]
            matrix = (
                np.asarray(matrices[i], dtype=np.float32)
                if i < len(matrices)
                else np.eye(4, dtype=np.float32)
            )
            raw.append((landmarks, blend, matrix))
        ids = self._ids.assign([lm[:, :2].mean(axis=0) for lm, _, _ in raw])
        faces = tuple(
            sorted(
                (
                    FaceObservation(fid, lm, bs, HeadPose(m), size, 1.0)
                    for fid, (lm, bs, m) in zip(ids, raw, strict=True)
                ),
                key=lambda f: f.face_id,
            )
        )
        return TrackingResult(frame.index, frame.timestamp, size, faces)

    def reset(self) -> None:
        """Forget face identities (a new stream); MediaPipe's own state needs a new tracker."""
        self._ids.reset()

    def close(self) -> None:
        if not self._closed:
            self._landmarker.close()
            self._closed = True

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
