"""Render a blendshape avatar offscreen on the CPU: pose, Gouraud shading, background, debug view.

The default rasteriser is NumPy (:mod:`avatar_bridge.render.raster`): measured in
``benchmarks/bench_render.py``, it meets the frame-rate goals on a 2-core machine with no extra
dependency; ``backend="gl"`` uses headless OpenGL (moderngl + EGL) when installed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.records import Frame, HeadPose, RigWeights
from avatar_bridge.render import geometry, raster
from avatar_bridge.render.avatar import Avatar

CHROMA_GREEN = (0, 255, 0)
log = logging.getLogger(__name__)

BACKENDS = ("numpy", "gl", "auto")


@dataclass(frozen=True)
class RenderOptions:
    """How the avatar is drawn; every default is what ``vcam://`` uses when the URL says nothing."""

    width: int = 640
    height: int = 480
    background: str = "green"  # 'green' (chroma key for OBS), '#rrggbb' or an image path
    # 'auto' (default): headless OpenGL when a context can be made, else NumPy; measured in
    # benchmarks/bench_render.py, GL is about twice as fast on the ICT head. 'numpy' or 'gl' force one.
    backend: str = "auto"
    mirror: bool = False  # True: the avatar moves like the user's reflection
    pose_strength: float = 1.0  # scales the tracked head rotation angle (0 = always frontal)
    light_dir: tuple[float, float, float] = (0.3, 0.5, 1.0)  # towards the light, camera space
    ambient: float = 0.35  # share of light that reaches surfaces facing away
    fill: float = 0.8  # share of the shorter image side the framed part of the avatar fills
    fov_deg: float = 30.0  # vertical field of view of the virtual camera
    debug_view: bool = False  # left half: camera image + landmarks; right half: the avatar
    cull_backfaces: bool = True  # skip triangles facing away (halves the work on closed heads)

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ConfigError(f"render size must be at least 16x16, got {self.width}x{self.height}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"render backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")


def parse_background(spec: str, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 background from 'green', '#rrggbb' or an image file path."""
    s = spec.strip()
    if s.lower() == "green":
        color = CHROMA_GREEN
    elif s.startswith("#") and len(s) == 7:
        try:
            color = tuple(int(s[i : i + 2], 16) for i in (1, 3, 5))
        except ValueError as e:
            raise ConfigError(f"background colour must be #rrggbb, got {spec!r}") from e
    else:
        import cv2

        path = Path(s).expanduser()
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is None:
            raise InputError(f"background must be 'green', '#rrggbb' or a readable image file, got {spec!r}")
        return np.ascontiguousarray(
            cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)[:, :, ::-1]
        )
    return np.broadcast_to(np.asarray(color, np.uint8), (height, width, 3)).copy()


class Renderer:
    """Draws one avatar; ``render(...)`` returns an RGB uint8 image of ``options`` size.

    >>> r = Renderer(load_avatar("default"))  # doctest: +SKIP
    >>> image = r.render({"jawOpen": 0.8}, HeadPose.identity())  # doctest: +SKIP
    """

    def __init__(self, avatar: Avatar, options: RenderOptions | None = None) -> None:
        self.avatar = avatar
        self.options = options or RenderOptions()
        o = self.options
        self.panel_width = o.width // 2 if o.debug_view else o.width
        self.background = parse_background(o.background, o.width, o.height)
        framed = avatar.neutral if avatar.frame_vertices is None else avatar.neutral[avatar.frame_vertices]
        self.center = 0.5 * (framed.min(axis=0) + framed.max(axis=0))
        radius = float(np.linalg.norm(framed - self.center, axis=1).max())
        self.camera = geometry.fit_camera(radius, self.panel_width, o.height, o.fill, o.fov_deg)
        self.base_colors = avatar.vertex_colors()
        self.faces = np.ascontiguousarray(avatar.faces, np.int64)
        self._gl = None
        self.backend = self._choose_backend(o.backend)

    def _choose_backend(self, wanted: str) -> str:
        if wanted == "numpy":
            return "numpy"
        from avatar_bridge.render.gl import GLRasterizer

        try:
            self._gl = GLRasterizer(self.panel_width, self.options.height, self.faces)
        except Exception as e:  # no EGL / moderngl here: 'auto' falls back, and says why
            if wanted == "gl":
                raise
            log.info("OpenGL renderer unavailable (%s); using the NumPy rasteriser", e)
            return "numpy"
        return "gl"

    def posed_vertices(
        self, weights: RigWeights | Mapping[str, float] | np.ndarray | None, pose: HeadPose | None
    ) -> np.ndarray:
        """(V, 3) camera-space vertices: targets blended, centred, rotated by the head pose."""
        if weights is None:
            w = np.zeros(len(self.avatar.target_names), np.float32)
        elif isinstance(weights, np.ndarray):
            w = weights.astype(np.float32)
        else:
            w = self.avatar.weight_vector(weights)
        v = geometry.blend(self.avatar.neutral, self.avatar.deltas, w)
        v = v - self.center
        if pose is not None:
            rot = geometry.pose_rotation(pose.rotation, self.options.mirror, self.options.pose_strength)
            v = v @ rot.T
        return v

    def render(
        self,
        weights: RigWeights | Mapping[str, float] | np.ndarray | None = None,
        pose: HeadPose | None = None,
        frame: Frame | None = None,
        landmarks: np.ndarray | None = None,
    ) -> np.ndarray:
        """The avatar for ``weights`` (names in the avatar's own profile) and ``pose``.

        ``pose`` None is frontal. ``frame`` and ``landmarks`` ((N, 2+) normalised image
        coordinates) feed the debug view's left half when it is on.
        """
        o = self.options
        if pose is None and isinstance(weights, RigWeights):
            pose = weights.pose
        v = self.posed_vertices(weights, pose)
        normals = geometry.vertex_normals(v, self.faces)
        colors = geometry.lambert(normals, self.base_colors, np.asarray(o.light_dir), o.ambient)
        screen = self.camera.project(v)
        if self._gl is not None:
            rgb, covered = self._gl.draw(screen, colors, o.cull_backfaces)
        else:
            rgb, covered = raster.rasterize(
                screen, self.faces, colors, self.panel_width, o.height, cull_backfaces=o.cull_backfaces
            )
        out = self.background.copy()
        x0 = o.width - self.panel_width
        panel = out[:, x0:]
        panel[covered] = (rgb[covered] * 255.0 + 0.5).astype(np.uint8)
        if o.debug_view:
            out[:, :x0] = debug_panel(frame, landmarks, x0, o.height)
        return out

    def close(self) -> None:
        if self._gl is not None:
            self._gl.close()
            self._gl = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def debug_panel(frame: Frame | None, landmarks: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """The camera image letterboxed into ``width`` x ``height`` with landmarks drawn as dots."""
    import cv2

    panel = np.full((height, width, 3), 32, np.uint8)
    if frame is None:
        return panel
    ih, iw = frame.image.shape[:2]
    scale = min(width / iw, height / ih)
    sw, sh = max(1, int(iw * scale)), max(1, int(ih * scale))
    ox, oy = (width - sw) // 2, (height - sh) // 2
    panel[oy : oy + sh, ox : ox + sw] = cv2.resize(frame.image, (sw, sh), interpolation=cv2.INTER_AREA)
    if landmarks is not None and len(landmarks):
        px = np.clip((landmarks[:, 0] * sw + ox).astype(int), 0, width - 1)
        py = np.clip((landmarks[:, 1] * sh + oy).astype(int), 0, height - 1)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            panel[np.clip(py + dy, 0, height - 1), np.clip(px + dx, 0, width - 1)] = (255, 64, 64)
    return panel
