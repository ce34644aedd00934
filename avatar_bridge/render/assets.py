"""Loading avatars: the project's default avatar, the ICT-FaceKit head, .npz, glTF/GLB and OBJ files.

``load_avatar(spec)`` takes ``default``, ``ict`` or a path. An OBJ avatar is a neutral OBJ plus a
folder of per-target OBJs with the same vertex order (``<stem>_targets/<targetName>.obj`` beside
it unless given); each target file is the fully posed shape at weight 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError, ModelError
from avatar_bridge.render.avatar import DEFAULT_SKIN, Avatar, load_avatar_npz
from avatar_bridge.resources import data_dir

DEFAULT_AVATAR_FILE = "default_avatar.npz"
ICT_ENV = "AVATAR_BRIDGE_ICT_DIR"
ICT_PROFILE = "ict_facekit"
#: ICT-FaceKit materials drawn, with their colours; the rest (tear film, eye occlusion and blend
#: shells, eyelashes) are transparent overlays in the original and are left out.
ICT_MATERIAL_COLORS: dict[str, tuple[float, float, float]] = {
    "M_Face": DEFAULT_SKIN,
    "M_BackHead": DEFAULT_SKIN,
    "M_GumsTongue": (0.72, 0.36, 0.38),
    "M_Teeth": (0.93, 0.91, 0.86),
    "M_ScleraLeft": (0.94, 0.93, 0.92),
    "M_ScleraRight": (0.94, 0.93, 0.92),
    "M_IrisLeft": (0.22, 0.15, 0.10),
    "M_IrisRight": (0.22, 0.15, 0.10),
}
#: ICT vertex ranges (from its README) given their own colour: mouth socket and eye sockets.
ICT_RANGE_COLORS: tuple[tuple[int, int, tuple[float, float, float]], ...] = (
    (11248, 13294, (0.40, 0.12, 0.14)),
    (13294, 14062, (0.45, 0.30, 0.27)),
)
ICT_FRAME_VERTICES = (0, 9409)  # the face area frames the camera; the neck and shoulders may crop


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(vertices (V,3), triangles (F,3), per-vertex uvs (V,2) or None, per-triangle material names).

    Keeps the file's vertex order (trimesh's OBJ loader splits vertices at UV seams, which breaks
    per-target files); polygons are fanned into triangles.
    """
    path = Path(path)
    verts, tex, faces, face_uv, mats = [], [], [], [], []
    material = ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("v "):
                    verts.append(line.split()[1:4])
                elif line.startswith("vt "):
                    tex.append(line.split()[1:3])
                elif line.startswith("f "):
                    corners = [c.split("/") for c in line.split()[1:]]
                    vi = [int(c[0]) for c in corners]
                    ti = [int(c[1]) if len(c) > 1 and c[1] else 0 for c in corners]
                    for k in range(1, len(vi) - 1):
                        faces.append((vi[0], vi[k], vi[k + 1]))
                        face_uv.append((ti[0], ti[k], ti[k + 1]))
                        mats.append(material)
                elif line.startswith("usemtl "):
                    material = line.split(maxsplit=1)[1].strip()
    except OSError as e:
        raise InputError(f"cannot read OBJ {path}: {e}") from e
    if not verts or not faces:
        raise InputError(f"{path}: an OBJ avatar needs vertices and faces")
    try:
        v = np.asarray(verts, np.float32)
        fa = np.asarray(faces, np.int64)
    except ValueError as e:
        raise InputError(f"{path}: malformed OBJ: {e}") from e
    fa = np.where(fa < 0, fa + len(v), fa - 1)
    if fa.min() < 0 or fa.max() >= len(v):
        raise InputError(f"{path}: a face refers to a vertex that does not exist")
    uvs = None
    if tex:
        t = np.asarray(tex, np.float32)
        fu = np.asarray(face_uv, np.int64) - 1
        if (fu >= 0).all():
            uvs = np.zeros((len(v), 2), np.float32)
            uvs[fa.ravel()] = t[fu.ravel()]
    return v, fa, uvs, np.asarray(mats)


def load_obj_avatar(
    path: str | Path, targets_dir: str | Path | None = None, profile: str = "arkit52"
) -> Avatar:
    """An avatar from a neutral OBJ and one OBJ per target (file stem = target name)."""
    path = Path(path)
    neutral, faces, uvs, _ = read_obj(path)
    folder = Path(targets_dir) if targets_dir is not None else path.with_name(path.stem + "_targets")
    files = sorted(folder.glob("*.obj")) if folder.is_dir() else []
    deltas = []
    for f in files:
        v, *_ = read_obj(f)
        if v.shape != neutral.shape:
            raise InputError(f"{f}: {len(v)} vertices, but the neutral {path.name} has {len(neutral)}")
        deltas.append(v - neutral)
    return Avatar(
        name=path.stem,
        neutral=neutral,
        deltas=np.asarray(deltas, np.float32).reshape(len(files), len(neutral), 3),
        target_names=tuple(f.stem for f in files),
        faces=faces,
        profile=profile,
        uvs=uvs,
    )


def ict_dir() -> Path:
    """``$AVATAR_BRIDGE_ICT_DIR`` or the project's shared data beside the checkout."""
    env = os.environ.get(ICT_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "ict_facekit"


def load_ict(folder: str | Path | None = None) -> Avatar:
    """The ICT-FaceKit generic head (MIT) with its 57 ARKit-style (``_L``/``_R``) expression shapes."""
    folder = Path(folder) if folder is not None else ict_dir()
    obj, npz = folder / "generic_neutral_mesh.obj", folder / "ict_expression_deltas.npz"
    if not obj.is_file() or not npz.is_file():
        raise InputError(
            f"ICT-FaceKit head not found in {folder}: it needs generic_neutral_mesh.obj and "
            f"ict_expression_deltas.npz (set ${ICT_ENV})"
        )
    with np.load(npz, allow_pickle=False) as d:
        neutral, deltas, names = d["neutral"], d["deltas"], tuple(str(n) for n in d["names"])
    _, faces, uvs, mats = read_obj(obj)
    keep = np.isin(mats, list(ICT_MATERIAL_COLORS))
    faces, mats = faces[keep], mats[keep]
    used = int(faces.max()) + 1  # drawn vertices form a prefix of the file's order
    colors = np.tile(np.asarray(DEFAULT_SKIN, np.float32), (used, 1))
    for name, color in ICT_MATERIAL_COLORS.items():
        colors[np.unique(faces[mats == name])] = color
    for start, stop, color in ICT_RANGE_COLORS:
        colors[start:stop] = color
    return Avatar(
        name="ict_facekit",
        neutral=neutral[:used].astype(np.float32),
        deltas=np.ascontiguousarray(deltas[:, :used], np.float32),
        target_names=names,
        faces=faces,
        profile=ICT_PROFILE,
        colors=colors,
        uvs=None if uvs is None else uvs[:used],
        frame_vertices=np.arange(*ICT_FRAME_VERTICES),
        meta={"source": "ICT-FaceKit (MIT), USC Institute for Creative Technologies"},
    )


def default_avatar_path() -> Path:
    return data_dir("models") / DEFAULT_AVATAR_FILE


def load_avatar(spec: str | os.PathLike[str] = "default", profile: str | None = None) -> Avatar:
    """``default`` (models/default_avatar.npz), ``ict`` or a .npz/.glb/.gltf/.obj path."""
    s = str(spec)
    if s == "default":
        path = default_avatar_path()
        if not path.is_file():
            raise ModelError(f"default avatar {path} is missing; build it with: avatar-bridge avatar build")
        return load_avatar_npz(path)
    if s == "ict":
        return load_ict()
    path = Path(s).expanduser()
    if not path.is_file():
        raise InputError(f"avatar file not found: {path} (use default, ict or a .npz/.glb/.gltf/.obj file)")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        avatar = load_avatar_npz(path)
        return avatar if profile is None else _with_profile(avatar, profile)
    if suffix in (".glb", ".gltf"):
        from avatar_bridge.render.gltf import load_gltf

        return load_gltf(path, profile or "arkit52")
    if suffix == ".obj":
        return load_obj_avatar(path, profile=profile or "arkit52")
    raise InputError(f"{path}: unknown avatar format {suffix!r} (use .npz, .glb, .gltf or .obj)")


def _with_profile(avatar: Avatar, profile: str) -> Avatar:
    from dataclasses import replace

    return replace(avatar, profile=profile)
