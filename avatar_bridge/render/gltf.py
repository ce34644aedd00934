"""glTF 2.0 / GLB morph targets in and out (trimesh reads glTF meshes but not their morph targets).

Reads the first mesh that has morph targets (every triangle primitive of it, concatenated), with
target names from ``mesh.extras.targetNames`` (the convention Blender and three.js use). Node
transforms are not applied: avatars are expected in their own model space.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.fileio import atomic_path
from avatar_bridge.render.avatar import Avatar

_COMPONENTS = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_GLB_MAGIC = 0x46546C67


def _read_container(path: Path) -> tuple[dict, list[bytes]]:
    raw = path.read_bytes()
    if raw[:4] == b"glTF":
        magic, _version, _length = struct.unpack_from("<III", raw, 0)
        off, doc, bins = 12, None, []
        while off < len(raw):
            n, kind = struct.unpack_from("<II", raw, off)
            chunk = raw[off + 8 : off + 8 + n]
            if kind == 0x4E4F534A:
                doc = json.loads(chunk)
            elif kind == 0x004E4942:
                bins.append(chunk)
            off += 8 + n
        if doc is None:
            raise InputError(f"{path}: GLB without a JSON chunk")
    else:
        doc = json.loads(raw)
        bins = []
    buffers = []
    for i, b in enumerate(doc.get("buffers", [])):
        uri = b.get("uri")
        if uri is None:
            buffers.append(bins[i] if i < len(bins) else b"")
        elif uri.startswith("data:"):
            buffers.append(base64.b64decode(uri.split(",", 1)[1]))
        else:
            buffers.append((path.parent / uri).read_bytes())
    return doc, buffers


def _accessor(doc: dict, buffers: list[bytes], index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    dtype = np.dtype(_COMPONENTS[acc["componentType"]])
    width = _WIDTH[acc["type"]]
    count = acc["count"]
    out = np.zeros((count, width), dtype)
    if "bufferView" in acc:
        view = doc["bufferViews"][acc["bufferView"]]
        data = buffers[view["buffer"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        stride = view.get("byteStride") or dtype.itemsize * width
        arr = np.ndarray((count, width), dtype, buffer=data, offset=start, strides=(stride, dtype.itemsize))
        out = arr.copy()
    sparse = acc.get("sparse")
    if sparse:
        idx_view = doc["bufferViews"][sparse["indices"]["bufferView"]]
        idx_dtype = np.dtype(_COMPONENTS[sparse["indices"]["componentType"]])
        idx = np.frombuffer(
            buffers[idx_view["buffer"]], idx_dtype, sparse["count"],
            idx_view.get("byteOffset", 0) + sparse["indices"].get("byteOffset", 0),
        )  # fmt: skip
        val_view = doc["bufferViews"][sparse["values"]["bufferView"]]
        vals = np.frombuffer(
            buffers[val_view["buffer"]], dtype, sparse["count"] * width,
            val_view.get("byteOffset", 0) + sparse["values"].get("byteOffset", 0),
        ).reshape(-1, width)  # fmt: skip
        out[idx] = vals
    return out


def load_gltf(path: str | Path, profile: str = "arkit52") -> Avatar:
    """An :class:`Avatar` from a .glb/.gltf file's morph targets."""
    path = Path(path)
    try:
        doc, buffers = _read_container(path)
        mesh = next(
            (m for m in doc.get("meshes", []) if any(p.get("targets") for p in m["primitives"])), None
        )
        if mesh is None:
            raise InputError(f"{path}: no mesh with morph targets (blendshapes)")
        names = tuple(mesh.get("extras", {}).get("targetNames", ()))
        verts, deltas, faces, colors, uvs, base = [], [], [], [], [], 0
        for prim in mesh["primitives"]:
            if prim.get("mode", 4) != 4 or not prim.get("targets"):
                continue
            pos = _accessor(doc, buffers, prim["attributes"]["POSITION"]).astype(np.float32)
            if "indices" in prim:
                idx = _accessor(doc, buffers, prim["indices"]).reshape(-1, 3).astype(np.int64)
            else:
                idx = np.arange(len(pos)).reshape(-1, 3)
            verts.append(pos)
            faces.append(idx + base)
            deltas.append(np.stack([_accessor(doc, buffers, t["POSITION"]) for t in prim["targets"]]))
            attrs = prim["attributes"]
            colors.append(
                _accessor(doc, buffers, attrs["COLOR_0"])[:, :3].astype(np.float32)
                if "COLOR_0" in attrs
                else None
            )
            uvs.append(
                _accessor(doc, buffers, attrs["TEXCOORD_0"]).astype(np.float32)
                if "TEXCOORD_0" in attrs
                else None
            )
            base += len(pos)
    except InputError:
        raise
    except (OSError, KeyError, IndexError, ValueError, struct.error, StopIteration) as e:
        raise InputError(f"{path} is not a readable glTF/GLB avatar: {e}") from e
    n_targets = {d.shape[0] for d in deltas}
    if len(n_targets) != 1:
        raise InputError(f"{path}: primitives disagree on the number of morph targets {sorted(n_targets)}")
    t = n_targets.pop()
    if len(names) != t:
        names = tuple(f"target{i}" for i in range(t))
    # glTF is +y up, +z towards the viewer and counter-clockwise front faces, as we are.
    # glTF UV origin is the top-left corner; ours (OBJ's) is the bottom-left.
    uv = None if any(u is None for u in uvs) else np.concatenate(uvs) * np.array([1, -1]) + np.array([0, 1])
    return Avatar(
        name=path.stem,
        neutral=np.concatenate(verts),
        deltas=np.concatenate(deltas, axis=1).astype(np.float32),
        target_names=names,
        faces=np.concatenate(faces),
        profile=profile,
        colors=None if any(c is None for c in colors) else np.concatenate(colors),
        uvs=None if uv is None else uv.astype(np.float32),
    )


def save_glb(avatar: Avatar, path: str | Path) -> Path:
    """Write ``avatar`` as a GLB with one morph target per blendshape (for Blender, three.js, Unity)."""
    path = Path(path)
    blobs: list[bytes] = []
    views, accessors = [], []

    def add(array: np.ndarray, kind: str, target: int | None = None, minmax: bool = False) -> int:
        data = np.ascontiguousarray(array)
        offset = sum(len(b) for b in blobs)
        blob = data.tobytes()
        blobs.append(blob + b"\0" * (-len(blob) % 4))
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        views.append(view)
        comp = 5125 if data.dtype == np.uint32 else 5126
        acc = {"bufferView": len(views) - 1, "componentType": comp, "count": int(data.shape[0]), "type": kind}
        if minmax:
            acc["min"] = data.min(axis=0).tolist()
            acc["max"] = data.max(axis=0).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    attrs = {"POSITION": add(avatar.neutral.astype(np.float32), "VEC3", 34962, minmax=True)}
    attrs["COLOR_0"] = add(avatar.vertex_colors().astype(np.float32), "VEC3", 34962)
    if avatar.uvs is not None:
        uv = avatar.uvs * np.array([1, -1], np.float32) + np.array([0, 1], np.float32)
        attrs["TEXCOORD_0"] = add(uv.astype(np.float32), "VEC2", 34962)
    indices = add(avatar.faces.astype(np.uint32).reshape(-1), "SCALAR", 34963)
    targets = [{"POSITION": add(d.astype(np.float32), "VEC3", 34962, minmax=True)} for d in avatar.deltas]
    doc = {
        "asset": {"version": "2.0", "generator": "avatar-bridge"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": avatar.name}],
        "meshes": [
            {
                "name": avatar.name,
                "primitives": [{"attributes": attrs, "indices": indices, "mode": 4, "targets": targets}],
                "weights": [0.0] * len(targets),
                "extras": {"targetNames": list(avatar.target_names)},
            }
        ],  # fmt: skip
        "buffers": [{"byteLength": sum(len(b) for b in blobs)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(js) + 8 + len(binary)
    out = struct.pack("<III", _GLB_MAGIC, 2, total)
    out += struct.pack("<II", len(js), 0x4E4F534A) + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    with atomic_path(path, "glTF file") as tmp:
        tmp.write_bytes(out)
    return path
