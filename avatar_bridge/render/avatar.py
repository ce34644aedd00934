"""The avatar record: a mesh plus named blendshape targets, and its compact ``.npz`` file format.

A posed mesh is ``neutral + sum_i w_i * deltas[i]``. ``profile`` names the retargeting profile
(``blendshapes/profiles/<profile>.toml``) whose target names this avatar uses, so that weights
reach it already in its own names; matching names is never guessed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.fileio import atomic_path
from avatar_bridge.records import RigWeights

FORMAT_VERSION = 1
DEFAULT_SKIN = (0.86, 0.70, 0.60)


@dataclass(frozen=True)
class Avatar:
    """A blendshape avatar.

    ``neutral`` (V, 3) cm, +y up, +z towards the viewer; ``deltas`` (T, V, 3) offsets at weight 1;
    ``target_names`` (T,); ``faces`` (F, 3) counter-clockwise seen from the front; ``colors``
    (V, 3) RGB 0..1 (a plain skin tone when None); ``uvs`` (V, 2) and ``texture`` (H, W, 3)
    uint8 are optional (the renderer samples the texture per vertex); ``frame_vertices`` picks
    the vertices the camera frames (all when None).
    """

    name: str
    neutral: np.ndarray
    deltas: np.ndarray
    target_names: tuple[str, ...]
    faces: np.ndarray
    profile: str = "arkit52"
    colors: np.ndarray | None = None
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    frame_vertices: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = self.neutral.shape[0] if self.neutral.ndim == 2 else -1
        if self.neutral.ndim != 2 or self.neutral.shape[1] != 3:
            raise InputError(f"avatar {self.name}: neutral must be (V, 3), got {self.neutral.shape}")
        if self.deltas.shape != (len(self.target_names), v, 3):
            raise InputError(
                f"avatar {self.name}: deltas must be ({len(self.target_names)}, {v}, 3), "
                f"got {self.deltas.shape}"
            )
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise InputError(f"avatar {self.name}: faces must be (F, 3) triangles, got {self.faces.shape}")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise InputError(f"avatar {self.name}: faces index vertices outside 0..{v - 1}")
        if self.colors is not None and self.colors.shape != (v, 3):
            raise InputError(f"avatar {self.name}: colors must be ({v}, 3), got {self.colors.shape}")
        if self.uvs is not None and self.uvs.shape != (v, 2):
            raise InputError(f"avatar {self.name}: uvs must be ({v}, 2), got {self.uvs.shape}")

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    def weight_vector(self, weights: RigWeights | Mapping[str, float]) -> np.ndarray:
        """(T,) weights in target order from named weights; names the avatar lacks are ignored."""
        pairs = weights.as_dict() if isinstance(weights, RigWeights) else weights
        index = {n: i for i, n in enumerate(self.target_names)}
        out = np.zeros(len(self.target_names), np.float32)
        for name, value in pairs.items():
            i = index.get(name)
            if i is not None and np.isfinite(value):
                out[i] = value
        return out

    def vertex_colors(self) -> np.ndarray:
        """(V, 3) base colours: the texture sampled at each vertex's UV, else ``colors``, else skin."""
        if self.texture is not None and self.uvs is not None:
            h, w = self.texture.shape[:2]
            u = np.clip(self.uvs[:, 0], 0.0, 1.0) * (w - 1)
            t = (1.0 - np.clip(self.uvs[:, 1], 0.0, 1.0)) * (h - 1)
            return self.texture[t.round().astype(int), u.round().astype(int)].astype(np.float32) / 255.0
        if self.colors is not None:
            return self.colors.astype(np.float32)
        return np.tile(np.asarray(DEFAULT_SKIN, np.float32), (self.num_vertices, 1))


def save_avatar(avatar: Avatar, path: str | Path) -> Path:
    """Write ``avatar`` as a compact ``.npz`` (float16 deltas); temp file then rename."""
    import json

    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "version": np.asarray(FORMAT_VERSION),
        "name": np.asarray(avatar.name),
        "profile": np.asarray(avatar.profile),
        "neutral": avatar.neutral.astype(np.float32),
        "deltas": avatar.deltas.astype(np.float16),
        "names": np.asarray(avatar.target_names, dtype=str),
        "faces": avatar.faces.astype(np.int32),
        "meta": np.asarray(json.dumps(avatar.meta)),
    }
    for key in ("colors", "uvs", "texture", "frame_vertices"):
        value = getattr(avatar, key)
        if value is not None:
            arrays[key] = value
    with atomic_path(path, "avatar") as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def load_avatar_npz(path: str | Path) -> Avatar:
    """Read an avatar written by :func:`save_avatar`."""
    import json

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as d:
            opt = {k: d[k] for k in ("colors", "uvs", "texture", "frame_vertices") if k in d}
            return Avatar(
                name=str(d["name"]),
                neutral=d["neutral"].astype(np.float32),
                deltas=d["deltas"].astype(np.float32),
                target_names=tuple(str(n) for n in d["names"]),
                faces=d["faces"].astype(np.int64),
                profile=str(d["profile"]),
                meta=json.loads(str(d["meta"])) if "meta" in d else {},
                **opt,
            )
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path} is not an avatar-bridge avatar (.npz): {e}") from e
