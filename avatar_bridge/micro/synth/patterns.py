"""AU patterns the generator can inject, and their temporal profile.

A pattern moves a few key landmarks in a direction given in the face's own axes (x = towards the
subject's left, y = up); neighbouring landmarks follow with a Gaussian fall-off, so the movement is
smooth and local like a real muscle pull. Labels follow the 3-class scheme of reference section 7
(positive = happiness; negative = sadness, disgust, contempt, fear, anger, repression; surprise).
The patterns are data: ``blendshapes/micro_patterns.toml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_bridge.errors import ConfigError
from avatar_bridge.fileio import read_toml
from avatar_bridge.resources import data_dir


@dataclass(frozen=True, slots=True)
class AUPattern:
    """One injectable expression: key points (landmark, dx, dy, gain), AUs, side and class."""

    name: str
    aus: tuple[str, ...]
    side: str  # 'left', 'right' or 'both' (the subject's own sides)
    label: str  # positive / negative / surprise
    emotion: str
    keys: tuple[tuple[int, float, float, float], ...]


PATTERNS_FILE = "micro_patterns.toml"


def load_patterns(path: Path | None = None) -> dict[str, AUPattern]:
    """Read the AU patterns (``blendshapes/micro_patterns.toml`` unless ``path`` is given)."""
    path = Path(path) if path is not None else data_dir("blendshapes") / PATTERNS_FILE
    data = read_toml(path, "micro-expression pattern file")
    tables = data.get("patterns")
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise ConfigError(f"{path}: needs [patterns.NAME] tables")
    out: dict[str, AUPattern] = {}
    for name, spec in tables.items():
        try:
            keys = tuple((int(k[0]), float(k[1]), float(k[2]), float(k[3])) for k in spec["keys"])
            pattern = AUPattern(name, tuple(str(a) for a in spec["aus"]), str(spec["side"]),
                                str(spec["label"]), str(spec["emotion"]), keys)  # fmt: skip
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ConfigError(f"{path}: patterns.{name} needs aus, side, label, emotion, keys: {e}") from e
        if pattern.side not in ("left", "right", "both") or not keys:
            raise ConfigError(f"{path}: patterns.{name}: side must be left/right/both and keys non-empty")
        if any(not 0 <= k[0] < 478 or math.hypot(k[1], k[2]) == 0 for k in keys):
            raise ConfigError(f"{path}: patterns.{name}: a key has a bad landmark or a zero direction")
        out[name] = pattern
    if not out:
        raise ConfigError(f"{path}: needs at least one [patterns.NAME] table")
    return out


PATTERNS: dict[str, AUPattern] = load_patterns()


def landmark_displacements(pattern: AUPattern, reference: np.ndarray, sigma: float = 40.0) -> np.ndarray:
    """(478, 2) unit-peak displacement in face axes for ``pattern``.

    ``reference``: landmarks in face axes at 640 px face width (:func:`features.reference_shape`);
    ``sigma``: fall-off radius in the same units (40 = about 6 % of the face width). The largest
    landmark displacement is exactly 1, so the caller scales by the wanted amplitude.
    """
    pts = reference[:, :2]
    out = np.zeros((len(pts), 2))
    for idx, dx, dy, gain in pattern.keys:
        w = gain * np.exp(-((pts - pts[idx]) ** 2).sum(axis=1) / (2.0 * sigma**2))
        direction = np.array([dx, dy]) / math.hypot(dx, dy)
        out += w[:, None] * direction
    peak = float(np.hypot(out[:, 0], out[:, 1]).max())
    return out / peak if peak > 0 else out


def temporal_profile(t: np.ndarray | float, onset: float, apex: float, offset: float,
                     hold: float = 0.0) -> np.ndarray:  # fmt: skip
    """Raised-cosine rise from ``onset`` to ``apex``, ``hold`` s at 1, raised-cosine fall to ``offset``."""
    t = np.asarray(t, dtype=np.float64)
    fall_start = apex + hold
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip((t - onset) / max(apex - onset, 1e-9), 0.0, 1.0))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - fall_start) / max(offset - fall_start, 1e-9), 0.0, 1.0))
    return np.where(t < apex, rise, np.where(t <= fall_start, 1.0, fall)) * ((t > onset) & (t < offset))
