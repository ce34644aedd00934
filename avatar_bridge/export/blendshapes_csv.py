"""Blendshape curves: ``frame, face_id, timestamp, success`` then the 52 ARKit names in canonical order.

Same conventions as the OpenFace CSV (comma-space separator, 1-based frame, seconds). Channels
MediaPipe does not estimate (tongueOut) and frames without a face are written as empty fields, so a
reader sees NaN rather than an invented 0.
"""

from __future__ import annotations

import math
from typing import TextIO

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.records import FaceObservation

SEP = ", "
BLENDSHAPE_COLUMNS: tuple[str, ...] = ("frame", "face_id", "timestamp", "success", *ARKIT_NAMES)


class BlendshapeCSVWriter:
    def __init__(self, stream: TextIO) -> None:
        self._out = stream
        self._out.write(SEP.join(BLENDSHAPE_COLUMNS) + "\n")
        self.rows = 0

    def write(self, index: int, timestamp: float, face: FaceObservation | None) -> None:
        head = [f"{index + 1}", "0" if face is None else f"{face.face_id}", f"{timestamp:.3f}"]
        if face is None:
            values = ["0"] + [""] * len(ARKIT_NAMES)
        else:
            values = ["1"] + ["" if math.isnan(v) else f"{v:.6f}" for v in face.blendshapes.tolist()]
        self._out.write(SEP.join(head + values) + "\n")
        self.rows += 1
