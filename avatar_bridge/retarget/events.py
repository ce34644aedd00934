"""Replaying detected expression events on the avatar path (``Retargeter.play_event``).

An event (onset, apex, offset, AU peaks) arrives after its offset; replaying it overlays a
raised-cosine envelope with the event's own onset->apex and apex->offset durations on the source
channels its AUs drive (the AU itself and the ARKit shapes of ``mappings/au_to_arkit.toml``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX, AU_INTENSITY
from avatar_bridge.errors import ConfigError
from avatar_bridge.fileio import read_toml
from avatar_bridge.records import ExpressionEvent
from avatar_bridge.resources import data_dir
from avatar_bridge.retarget.profile import AU_SCALE, SOURCE_INDEX, SOURCE_NAMES


def event_envelope(t: float, rise: float, fall: float) -> float:
    """Raised-cosine envelope 0 -> 1 (at ``rise`` s) -> 0 (at ``rise + fall``); 0 outside."""
    if t < 0 or t > rise + fall:
        return 0.0
    if t <= rise:
        return 0.5 * (1.0 - math.cos(math.pi * t / rise)) if rise > 0 else 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (t - rise) / fall)) if fall > 0 else 0.0


@cache
def _au_arkit_table(path: Path) -> dict[str, tuple[int, ...]]:
    data = read_toml(path, "AU-to-ARKit mapping").get("au_to_arkit")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: needs an [au_to_arkit] table")
    table: dict[str, tuple[int, ...]] = {}
    for au, names in data.items():
        if au not in AU_INTENSITY:
            raise ConfigError(f"{path}: au_to_arkit.{au}: unknown AU")
        bad = [n for n in names if n not in ARKIT_INDEX]
        if bad:
            raise ConfigError(f"{path}: au_to_arkit.{au}: unknown ARKit name(s) {', '.join(bad)}")
        table[au] = tuple(ARKIT_INDEX[n] for n in names)
    return table


def au_arkit_table() -> dict[str, tuple[int, ...]]:
    """AU -> ARKit channel indices shown when an event is replayed (``mappings/au_to_arkit.toml``)."""
    return _au_arkit_table(data_dir("blendshapes") / "profiles" / "mappings" / "au_to_arkit.toml")


def event_overlay_amplitudes(event: ExpressionEvent, gain: float) -> np.ndarray:
    """Peak source values (SOURCE_NAMES order, NaN = not touched) an event drives when replayed."""
    amp = np.full(len(SOURCE_NAMES), np.nan)
    table = au_arkit_table()
    for au, peak in event.aus.items():
        au = au.removesuffix("_r")
        if au not in SOURCE_INDEX:
            continue
        value = gain * max(float(peak), 0.0) / AU_SCALE
        amp[SOURCE_INDEX[au]] = np.fmax(amp[SOURCE_INDEX[au]], value)
        for i in table.get(au, ()):
            name = SOURCE_NAMES[i]
            if (event.side == "left" and name.endswith("Right")) or (
                event.side == "right" and name.endswith("Left")
            ):
                continue
            amp[i] = np.fmax(amp[i], value)
    return amp


@dataclass(slots=True)
class _Replay:
    amplitudes: np.ndarray
    rise: float
    fall: float
    start: float | None = None


class EventReplay:
    """Queued event replays over the source channels; each starts at the first update after it
    was queued."""

    def __init__(self) -> None:
        self._replays: list[_Replay] = []

    def clear(self) -> None:
        self._replays = []

    def add(self, event: ExpressionEvent, gain: float) -> None:
        if gain <= 0:
            return
        rise = max(event.apex - event.onset, 0.0)
        fall = max(event.offset - event.apex, 0.0)
        self._replays.append(_Replay(event_overlay_amplitudes(event, gain), rise, fall))

    def overlay(self, s: np.ndarray, t: float) -> np.ndarray:
        """``s`` with every live replay's envelope laid over it (max), at time ``t``."""
        if not self._replays:
            return s
        out = s.copy()
        alive = []
        for r in self._replays:
            if r.start is None:
                r.start = t
            env = event_envelope(t - r.start, r.rise, r.fall)
            touched = np.isfinite(r.amplitudes)
            out[touched] = np.fmax(out[touched], env * r.amplitudes[touched])
            if t - r.start <= r.rise + r.fall:
                alive.append(r)
        self._replays = alive
        return out
