"""``<stem>.landmarks.npz``: the 478 face-mesh landmarks of every tracked face, for re-analysis.

Landmarks are the most identifying thing an export holds (a face's geometry), so they live in their
own file that ``--anonymize`` simply does not write. Rows stream to a raw temporary file as frames
arrive (an hour of video is ~600 MB of float32) and are packed into the ``.npz`` once, at the end.

Arrays (load with ``numpy.load``): ``frame`` (N,) int32 source frame index (0-based), ``timestamp``
(N,) float64 seconds, ``face_id`` (N,) int32, ``landmarks`` (N, 478, 3) float32 normalised like
MediaPipe's (x, y in 0..1 of the image width/height, z in the same scale as x), ``image_size`` (2,)
int32 (width, height) of the tracked frames. Only frames with a face have rows.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from types import TracebackType

import numpy as np

from avatar_bridge.records import NUM_LANDMARKS, FaceObservation

LANDMARK_ARRAYS = ("frame", "timestamp", "face_id", "landmarks", "image_size")


class LandmarksWriter:
    """Collects landmark rows on disk and writes an ``.npz`` at ``path`` on :meth:`close`.

    >>> with LandmarksWriter(Path("clip.landmarks.npz")) as w:  # doctest: +SKIP
    ...     w.write(frame.index, frame.timestamp, face)
    """

    def __init__(self, path: Path, chunk_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self._raw_path = self.path.with_name(self.path.name + ".raw")
        self._raw = open(self._raw_path, "wb")  # noqa: SIM115 (closed in close/abort)
        self._frame: list[int] = []
        self._time: list[float] = []
        self._face: list[int] = []
        self._size = (0, 0)
        self._chunk = chunk_bytes
        self.rows = 0

    def write(self, index: int, timestamp: float, face: FaceObservation) -> None:
        """Append one face's landmarks for one frame."""
        self._raw.write(np.ascontiguousarray(face.landmarks, dtype="<f4").tobytes())
        self._frame.append(index)
        self._time.append(timestamp)
        self._face.append(face.face_id)
        self._size = face.image_size
        self.rows += 1

    def close(self) -> Path:
        """Pack everything into the ``.npz`` and remove the raw file."""
        self._raw.close()
        small = {
            "frame": np.asarray(self._frame, np.int32),
            "timestamp": np.asarray(self._time, np.float64),
            "face_id": np.asarray(self._face, np.int32),
            "image_size": np.asarray(self._size, np.int32),
        }
        try:
            with zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for name, arr in small.items():
                    with zf.open(f"{name}.npy", "w") as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                header = {"descr": "<f4", "fortran_order": False, "shape": (self.rows, NUM_LANDMARKS, 3)}
                # Stored, not deflated: float32 coordinates shrink by under 10 % and compressing them
                # was the slowest step at the end of an export.
                info = zipfile.ZipInfo("landmarks.npy")
                info.compress_type = zipfile.ZIP_STORED
                with zf.open(info, "w", force_zip64=True) as f, open(self._raw_path, "rb") as raw:
                    np.lib.format.write_array_header_2_0(f, header)
                    shutil.copyfileobj(raw, f, self._chunk)
        finally:
            self._raw_path.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (the export failed)."""
        self._raw.close()
        self._raw_path.unlink(missing_ok=True)

    def __enter__(self) -> LandmarksWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
