"""Sender timestamps (seconds) to scene frames.

Keys go where the sender says a value happened, not where it arrived: frame =
``frame_start + (t - origin) * fps``. Whole frames by default (two samples that land on the same
frame keep the later one); sub-frame keys when asked. Pure Python, no bpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def scene_rate(fps: int, fps_base: float = 1.0) -> float:
    """Blender's frame rate: ``render.fps / render.fps_base`` (29.97 is 30000/1001 as 30 / 1.001)."""
    if fps <= 0 or not fps_base > 0:
        raise ValueError(f"frame rate must be positive, got fps={fps}, fps_base={fps_base}")
    return fps / fps_base


def time_to_frame(t: float, rate: float, frame_start: float, origin: float, subframes: bool = False) -> float:
    """Scene frame of sender time ``t``; rounded half-up to a whole frame unless ``subframes``."""
    f = frame_start + (t - origin) * rate
    return f if subframes else float(math.floor(f + 0.5))


def bake_times(
    times: Sequence[float],
    rate: float,
    frame_start: float,
    origin: float | None = None,
    subframes: bool = False,
) -> tuple[list[float], list[int]]:
    """(frames, sample indices) for keyframes at ``times``, sorted by frame.

    ``origin`` defaults to the first time. Samples that land on the same frame keep the last one
    received, so a sender faster than the scene never writes two keys on one frame.
    """
    if not times:
        return [], []
    origin = times[0] if origin is None else origin
    by_frame: dict[float, int] = {}
    for i, t in enumerate(times):
        by_frame[time_to_frame(t, rate, frame_start, origin, subframes)] = i
    frames = sorted(by_frame)
    return frames, [by_frame[f] for f in frames]
