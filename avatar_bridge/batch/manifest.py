"""The batch manifest (``manifest.json`` beside the outputs) and the check that lets a rerun skip work.

The per-video ``<stem>.json`` stays the source of truth: a video is complete when that JSON parses,
was made from the same file name with the same settings, and every output it lists exists and
parses. The manifest is the batch's report (status, reason, frames, faces per video); it is
rewritten atomically (temp file, then rename), so it is always either the old or the new version.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from avatar_bridge import __version__
from avatar_bridge.errors import InputError
from avatar_bridge.export.openface_csv import read_openface_csv
from avatar_bridge.fileio import write_json_atomic

MANIFEST_NAME = "manifest.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class Status(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"  # complete outputs from an earlier run
    FAILED = "failed"


@dataclass(slots=True)
class VideoResult:
    """One video of a batch: what happened, and the numbers the summary table shows."""

    input: str
    stem: str
    status: Status = Status.PENDING
    reason: str = ""
    frames: int = 0
    frames_with_face: int = 0
    faces: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d


def normalised(value: object) -> object:
    """``value`` as it reads back from JSON (tuples become lists...), for comparisons."""
    return json.loads(json.dumps(value))


def _check_csv(path: Path, frame_count: int) -> int:
    cols = read_openface_csv(path)
    frames = cols["frame"]
    if frames.size and len(np.unique(frames)) != frame_count:
        raise InputError(f"{path.name} has {len(np.unique(frames))} frames, its JSON says {frame_count}")
    if not frames.size and frame_count:
        raise InputError(f"{path.name} has no rows")
    return int(frames.size)


def _check_npz(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "landmarks.npy" not in names or "frame.npy" not in names:
                raise InputError(f"{path.name} lacks landmarks.npy or frame.npy")
            with zf.open("frame.npy") as f:
                rows = np.lib.format.read_array(f, allow_pickle=False).shape[0]
            with zf.open("landmarks.npy") as f:
                read_header = _HEADER_READERS.get(np.lib.format.read_magic(f))
                if read_header is None:
                    raise InputError(f"{path.name}: unknown .npy format version")
                shape, _, _ = read_header(f)  # the header only: the data may be hundreds of MB
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise InputError(f"{path.name} is not a readable .npz: {e}") from e
    if shape[0] != rows:
        raise InputError(f"{path.name}: {shape[0]} landmark rows for {rows} frame rows")


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    if not (data.startswith(PNG_MAGIC) and data.rstrip(b"\0").endswith(PNG_END)):
        raise InputError(f"{path.name} is not a complete PNG")


def incomplete_reason(outdir: Path, video: Path, stem: str, settings: object) -> str | None:
    """Why the outputs of ``video`` in ``outdir`` cannot be reused (None: complete and valid)."""
    meta_path = outdir / f"{stem}.json"
    if not meta_path.is_file():
        return "not exported yet"
    try:
        meta = json.loads(meta_path.read_text())
        outputs = meta["outputs"]
        frame_count = int(meta["frame_count"])
        source_name = meta["source"]["name"]
        old_settings = meta["settings"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        return f"{meta_path.name} is unreadable ({type(e).__name__})"
    if source_name != video.name:
        return f"outputs were made from {source_name}"
    if old_settings != normalised(settings):
        return "settings changed"
    if not isinstance(outputs, list) or f"{stem}.csv" not in outputs:
        return f"{meta_path.name} lists no {stem}.csv"
    rows: dict[str, int] = {}
    try:
        for name in outputs:
            path = outdir / str(name)
            if not path.is_file():
                return f"{name} is missing"
            if name.endswith(".csv"):
                rows[name] = _check_csv(path, frame_count)
            elif name.endswith(".npz"):
                _check_npz(path)
            elif name.endswith(".png"):
                _check_png(path)
    except (InputError, OSError) as e:
        return f"invalid output: {e}"
    if len(set(rows.values())) > 1:
        return "the CSV files disagree on their row count"
    return None


_PART = re.compile(r"^\..+\.[0-9a-f]{8}\.part(\.raw)?$")


def remove_stale_parts(outdir: Path, stems: set[str]) -> list[Path]:
    """Delete the temporaries (``.<stem>.<ext>.<token>.part``) a killed run left (no task may run)."""
    removed = []
    if not outdir.is_dir():
        return removed
    for p in outdir.iterdir():
        if _PART.match(p.name) and any(p.name.startswith(f".{s}.") for s in stems):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class Manifest:
    """``manifest.json``: the batch settings and one entry per video, keyed by input path.

    Entries of earlier batches into the same folder are kept; the current batch's entries replace
    theirs. Writes are throttled to one every ``min_interval`` seconds, except :meth:`flush`.
    """

    def __init__(self, outdir: Path, settings: object, min_interval: float = 1.0) -> None:
        self.path = outdir / MANIFEST_NAME
        self.settings = normalised(settings)
        self.min_interval = min_interval
        self.entries: dict[str, dict] = {}
        self.created = time.strftime("%Y-%m-%dT%H:%M:%S")
        self._last_write = 0.0
        self._load()

    def _load(self) -> None:
        try:
            old = json.loads(self.path.read_text())
            self.entries = {e["input"]: e for e in old["videos"] if isinstance(e, dict) and "input" in e}
            self.created = str(old.get("created", self.created))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            self.entries = {}  # absent or unreadable: the outputs themselves say what is done

    def record(self, result: VideoResult) -> None:
        self.entries[result.input] = result.to_json()
        if time.monotonic() - self._last_write >= self.min_interval:
            self.flush()

    def flush(self) -> None:
        payload = {
            "avatar_bridge_version": __version__,
            "created": self.created,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "settings": self.settings,
            "videos": list(self.entries.values()),
        }
        write_json_atomic(self.path, payload)
        self._last_write = time.monotonic()
