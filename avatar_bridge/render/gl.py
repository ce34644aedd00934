"""Headless OpenGL rasterisation through moderngl and EGL (Mesa's llvmpipe on machines with no GPU).

Optional: needs ``pip install moderngl`` and an EGL library (Debian: ``libegl1 libgl1-mesa-dri``).
It draws the same Gouraud-coloured triangles as :mod:`avatar_bridge.render.raster`, so the two
are interchangeable; :func:`gl_available` says whether this machine can create a context.
"""

from __future__ import annotations

import numpy as np

from avatar_bridge.errors import BackendUnavailableError

_VERTEX = """
#version 330
in vec3 in_pos;   // pixel x, pixel y (down), depth
in vec3 in_color;
uniform vec2 size;
uniform vec2 depth_range;
out vec3 v_color;
void main() {
    float z = (in_pos.z - depth_range.x) / (depth_range.y - depth_range.x) * 2.0 - 1.0;
    gl_Position = vec4(in_pos.x / size.x * 2.0 - 1.0, 1.0 - in_pos.y / size.y * 2.0, z, 1.0);
    v_color = in_color;
}
"""
_FRAGMENT = """
#version 330
in vec3 v_color;
out vec4 f_color;
void main() { f_color = vec4(v_color, 1.0); }
"""


def gl_available() -> str | None:
    """None when a headless context can be made here, else the reason it cannot."""
    try:
        ctx = _make_context()
    except BackendUnavailableError as e:
        return str(e)
    ctx.release()
    return None


def _make_context():
    try:
        import moderngl
    except ImportError as e:
        raise BackendUnavailableError("the OpenGL renderer needs moderngl: pip install moderngl") from e
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as e:  # moderngl raises plain Exception when EGL is missing
        raise BackendUnavailableError(
            f"no headless OpenGL (EGL) context: {e}; "
            "on Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri"
        ) from e


class GLRasterizer:
    """Owns one EGL context and framebuffer of ``width`` x ``height``; ``close()`` releases them."""

    def __init__(self, width: int, height: int, faces: np.ndarray) -> None:
        self.width, self.height = width, height
        self.ctx = _make_context()
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.prog["size"].value = (float(width), float(height))
        self.fbo = self.ctx.simple_framebuffer((width, height), components=4)
        self.ibo = self.ctx.buffer(np.ascontiguousarray(faces, np.int32).tobytes())
        self.vbo = None
        self.vao = None
        self.n_vertices = -1

    def draw(
        self, screen: np.ndarray, colors: np.ndarray, cull_backfaces: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Same contract as :func:`avatar_bridge.render.raster.rasterize`."""
        data = np.ascontiguousarray(np.concatenate([screen, colors], axis=1), np.float32)
        if self.n_vertices != len(screen):
            if self.vbo is not None:
                self.vao.release()
                self.vbo.release()
            self.vbo = self.ctx.buffer(reserve=data.nbytes, dynamic=True)
            self.vao = self.ctx.vertex_array(
                self.prog,
                [(self.vbo, "3f 3f", "in_pos", "in_color")],
                index_buffer=self.ibo,
                index_element_size=4,
            )
            self.n_vertices = len(screen)
        self.vbo.write(data.tobytes())
        near = float(max(screen[:, 2].min() - 1.0, 1e-3))
        far = float(screen[:, 2].max() + 1.0)
        self.prog["depth_range"].value = (near, far)
        import moderngl

        self.fbo.use()
        self.ctx.enable(moderngl.DEPTH_TEST)
        if cull_backfaces:  # our front faces are counter-clockwise once y points up, GL's default
            self.ctx.enable(moderngl.CULL_FACE)
        else:
            self.ctx.disable(moderngl.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.vao.render(moderngl.TRIANGLES)
        raw = np.frombuffer(self.fbo.read(components=4, dtype="f1"), np.uint8).reshape(
            self.height, self.width, 4
        )
        raw = raw[::-1]  # OpenGL rows start at the bottom
        return raw[:, :, :3].astype(np.float32) / 255.0, raw[:, :, 3] > 0

    def close(self) -> None:
        self.ctx.release()
