"""Per-user calibration of the avatar path, and the one JSON file ``live`` and ``export`` reuse.

The retarget part stores, per source channel, the value at rest (``neutral``) and optionally the
value at the user's full expression (``maximum``): sources are remapped to
``clip((x - neutral) / (maximum - neutral), 0, 1)`` so a user whose smile reads 0.6 still drives
the avatar to 1. The file holds it beside the FACS stage's own neutral calibration::

    {"format": "avatar-bridge/calibration", "version": 1,
     "facs": {...avatar_bridge.facs.Calibration.to_json()...} | null,
     "retarget": {"frames": 60, "neutral": {"jawOpen": 0.02, ...}, "maximum": {"jawOpen": 0.8, ...}}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.fileio import read_json, write_json_atomic
from avatar_bridge.retarget.profile import SOURCE_INDEX, SOURCE_NAMES

FORMAT = "avatar-bridge/calibration"
VERSION = 1
#: A channel's maximum must exceed its neutral by at least this much to be used (else it is noise).
MIN_RANGE = 0.05


@dataclass(frozen=True, slots=True)
class RetargetCalibration:
    """Neutral and (optional) maximum per source channel, by name; absent channels are untouched."""

    neutral: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    frames: int = 0

    @classmethod
    def from_samples(
        cls,
        neutral_rows: Sequence[np.ndarray],
        expression_rows: Sequence[np.ndarray] = (),
        max_percentile: float = 98.0,
    ) -> RetargetCalibration:
        """From source vectors (SOURCE_NAMES order) of a neutral segment and, optionally, of an
        expressions segment (its ``max_percentile`` per channel becomes the maximum)."""
        if len(neutral_rows) == 0:
            raise InputError("calibration needs at least one neutral frame with a face")
        n = np.asarray(neutral_rows, dtype=np.float64)
        med = np.full(n.shape[1], np.nan)
        seen = np.isfinite(n).any(axis=0)  # untracked channels (tongueOut) have no neutral
        med[seen] = np.nanmedian(n[:, seen], axis=0)
        neutral = {name: float(v) for name, v in zip(SOURCE_NAMES, med, strict=True) if math.isfinite(v)}
        maximum: dict[str, float] = {}
        if len(expression_rows):
            e = np.asarray(expression_rows, dtype=np.float64)
            for i, name in enumerate(SOURCE_NAMES):
                col = e[:, i][np.isfinite(e[:, i])]
                if col.size and name in neutral:
                    top = float(np.percentile(col, max_percentile))
                    if top - neutral[name] >= MIN_RANGE:
                        maximum[name] = top
        return cls(neutral, maximum, frames=len(n))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(neutral, scale) over SOURCE_NAMES: apply as ``clip((x - neutral) * scale, 0, 1)``."""
        neutral = np.zeros(len(SOURCE_NAMES))
        top = np.ones(len(SOURCE_NAMES))
        for name, v in self.neutral.items():
            neutral[SOURCE_INDEX[name]] = v
        for name, v in self.maximum.items():
            top[SOURCE_INDEX[name]] = v
        rng = np.maximum(top - neutral, MIN_RANGE)
        return neutral, 1.0 / rng

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "neutral": dict(self.neutral), "maximum": dict(self.maximum)}

    @classmethod
    def from_json(cls, data: object, where: str) -> RetargetCalibration:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: 'retarget' must be an object")
        frames = data.get("frames", 0)
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
            raise ConfigError(f"{where}: 'retarget.frames' must be a non-negative integer, got {frames!r}")
        tables: dict[str, dict[str, float]] = {}
        for key in ("neutral", "maximum"):
            table = data.get(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: 'retarget.{key}' must be an object of channel -> number")
            for name, value in table.items():
                if name not in SOURCE_INDEX:
                    raise ConfigError(f"{where}: 'retarget.{key}.{name}': unknown channel")
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ConfigError(
                        f"{where}: 'retarget.{key}.{name}' must be a finite number, got {value!r}"
                    )
            tables[key] = {k: float(v) for k, v in table.items()}
        for name, top in tables["maximum"].items():
            if top <= tables["neutral"].get(name, 0.0):
                raise ConfigError(f"{where}: 'retarget.maximum.{name}' must exceed its neutral value")
        return cls(tables["neutral"], tables["maximum"], frames)


@dataclass(frozen=True, slots=True)
class CalibrationFile:
    """The JSON calibration: the FACS neutral (``avatar_bridge.facs.Calibration`` or None) and the
    retarget neutral/maximum (or None)."""

    facs: Any = None
    retarget: RetargetCalibration | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "facs": None if self.facs is None else self.facs.to_json(),
            "retarget": None if self.retarget is None else self.retarget.to_json(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to a temporary file beside ``path``, then rename."""
        return write_json_atomic(path, self.to_json(), "calibration", ConfigError, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationFile:
        """Read and validate; errors name the file and the field."""
        path = Path(path)
        data = read_json(path, "calibration file", ConfigError)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path}: field 'format' must be {FORMAT!r}, got {got!r}")
        if data.get("version") != VERSION:
            raise ConfigError(f"{path}: field 'version' must be {VERSION}, got {data.get('version')!r}")
        facs = None
        if data.get("facs") is not None:
            from avatar_bridge.facs import Calibration

            facs = Calibration.from_json(data["facs"], f"{path} (facs)")
        retarget = None
        if data.get("retarget") is not None:
            retarget = RetargetCalibration.from_json(data["retarget"], str(path))
        return cls(facs, retarget)
