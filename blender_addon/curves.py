"""Reading the curve files ``avatar-bridge export`` writes, and turning AUs into shape weights.

Two formats, told apart by their header (comma-space separated, timestamps in seconds):
- ``<stem>.blendshapes.csv``: ``frame, face_id, timestamp, success, <52 ARKit names>``; rows with
  success 0 have empty values and an untracked channel (tongueOut) is an empty field;
- ``<stem>.csv`` in OpenFace FeatureExtraction format: ``frame, face_id, timestamp, confidence,
  success, ..., AU01_r ... AU45_r, AU01_c ... AU45_c``. Its ``_r`` intensities (0-5) become shape
  weights through an :class:`AUMapping` (a profile's ``facs`` table or a plain dict).
Pure Python, no bpy.
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_AU_R = re.compile(r"^AU\d\d_r$")
_META = ("timestamp", "success")  # face_id is optional: OpenFace 2.0 single-face files lack it


class CurveFileError(ValueError):
    """A curves file cannot be used; the message names the file and what is wrong."""


@dataclass
class CurveTable:
    """One face's rows of a curves file: sender times and named channels (None = no value)."""

    kind: str  # 'blendshapes' or 'openface'
    face_id: int
    timestamps: list[float] = field(default_factory=list)
    channels: dict[str, list[float | None]] = field(default_factory=dict)


def _number(text: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError as e:
        raise CurveFileError(f"{where}: {text!r} is not a number") from e
    return v if math.isfinite(v) else None


def read_curves(path: str | Path, face_id: int | None = None) -> CurveTable:
    """Rows of one face (``face_id``, default the first one in the file) that were tracked."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, skipinitialspace=True))
    except (OSError, UnicodeDecodeError) as e:
        raise CurveFileError(f"cannot read {path}: {e}") from e
    if not rows:
        raise CurveFileError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in _META if c not in header]
    if missing:
        raise CurveFileError(f"{path}: header lacks {', '.join(missing)}; not an avatar-bridge curves file")
    au_cols = [h for h in header if _AU_R.match(h)]
    kind = "openface" if au_cols else "blendshapes"
    value_cols = au_cols if au_cols else [h for h in header[header.index("success") + 1 :] if h]
    if not value_cols:
        raise CurveFileError(f"{path}: no curve columns after 'success'")
    col = {h: i for i, h in enumerate(header)}
    table = CurveTable(kind=kind, face_id=-1, channels={c: [] for c in value_cols})
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path.name} line {line}"
        if len(row) != len(header):
            raise CurveFileError(f"{where}: {len(row)} fields, the header has {len(header)}")
        fid = _number(row[col["face_id"]], where) if "face_id" in col else 0.0
        if fid is None:
            raise CurveFileError(f"{where}: empty face_id")
        if face_id is None:
            face_id = int(fid)
        if int(fid) != face_id or _number(row[col["success"]], where) != 1:
            continue
        t = _number(row[col["timestamp"]], where)
        if t is None:
            raise CurveFileError(f"{where}: empty timestamp")
        table.timestamps.append(t)
        for c in value_cols:
            table.channels[c].append(_number(row[col[c]], where))
    table.face_id = -1 if face_id is None else face_id
    table.channels = {c: v for c, v in table.channels.items() if any(x is not None for x in v)}
    return table


@dataclass
class AUMapping:
    """AU intensity (0-``au_scale``) to shape weight: weight = sum(gain * AU / au_scale), clamped 0-1.

    ``table`` maps an AU name ('AU12') to (shape name, gain) pairs. ``au_scale`` defaults to 5,
    OpenFace's intensity range.
    """

    table: dict[str, list[tuple[str, float]]]
    au_scale: float = 5.0

    def weights(self, aus: dict[str, float | None]) -> dict[str, float]:
        """Shape weights for one row of AU intensities (keys 'AU12' or 'AU12_r')."""
        out: dict[str, float] = {}
        for au, value in aus.items():
            if value is None:
                continue
            for shape, gain in self.table.get(au.removesuffix("_r"), ()):
                out[shape] = out.get(shape, 0.0) + gain * value / self.au_scale
        return {s: min(1.0, max(0.0, w)) for s, w in out.items()}


def _table_from(data: dict, where: str) -> dict[str, list[tuple[str, float]]]:
    table: dict[str, list[tuple[str, float]]] = {}
    for au, targets in data.items():
        if isinstance(targets, str):
            targets = {targets: 1.0}
        elif isinstance(targets, list):
            targets = dict.fromkeys(targets, 1.0)
        if not isinstance(targets, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) for k, v in targets.items()
        ):
            raise CurveFileError(f"{where}: {au} must map to shape names or {{shape = gain}}")
        table[au.removesuffix("_r")] = [(k, float(v)) for k, v in targets.items()]
    return table


def _profile_table(targets: list, where: str) -> dict[str, list[tuple[str, float]]]:
    """AU-driven targets of an avatar-bridge rig profile (``[[target]]`` with AU sources): the
    linear part, ``gain * weight``; targets driven only by ARKit sources are left out."""
    table: dict[str, list[tuple[str, float]]] = {}
    for t in targets:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise CurveFileError(f"{where}: every [[target]] needs a name")
        sources = t.get("sources", {t["source"]: 1.0} if isinstance(t.get("source"), str) else {})
        gain = t.get("gain", 1.0)
        if not isinstance(sources, dict) or not isinstance(gain, int | float):
            raise CurveFileError(f"{where}: target {t['name']}: bad sources or gain")
        for src, w in sources.items():
            if _AU_R.match(src + "_r") and isinstance(w, int | float):
                table.setdefault(src, []).append((t["name"], float(gain) * float(w)))
    return table


def load_au_mapping(path: str | Path) -> AUMapping:
    """An AU mapping from TOML, in any of the project's forms: a ``[facs]`` / ``[au_to_shape]`` /
    ``[au_to_arkit]`` table of ``AU12 = {shape = gain}`` or ``AU12 = ["shape", ...]`` (gain 1),
    or a rig profile (``[[target]]`` entries with AU sources, as blendshapes/profiles/*.toml)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise CurveFileError(f"cannot read AU mapping {path}: {e}") from e
    scale = data.get("au_scale", 5.0)
    if not isinstance(scale, int | float) or scale <= 0:
        raise CurveFileError(f"{path}: au_scale must be a positive number")
    for key in ("facs", "au_to_shape", "au_to_arkit"):
        if isinstance(data.get(key), dict) and data[key]:
            return AUMapping(_table_from(data[key], str(path)), float(scale))
    if isinstance(data.get("target"), list):
        table = _profile_table(data["target"], str(path))
        if not table:
            raise CurveFileError(f"{path}: no target of this profile is driven by an AU")
        return AUMapping(table, float(scale))
    raise CurveFileError(f"{path}: no [facs], [au_to_shape] or [au_to_arkit] table and no [[target]] list")


def default_au_mapping() -> AUMapping:
    """The mapping shipped with the add-on (``au_mapping.toml``: the consensus AU -> ARKit table)."""
    return load_au_mapping(Path(__file__).with_name("au_mapping.toml"))


def shape_curves(table: CurveTable, mapping: AUMapping | None = None) -> dict[str, list[float | None]]:
    """Shape-weight channels of a table: blendshape files as they are, AU files through ``mapping``."""
    if table.kind == "blendshapes":
        return table.channels
    mapping = mapping or default_au_mapping()
    n = len(table.timestamps)
    rows = [mapping.weights({au: vals[i] for au, vals in table.channels.items()}) for i in range(n)]
    names = sorted({s for r in rows for s in r})
    return {s: [r.get(s) for r in rows] for s in names}
