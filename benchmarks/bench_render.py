"""Frames per second of the offscreen avatar renderer, on real tracked weights, on this machine.

Drives each avatar with the real MediaPipe recording of WolfgangLanger_Pexels.mp4 retargeted to
the avatar's own profile (weights and head pose), and times the whole render (blend, normals,
shading, rasterisation, background). Rasterisers compared in the same run: NumPy (the default),
headless OpenGL through moderngl + EGL (llvmpipe; when installed) and, as the naive reference,
a Python loop of ``cv2.fillConvexPoly`` calls in painter's order (flat shading).

    python benchmarks/bench_render.py [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge import sample_media
from avatar_bridge.recording import load_recording
from avatar_bridge.render import Renderer, RenderOptions, geometry, load_avatar
from avatar_bridge.retarget import Retargeter

GOALS = {"default": 30.0, "ict": 15.0}  # fps at 640x480 (issue 6)


def painter_render(r: Renderer, weights, pose) -> np.ndarray:
    """Naive reference: flat-shaded triangles drawn back to front, one OpenCV call each."""
    v = r.posed_vertices(weights, pose)
    n = geometry.vertex_normals(v, r.faces)
    colors = geometry.lambert(n, r.base_colors, np.asarray(r.options.light_dir), r.options.ambient)
    s = r.camera.project(v)
    tri = s[r.faces]
    area = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (tri[:, 2, 0] - tri[:, 0, 0]) * (
        tri[:, 1, 1] - tri[:, 0, 1]
    )
    keep = np.flatnonzero(area < 0)
    order = keep[np.argsort(-tri[keep, :, 2].mean(axis=1))]
    out = r.background.copy()
    face_color = (colors[r.faces].mean(axis=1) * 255).astype(np.uint8)
    pts = np.round(tri[:, :, :2]).astype(np.int32)
    for i in order:
        cv2.fillConvexPoly(out, pts[i], face_color[i].tolist())
    return out


def drive(avatar_name: str, recording, frames: int):
    avatar = load_avatar(avatar_name)
    rt = Retargeter(avatar.profile)
    out = []
    for res in recording[:frames]:
        w = rt.update(res.faces[0] if res.faces else None, None, res.timestamp, res.index)
        out.append(w)
    return avatar, out


def time_backend(avatar, weights, size, backend: str) -> dict:
    w, h = size
    options = RenderOptions(width=w, height=h, backend="numpy" if backend == "painter" else backend)
    with Renderer(avatar, options) as r:
        render = (lambda x: painter_render(r, x, x.pose)) if backend == "painter" else (lambda x: r.render(x))
        for x in weights[:5]:  # warm up
            render(x)
        times = []
        for x in weights:
            t = time.perf_counter()
            render(x)
            times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "fps": float(1000 / np.median(ms)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    args = ap.parse_args()
    from avatar_bridge.render.gl import gl_available

    gl_reason = gl_available()
    recording = load_recording(sample_media.sample_recording("WolfgangLanger_Pexels.mp4"))
    rows = []
    cases = [("default", (640, 480)), ("default", (1280, 720)), ("ict", (640, 480)), ("ict", (1280, 720))]
    for name, size in cases:
        try:
            avatar, weights = drive(name, recording, args.frames)
        except Exception as e:  # ICT data absent
            print(f"skip {name}: {e}")
            continue
        for backend in ("numpy", "gl", "painter"):
            if backend == "gl" and gl_reason is not None:
                continue
            m = time_backend(avatar, weights, size, backend)
            goal = GOALS.get(name) if size == (640, 480) else None
            rows.append({
                "avatar": name, "size": f"{size[0]}x{size[1]}", "backend": backend,
                "triangles": int(len(avatar.faces)), "frames": len(weights), **m,
                "goal_fps": goal, "meets_goal": None if goal is None else m["fps"] >= goal,
            })  # fmt: skip
    print(
        f"{'avatar':8} {'size':9} {'rasteriser':10} {'tris':>6} {'median ms':>10} {'p95 ms':>8} "
        f"{'fps':>7}  goal"
    )
    for r in rows:
        goal = (
            "" if r["goal_fps"] is None else f">={r['goal_fps']:.0f} {'ok' if r['meets_goal'] else 'MISSED'}"
        )
        print(
            f"{r['avatar']:8} {r['size']:9} {r['backend']:10} {r['triangles']:>6} {r['median_ms']:>10.1f} "
            f"{r['p95_ms']:>8.1f} {r['fps']:>7.1f}  {goal}"
        )
    result = {
        "benchmark": "bench_render",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "input": "WolfgangLanger_Pexels.mp4 recording, retargeted to each avatar's profile",
        "reference": "painter: per-triangle cv2.fillConvexPoly loop (flat); gl: moderngl, EGL, llvmpipe",
        "gl": gl_reason or "available",
        "rows": rows,
    }
    out = Path(__file__).resolve().parent / "results" / "bench_render.json"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
