"""``record:///abs/path/take.mp4?fps=30``: the camera frames themselves, written to a video file.

Privacy by default: avatar-bridge never writes a camera frame to disk unless this sink (or
``avatar-bridge live --record-video PATH``) is asked for. The file appears only when the run ends.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from avatar_bridge.errors import ConfigError, SinkError
from avatar_bridge.export.video import AtomicVideoWriter
from avatar_bridge.records import FrameOutput


class RecordVideoSink:
    """Writes each frame's camera image (``FrameOutput.frame``) at a nominal ``fps`` (default 30)."""

    profile: str | None = None

    def __init__(self, url: str, fps: float = 30.0) -> None:
        parts = urlsplit(url)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigError(f"record needs a file path, e.g. record:///tmp/take.mp4, got {url!r}")
        params = dict(parse_qsl(parts.query))
        unknown = sorted(set(params) - {"fps"})
        if unknown:
            raise ConfigError(f"sink URL {url!r}: unknown parameter(s) {', '.join(unknown)}; known: fps")
        try:
            self.fps = float(params.get("fps", fps))
        except ValueError as e:
            raise ConfigError(f"sink URL {url!r}: fps must be a number, got {params['fps']!r}") from e
        self.url = self.name = url
        self.path = path
        self._writer: AtomicVideoWriter | None = None

    @classmethod
    def from_url(cls, url: str, **defaults: Any) -> RecordVideoSink:
        return cls(url, **{k: v for k, v in defaults.items() if k == "fps"})

    def open(self) -> None:
        self._writer = AtomicVideoWriter(self.path, self.fps)

    def send(self, out: FrameOutput) -> None:
        if self._writer is None:
            raise SinkError("RecordVideoSink.send() before open()")
        if out.frame is not None:
            self._writer.write(out.frame.image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
