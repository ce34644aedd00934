"""Virtual camera and preview sinks: render the avatar and send it to OBS, Zoom, a browser, or a file.

``vcam://?backend=v4l2loopback|obs|unitycapture&size=WxH&fps=N&avatar=default|ict|PATH
&background=green|#rrggbb|IMAGE&debug=1&mirror=1&device=NAME`` sends frames to pyvirtualcam, paced
to the camera's rate. ``preview:///abs/path/out.mp4?size=...&fps=...`` writes the same rendered
stream to a video file (no device needed). Both receive :class:`RigWeights` already in the
avatar's own profile (``sink.profile``), and hold the last pose when a frame carries no weights.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from avatar_bridge.errors import BackendUnavailableError, ConfigError, SinkError
from avatar_bridge.export.video import AtomicVideoWriter
from avatar_bridge.records import FrameOutput, HeadPose, RigWeights

VCAM_BACKENDS = ("v4l2loopback", "obs", "unitycapture")


@dataclass(frozen=True)
class VCamOptions:
    """Options of both sinks; URL query keys have the same names."""

    size: tuple[int, int] = (640, 480)  # (width, height)
    fps: float = 30.0
    backend: str | None = None  # None: pyvirtualcam tries every backend of this OS
    device: str | None = None  # e.g. /dev/video2, 'OBS Virtual Camera'
    avatar: str = "default"  # default, ict or an avatar file
    background: str = "green"  # green (chroma key), #rrggbb or an image file
    debug: bool = False  # side-by-side: camera image + landmarks | avatar
    mirror: bool = False  # avatar moves like the user's reflection
    render_backend: str = "auto"  # auto, numpy or gl (see avatar_bridge.render)
    pace: bool = True  # sleep so frames reach the camera at ``fps`` (vcam only)
    path: str | None = None  # output video (preview only)


def _parse_size(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple | list) and len(value) == 2:
        w, h = value
    else:
        try:
            w, h = (int(p) for p in str(value).lower().split("x"))
        except ValueError as e:
            raise ConfigError(f"size must look like 1280x720, got {value!r}") from e
    if int(w) < 16 or int(h) < 16 or int(w) % 2 or int(h) % 2:
        raise ConfigError(f"size must be even and at least 16x16, got {w}x{h}")
    return int(w), int(h)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"expected a yes/no value, got {value!r}")


def parse_options(url: str, schemes: tuple[str, ...], **defaults: Any) -> VCamOptions:
    """Options from ``defaults`` overridden by the URL's query (and path, for preview)."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigError(f"expected a {' or '.join(s + '://' for s in schemes)} URL, got {url!r}")
    values: dict[str, Any] = {k: v for k, v in defaults.items() if v is not None}
    values.update(parse_qsl(parts.query))
    path = unquote(parts.netloc + parts.path)
    if path:
        values["path"] = path
    known = {f.name for f in fields(VCamOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown {parts.scheme}:// option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    opts: dict[str, Any] = {}
    for key, value in values.items():
        if key == "size":
            opts[key] = _parse_size(value)
        elif key == "fps":
            try:
                opts[key] = float(value)
            except ValueError as e:
                raise ConfigError(f"fps must be a number, got {value!r}") from e
            if not 0 < opts[key] <= 240:
                raise ConfigError(f"fps must be in (0, 240], got {value!r}")
        elif key in ("debug", "mirror", "pace"):
            opts[key] = _parse_bool(value)
        else:
            opts[key] = str(value)
    return replace(VCamOptions(), **opts)


def missing_device_message(system: str | None = None) -> str:
    """One line saying what this OS needs for a virtual camera."""
    system = system or platform.system()
    if system == "Linux":
        need = (
            "load the v4l2loopback kernel module "
            "(sudo modprobe v4l2loopback devices=1; Debian/Ubuntu package v4l2loopback-dkms)"
        )
    elif system == "Darwin":
        need = "install OBS Studio 30+ and start its Virtual Camera once (Start Virtual Camera), then retry"
    elif system == "Windows":
        need = "install OBS Studio (28+) and start its Virtual Camera once, or install Unity Capture"
    else:
        need = f"pyvirtualcam has no virtual camera backend for {system}"
    return f"no virtual camera device found: {need}; or write the stream to a file with --preview out.mp4"


class _AvatarStream:
    """Shared by both sinks: one renderer, the last weights and pose held while no face is found."""

    def __init__(self, options: VCamOptions) -> None:
        from avatar_bridge.render import Renderer, RenderOptions, load_avatar

        self.options = options
        self.avatar = load_avatar(options.avatar)
        w, h = options.size
        ro = RenderOptions(
            width=w, height=h, background=options.background, backend=options.render_backend,
            mirror=options.mirror, debug_view=options.debug,
        )  # fmt: skip
        self.renderer = Renderer(self.avatar, ro)
        self.last_weights: RigWeights | None = None
        self.last_pose: HeadPose | None = None

    def image(self, out: FrameOutput) -> np.ndarray:
        # The retargeter eases a lost face to rest; with no weights at all, hold the last ones.
        found = out.weights[0] if out.weights else None
        if found is not None:
            self.last_weights, self.last_pose = found, found.pose
        face = next((f for f in out.faces if found is None or f.face_id == found.face_id), None)
        return self.renderer.render(
            self.last_weights,
            self.last_pose,
            frame=out.frame,
            landmarks=None if face is None else face.landmarks,
        )

    def close(self) -> None:
        self.renderer.close()


class _RenderedSink:
    """What both rendered sinks share: URL options, the avatar's own profile, context management."""

    schemes: tuple[str, ...] = ()

    def __init__(self, url: str, **defaults: Any) -> None:
        self.url = self.name = url
        self.options = parse_options(url, self.schemes, **defaults)
        self._stream: _AvatarStream | None = None
        self.frames_sent = 0

    @classmethod
    def from_url(cls, url: str, **defaults: Any) -> Self:
        """What :func:`avatar_bridge.sinks.open_sink` calls; URL options win over ``defaults``."""
        return cls(url, **defaults)

    @property
    def profile(self) -> str:
        """The retargeting profile the avatar's targets are named in (e.g. arkit52, ict_facekit)."""
        if self._stream is not None:
            return self._stream.avatar.profile
        from avatar_bridge.render.assets import ICT_PROFILE

        return ICT_PROFILE if self.options.avatar == "ict" else _file_profile(self.options.avatar)

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VirtualCameraSink(_RenderedSink):
    """Sends the rendered avatar to a virtual camera through pyvirtualcam."""

    schemes = ("vcam",)

    def __init__(self, url: str = "vcam://", **defaults: Any) -> None:
        super().__init__(url, **defaults)
        self._camera = None

    def open(self) -> None:
        import pyvirtualcam
        from pyvirtualcam.camera import BACKENDS

        o = self.options
        if o.backend is not None and o.backend not in BACKENDS:
            available = ", ".join(BACKENDS) or "none"
            raise BackendUnavailableError(
                f"virtual camera backend {o.backend!r} is not available on {platform.system()} "
                f"(available: {available}); {missing_device_message()}"
            )
        self._stream = _AvatarStream(o)
        w, h = o.size
        try:
            self._camera = pyvirtualcam.Camera(
                w, h, o.fps, fmt=pyvirtualcam.PixelFormat.RGB, device=o.device, backend=o.backend
            )
        except RuntimeError as e:
            self._stream.close()
            self._stream = None
            detail = str(e).strip().replace("\n", "; ")
            raise BackendUnavailableError(f"{missing_device_message()} (pyvirtualcam: {detail})") from e

    def send(self, out: FrameOutput) -> None:
        if self._camera is None or self._stream is None:
            raise SinkError("VirtualCameraSink.send() before open()")
        self._camera.send(self._stream.image(out))
        self.frames_sent += 1
        if self.options.pace:
            self._camera.sleep_until_next_frame()

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class PreviewSink(_RenderedSink):
    """Writes the rendered avatar stream to a video file (what the virtual camera would show)."""

    schemes = ("preview",)

    def __init__(self, url: str, **defaults: Any) -> None:
        super().__init__(url, **defaults)
        if not self.options.path:
            raise ConfigError(f"preview needs a file path, e.g. preview:///tmp/out.mp4, got {url!r}")
        self.path = Path(self.options.path).expanduser()
        self._writer: AtomicVideoWriter | None = None

    def open(self) -> None:
        self._writer = AtomicVideoWriter(self.path, self.options.fps, self.options.size)
        self._stream = _AvatarStream(self.options)

    def send(self, out: FrameOutput) -> None:
        if self._writer is None or self._stream is None:
            raise SinkError("PreviewSink.send() before open()")
        self._writer.write(self._stream.image(out))
        self.frames_sent += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _file_profile(spec: str) -> str:
    """Profile of a default or file avatar without rendering anything (reads the .npz header only)."""
    if spec == "default":
        return "arkit52"
    if spec.endswith(".npz") and Path(spec).is_file():
        with np.load(spec, allow_pickle=False) as d:
            return str(d["profile"]) if "profile" in d else "arkit52"
    return "arkit52"
