"""OpenFace 2.x FeatureExtraction CSV: the format AU users already parse.

Columns: ``frame, face_id, timestamp, confidence, success, pose_Tx..pose_Rz, AUxx_r..., AUxx_c...``,
separated by a comma and a space (readers use ``skipinitialspace=True``), frame 1-based, timestamp in
seconds. Pose follows OpenFace's camera frame: millimetres, x right, y down, z away from the camera;
rotations in radians (Rx pitch, Ry yaw, Rz roll).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np

from avatar_bridge.channels import AU_INTENSITY, AU_PRESENCE
from avatar_bridge.errors import InputError
from avatar_bridge.records import ActionUnits, FaceObservation, HeadPose

SEP = ", "
POSE_COLUMNS = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
OPENFACE_COLUMNS: tuple[str, ...] = (
    "frame", "face_id", "timestamp", "confidence", "success", *POSE_COLUMNS,
    *(f"{au}_r" for au in AU_INTENSITY), *(f"{au}_c" for au in AU_PRESENCE),
)  # fmt: skip

# MediaPipe's camera frame has +y up and +z towards the viewer; OpenFace's has +y down, +z away.
_FLIP = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


def openface_pose(pose: HeadPose) -> np.ndarray:
    """(Tx, Ty, Tz in mm, Rx, Ry, Rz in radians) in OpenFace's camera convention."""
    t = _FLIP @ pose.translation * 10.0
    flipped = np.eye(4, dtype=np.float32)
    flipped[:3, :3] = _FLIP @ pose.rotation @ _FLIP
    return np.concatenate([t, HeadPose(flipped).euler]).astype(np.float64)


class OpenFaceCSVWriter:
    """Writes rows as frames arrive; a frame without any face gets one row with success = 0."""

    def __init__(self, stream: TextIO) -> None:
        self._out = stream
        self._out.write(SEP.join(OPENFACE_COLUMNS) + "\n")
        self.rows = 0

    def write(
        self, index: int, timestamp: float, face: FaceObservation | None, aus: ActionUnits | None
    ) -> None:
        frame = index + 1
        if face is None or aus is None:
            values = [f"{frame}", "0", f"{timestamp:.3f}", "0.00", "0"] + ["0"] * (len(OPENFACE_COLUMNS) - 5)
        else:
            pose = openface_pose(face.pose).tolist()  # Python floats format faster than NumPy scalars
            values = [f"{frame}", f"{face.face_id}", f"{timestamp:.3f}", f"{face.confidence:.2f}", "1"]
            values += [f"{v:.1f}" for v in pose[:3]] + [f"{v:.3f}" for v in pose[3:]]
            values += [f"{v:.2f}" for v in aus.intensity.tolist()] + [
                f"{v:.1f}" for v in aus.presence.tolist()
            ]
        self._out.write(SEP.join(values) + "\n")
        self.rows += 1


def read_openface_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read an OpenFace-format CSV (ours or OpenFace's) into columns, without pandas.

    Raises :class:`InputError` naming the file and line when it is not such a CSV.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)
            header = [h.strip() for h in next(reader)]
            rows = [r for r in reader if r]
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read {path} as an OpenFace CSV: {e or 'empty file'}") from e
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header")
    missing = [c for c in ("frame", "timestamp", "success") if c not in header]
    if missing:
        raise InputError(f"{path} is not an OpenFace CSV: missing column(s) {', '.join(missing)}")
    columns: dict[str, list[float]] = {h: [] for h in header}
    for line_no, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InputError(f"{path}:{line_no}: {len(row)} fields, header has {len(header)}")
        for h, v in zip(header, row, strict=True):
            try:
                columns[h].append(float(v) if v.strip() else float("nan"))
            except ValueError as e:
                raise InputError(f"{path}:{line_no}: column {h} holds {v!r}, not a number") from e
    return {h: np.asarray(v) for h, v in columns.items()}
