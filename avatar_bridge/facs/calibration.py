"""An explicit neutral face: per-input values measured on a neutral segment, saved as JSON.

A calibration replaces the running baseline for the faces it applies to: each input's neutral is
its median over the segment (robust to a stray blink), and its spread (median absolute deviation)
records how much the input jitters at rest. It stores every input the estimator can compute, so
one calibration works with any mapping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.facs.geometry import geometric_features
from avatar_bridge.facs.mapping import SOURCE_INDEX, SOURCES, source_values
from avatar_bridge.fileio import read_json, write_json_atomic
from avatar_bridge.records import FaceObservation, TrackingResult

FORMAT = "avatar-bridge/facs-calibration"
#: 2: ``brow_outer_height`` reads the lateral brow's upper edge (a version 1 neutral of it no longer applies).
VERSION = 2


def face_sources(face: FaceObservation, fit: tuple | None = None) -> np.ndarray:
    """Every estimator input of one face, in :data:`SOURCES` order (``fit``: its head fit, if known)."""
    geo = geometric_features(face.landmarks, face.image_size, fit=fit)
    return source_values(face.blendshapes, geo)


@dataclass(frozen=True)
class Calibration:
    """Neutral value and rest spread of every input, measured on ``frames`` neutral frames."""

    neutral: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    face_id: int | None = None  # the face it was measured on (None: the first face of each frame)

    @classmethod
    def from_results(
        cls, results: Iterable[TrackingResult], face_id: int | None = None, min_frames: int = 3
    ) -> Calibration:
        """Measure a neutral face from tracking results of a neutral segment.

        Uses face ``face_id`` (or the first face of each frame when None); frames without it are skipped.
        """
        rows = []
        for r in results:
            face = next((f for f in r.faces if face_id is None or f.face_id == face_id), None)
            if face is not None:
                x = face_sources(face)
                if np.all(np.isfinite(x)):
                    rows.append(x)
        if len(rows) < min_frames:
            who = "a face" if face_id is None else f"face {face_id}"
            raise InputError(
                f"calibration needs at least {min_frames} neutral frames with {who}, got {len(rows)}"
            )
        data = np.asarray(rows)
        med = np.median(data, axis=0)
        mad = np.median(np.abs(data - med), axis=0)
        return cls(
            neutral={n: float(v) for n, v in zip(SOURCES, med, strict=True)},
            spread={n: float(v) for n, v in zip(SOURCES, mad, strict=True)},
            frames=len(rows),
            face_id=face_id,
        )

    def vector(self, sources: Sequence[str]) -> np.ndarray:
        """Neutral values of ``sources``, in that order; every one must be in the calibration."""
        missing = [s for s in sources if s not in self.neutral]
        if missing:
            raise ConfigError(f"calibration has no neutral value for {missing[0]!r} (re-calibrate)")
        return np.array([self.neutral[s] for s in sources], np.float64)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "frames": self.frames,
            "face_id": self.face_id,
            "neutral": dict(self.neutral),
            "spread": dict(self.spread),
        }

    def save(self, path: str | Path) -> Path:
        """Write JSON to a temporary file beside ``path``, then rename: never a half-written file."""
        return write_json_atomic(path, self.to_json(), "calibration", ConfigError, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read and validate a calibration file; errors name the file and the field."""
        return cls.from_json(read_json(path, "calibration file", ConfigError), path)

    @classmethod
    def from_json(cls, data: object, path: str | Path = "<calibration>") -> Calibration:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a calibration must be a JSON object")
        if data.get("format") != FORMAT:
            raise ConfigError(f"{path}: field 'format' must be {FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != VERSION:
            old = " (made by an older avatar-bridge: calibrate again)" if data.get("version") == 1 else ""
            raise ConfigError(f"{path}: field 'version' must be {VERSION}, got {data.get('version')!r}{old}")
        frames = data.get("frames")
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ConfigError(f"{path}: field 'frames' must be a positive integer, got {frames!r}")
        face_id = data.get("face_id")
        if face_id is not None and (isinstance(face_id, bool) or not isinstance(face_id, int)):
            raise ConfigError(f"{path}: field 'face_id' must be an integer or null, got {face_id!r}")
        tables = {}
        for key in ("neutral", "spread"):
            table = data.get(key)
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: field '{key}' must be an object of input name -> number")
            for name, value in table.items():
                if name not in SOURCE_INDEX:
                    raise ConfigError(f"{path}: field '{key}.{name}': unknown input name")
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ConfigError(f"{path}: field '{key}.{name}' must be a finite number, got {value!r}")
            tables[key] = {n: float(v) for n, v in table.items()}
        missing = [s for s in SOURCES if s not in tables["neutral"]]
        if missing:
            raise ConfigError(f"{path}: field 'neutral' lacks {missing[0]!r} ({len(missing)} inputs missing)")
        return cls(neutral=tables["neutral"], spread=tables["spread"], frames=frames, face_id=face_id)
