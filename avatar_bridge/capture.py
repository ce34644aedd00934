"""Capture: video files, cameras and image folders as iterators of :class:`Frame`.

Each frame carries its index and its timestamp from the source: container timestamps for files
(so variable frame rates need nothing special), a monotonic clock for cameras, index / fps for
image folders. Frames are converted from OpenCV's BGR to RGB once, here.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.records import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
_DIGITS = re.compile(r"(\d+)")


def image_files(folder: Path) -> list[Path]:
    """The images of ``folder`` in frame order: digit runs compare as numbers, so ``img2.jpg``
    comes before ``img10.jpg`` (dataset releases and ffmpeg's ``%d`` do not pad)."""
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(images, key=lambda p: [int(t) if t.isdigit() else t.lower() for t in _DIGITS.split(p.name)])


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """How frames are read.

    start, end: source seconds to keep (end None = to the end). stride: keep every n-th frame.
    max_size: frames whose longest side exceeds this many pixels are downscaled (None = never);
    landmarks are normalised, so results do not depend on it, only speed does.
    width, height, fps: what to ask a camera for (None = the device's default); the device may
    give something else, reported in :attr:`SourceInfo`.
    """

    start: float = 0.0
    end: float | None = None
    stride: int = 1
    max_size: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise InputError(f"stride must be 1 or more, got {self.stride}")
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise InputError(f"need 0 <= start < end, got start={self.start} end={self.end}")
        if self.max_size is not None and self.max_size < 32:
            raise InputError(f"max_size must be at least 32 pixels, got {self.max_size}")


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source really is: its kind, name, frame size, nominal fps and frame count (if known)."""

    kind: str  # 'video', 'camera' or 'images'
    name: str
    width: int
    height: int
    fps: float
    frame_count: int | None
    live: bool = False


def nominal_span(info: SourceInfo, options: CaptureOptions) -> tuple[float, float] | None:
    """First and last timestamp that ``options`` keep of a file read at its nominal rate, or None
    (a camera, an unknown frame count, fewer than two frames kept).

    Lets a plot lay out its time axis before any frame is read. The rule is the sources' own
    (``start <= t < end``, then every ``stride``-th frame); real container timestamps may differ,
    so whoever uses the span checks it against the frames read.
    """
    if info.live or not info.frame_count or info.fps <= 0:
        return None
    first = math.ceil(options.start * info.fps - 1e-6)
    stop = info.frame_count
    if options.end is not None:
        stop = min(stop, math.ceil(options.end * info.fps - 1e-6))
    last = first + max(0, stop - 1 - first) // options.stride * options.stride
    return (first / info.fps, last / info.fps) if last > first else None


def _downscale(image: np.ndarray, max_size: int | None) -> np.ndarray:
    if max_size is None:
        return image
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_size:
        return image
    scale = max_size / longest
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _to_rgb(bgr: np.ndarray, max_size: int | None) -> np.ndarray:
    return cv2.cvtColor(_downscale(bgr, max_size), cv2.COLOR_BGR2RGB)


class VideoFileSource:
    """Frames of a video file with its container timestamps.

    >>> with VideoFileSource("face.mp4") as src:  # doctest: +SKIP
    ...     for frame in src:
    ...         print(frame.index, frame.timestamp)
    """

    def __init__(self, path: str | Path, options: CaptureOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or CaptureOptions()
        if not self.path.exists():
            raise InputError(f"video not found: {self.path}")
        if self.path.is_dir():
            raise InputError(
                f"{self.path} is a folder; pass a video file (folders of images are read as images)"
            )
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError(f"cannot open {self.path} as a video (not a video, or a codec OpenCV lacks)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            self._cap.release()
            raise InputError(f"{self.path} has no video stream")
        self.info = SourceInfo("video", self.path.name, width, height, fps if fps > 0 else 30.0,
                               count if count > 0 else None)  # fmt: skip
        self.frames_read = 0
        self.decode_failed = False

    def __iter__(self) -> Iterator[Frame]:
        opts, cap = self.options, self._cap
        fps = self.info.fps
        raw_index = -1
        last_ts = -1.0
        kept = 0
        while True:
            if not cap.grab():
                # Container frame counts are estimates: only a clear shortfall means a broken file.
                expected = self.info.frame_count
                shortfall = (expected or 0) - (raw_index + 1)
                if expected is not None and opts.end is None and shortfall > max(3, 0.02 * expected):
                    self.decode_failed = True
                    log.info("%s: decoding stopped at frame %d of %d (truncated or corrupt file)",
                                self.path.name, raw_index + 1, expected)  # fmt: skip
                break
            raw_index += 1
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not np.isfinite(ts) or ts <= last_ts:  # containers without usable timestamps
                ts = max(raw_index / fps, last_ts + 1e-6)
            last_ts = ts
            if ts < opts.start:
                continue
            if opts.end is not None and ts >= opts.end:
                break
            if kept % opts.stride:
                kept += 1
                continue
            kept += 1
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                self.decode_failed = True
                log.info("%s: frame %d could not be decoded; stopping", self.path.name, raw_index)
                break
            self.frames_read += 1
            yield Frame(raw_index, ts, _to_rgb(bgr, opts.max_size))
        if self.frames_read == 0:
            raise InputError(
                f"no frame could be decoded from {self.path}"
                + (" in the chosen time range" if opts.start or opts.end else "")
            )

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CameraSource:
    """Frames from a camera, stamped with a monotonic clock (seconds since the first frame)."""

    def __init__(self, index: int, options: CaptureOptions | None = None) -> None:
        self.options = opts = options or CaptureOptions()
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError(f"camera {index} does not exist or cannot be opened")
        if opts.width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, opts.width)
        if opts.height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, opts.height)
        if opts.fps:
            self._cap.set(cv2.CAP_PROP_FPS, opts.fps)
        self.info = SourceInfo("camera", f"camera {index}", int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                               int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                               float(self._cap.get(cv2.CAP_PROP_FPS) or 30.0), None, live=True)  # fmt: skip
        self.frames_read = 0
        self.decode_failed = False

    def __iter__(self) -> Iterator[Frame]:
        t0: float | None = None
        index = -1
        while True:
            ok, bgr = self._cap.read()
            now = time.monotonic()
            if not ok:
                break
            t0 = now if t0 is None else t0
            index += 1
            if index % self.options.stride:
                continue
            self.frames_read += 1
            yield Frame(index, now - t0, _to_rgb(bgr, self.options.max_size))

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageFolderSource:
    """Images of a folder in frame order (:func:`image_files`), at a nominal ``fps`` (timestamps are
    index / fps)."""

    def __init__(self, folder: str | Path, options: CaptureOptions | None = None) -> None:
        self.folder = Path(folder)
        self.options = options or CaptureOptions()
        if not self.folder.is_dir():
            raise InputError(f"image folder not found: {self.folder}")
        self.paths = image_files(self.folder)
        if not self.paths:
            raise InputError(f"{self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        first = cv2.imread(str(self.paths[0]))
        if first is None:
            raise InputError(f"cannot read image {self.paths[0]}")
        fps = self.options.fps or 30.0
        self.info = SourceInfo(
            "images", self.folder.name, first.shape[1], first.shape[0], fps, len(self.paths)
        )
        self.frames_read = 0
        self.decode_failed = False

    def __iter__(self) -> Iterator[Frame]:
        opts = self.options
        for i, path in enumerate(self.paths):
            ts = i / self.info.fps
            if ts < opts.start or (i % opts.stride):
                continue
            if opts.end is not None and ts >= opts.end:
                break
            bgr = cv2.imread(str(path))
            if bgr is None:
                log.warning("skipping unreadable image %s", path.name)
                continue
            self.frames_read += 1
            yield Frame(i, ts, _to_rgb(bgr, opts.max_size))

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageFolderSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Source = VideoFileSource | CameraSource | ImageFolderSource


def open_source(spec: str | int | Path, options: CaptureOptions | None = None) -> Source:
    """Open a camera (an integer or a digit string), an image folder or a video file."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec), options)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, options)
    return VideoFileSource(path, options)
