"""Video files written atomically: frames go to a hidden temporary file renamed on close."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.errors import OutputError

#: File suffix -> OpenCV fourcc that this machine's OpenCV can write without extra codecs.
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class AtomicVideoWriter:
    """Write RGB frames to ``path``; the file appears under its name only after :meth:`close`.

    The frame size is taken from the first frame when ``size`` is None.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.parent.is_dir():
            raise OutputError(f"video folder does not exist: {self.path.parent}")
        self._fourcc = FOURCC.get(self.path.suffix.lower())
        if self._fourcc is None:
            raise OutputError(f"{self.path}: can write {', '.join(FOURCC)} videos only")
        if fps <= 0:
            raise OutputError(f"{self.path}: frame rate must be positive, got {fps}")
        self.fps, self.size = fps, size
        self._tmp = self.path.with_name(".part-" + self.path.name)
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0
        if size is not None:
            self._open(size)

    def _open(self, size: tuple[int, int]) -> None:
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self._fourcc), self.fps, size)
        if not self._writer.isOpened():
            raise OutputError(f"cannot write video {self.path} (OpenCV VideoWriter, {self._fourcc})")
        self.size = size

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if self._writer is None:
            self._open((w, h))
        if (w, h) != self.size:
            raise OutputError(f"{self.path}: frame size {w}x{h} differs from the video's {self.size}")
        self._writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))  # type: ignore[union-attr]
        self.frames += 1

    def close(self) -> None:
        """Finish the file and give it its name (a video with no frame is discarded)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if self.frames:
                self._tmp.replace(self.path)
        self._tmp.unlink(missing_ok=True)
