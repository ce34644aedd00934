"""Recordings of tracking output (saved arrays), so later stages can be replayed without MediaPipe.

One ``.npz`` holds a sequence of :class:`TrackingResult` as flat columns, one row per face and
frame (frames without a face keep a row with ``face_id = -1``):
``index, timestamp, face_id, landmarks (N,478,3), blendshapes (N,52), matrix (N,4,4), image_size``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.errors import InputError
from avatar_bridge.fileio import atomic_path
from avatar_bridge.records import NUM_LANDMARKS, FaceObservation, HeadPose, TrackingResult

FORMAT_VERSION = 1


def save_recording(path: str | Path, results: Iterable[TrackingResult], meta: dict | None = None) -> Path:
    """Write ``results`` to ``path`` (.npz); ``meta`` (JSON-able) is stored beside the arrays."""
    index, ts, fid, lms, bss, mats, sizes = [], [], [], [], [], [], []
    nan_lm = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
    nan_bs = np.full(len(ARKIT_NAMES), np.nan, np.float32)
    for r in results:
        rows = r.faces or (None,)
        for face in rows:
            index.append(r.index)
            ts.append(r.timestamp)
            sizes.append(r.image_size)
            fid.append(-1 if face is None else face.face_id)
            lms.append(nan_lm if face is None else face.landmarks)
            bss.append(nan_bs if face is None else face.blendshapes)
            mats.append(np.eye(4, dtype=np.float32) if face is None else face.pose.matrix)
    columns = {
        "version": FORMAT_VERSION,
        "index": np.asarray(index, np.int64),
        "timestamp": np.asarray(ts, np.float64),
        "face_id": np.asarray(fid, np.int64),
        "landmarks": np.asarray(lms, np.float32).reshape(-1, NUM_LANDMARKS, 3),
        "blendshapes": np.asarray(bss, np.float32).reshape(-1, len(ARKIT_NAMES)),
        "matrix": np.asarray(mats, np.float32).reshape(-1, 4, 4),
        "image_size": np.asarray(sizes, np.int64).reshape(-1, 2),
        "meta": json.dumps(meta or {}),
    }
    with atomic_path(path, "recording") as tmp:
        np.savez_compressed(tmp, **columns)
    return Path(path)


def load_recording(path: str | Path) -> list[TrackingResult]:
    """Read a recording written by :func:`save_recording` back into records."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            cols = {k: data[k] for k in _SHAPES}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path} is not an avatar-bridge recording: {e or type(e).__name__}") from e
    _validate(path, cols)
    return list(_rows_to_results(cols))


#: Column -> (trailing shape, numpy kind) of a recording; every column has one row per face and frame.
_SHAPES: dict[str, tuple[tuple[int, ...], str]] = {
    "index": ((), "i"),
    "timestamp": ((), "f"),
    "face_id": ((), "i"),
    "landmarks": ((NUM_LANDMARKS, 3), "f"),
    "blendshapes": ((len(ARKIT_NAMES),), "f"),
    "matrix": ((4, 4), "f"),
    "image_size": ((2,), "i"),
}


def _validate(path: str | Path, cols: dict[str, np.ndarray]) -> None:
    rows = len(cols["index"]) if cols["index"].ndim else -1
    for key, (shape, kind) in _SHAPES.items():
        a = cols[key]
        kind_ok = a.dtype.kind == kind or (kind == "f" and a.dtype.kind == "i")
        if a.shape != (rows, *shape) or not kind_ok:
            want = ", ".join(map(str, (rows, *shape)))
            raise InputError(
                f"{path}: column {key!r} has shape {a.shape} and dtype {a.dtype}, "
                f"expected ({want}) of kind {kind!r}"
            )


def recording_meta(path: str | Path) -> dict:
    with np.load(Path(path), allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def _rows_to_results(c: dict[str, np.ndarray]) -> Iterator[TrackingResult]:
    n = len(c["index"])
    i = 0
    while i < n:
        j = i
        while j < n and c["index"][j] == c["index"][i]:
            j += 1
        size = (int(c["image_size"][i][0]), int(c["image_size"][i][1]))
        faces = tuple(
            FaceObservation(
                int(c["face_id"][k]), c["landmarks"][k], c["blendshapes"][k], HeadPose(c["matrix"][k]), size
            )
            for k in range(i, j)
            if c["face_id"][k] >= 0
        )
        yield TrackingResult(int(c["index"][i]), float(c["timestamp"][i]), size, faces)
        i = j
