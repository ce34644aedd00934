"""Write a profile for a rig's own shape-key names, with an explicit report of how each matched.

Each rig name is looked up, in order, as: an ARKit or AU source spelled exactly the same
(``exact``), the same ignoring case (``case-insensitive``), the same up to a known spelling variant
such as ``eyeBlink_L`` or ``EyeBlinkLeft`` (``spelling variant``), or the exact target name of a
shipped profile (``profile <name>``, whose definition is copied). Anything else is ``unmatched``
and left out of the profile: no silent guesses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from avatar_bridge.errors import InputError
from avatar_bridge.fileio import write_text_atomic
from avatar_bridge.retarget.naming import canonical_key
from avatar_bridge.retarget.profile import (
    SOURCE_NAMES,
    Profile,
    Target,
    available_profiles,
    load_profile,
)

MESH_SUFFIXES = frozenset({".glb", ".gltf", ".obj", ".ply", ".fbx", ".dae", ".npz"})


@dataclass(frozen=True, slots=True)
class MatchEntry:
    """How one rig name matched: ``how`` in exact | case-insensitive | spelling variant |
    profile <name> | unmatched; ``source`` the source (or profile target) it maps to."""

    name: str
    how: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class MatchResult:
    profile: Profile | None
    entries: tuple[MatchEntry, ...]

    @property
    def unmatched(self) -> list[str]:
        return [e.name for e in self.entries if e.how == "unmatched"]

    def report(self) -> str:
        """A plain-text table: one line per rig name, then counts per kind of match."""
        width = max((len(e.name) for e in self.entries), default=4)
        how_width = max((len(e.how) for e in self.entries), default=4)
        lines = [f"{e.name:<{width}}  {e.how:<{how_width}}  {e.source}".rstrip() for e in self.entries]
        counts: dict[str, int] = {}
        for e in self.entries:
            key = "profile" if e.how.startswith("profile ") else e.how
            counts[key] = counts.get(key, 0) + 1
        lines.append("")
        lines.append(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" (of {len(self.entries)})")
        return "\n".join(lines)


def read_rig_names(spec: str | os.PathLike[str] | Iterable[str]) -> list[str]:
    """Shape-key names from a text file (one per line; # comments), a mesh file (glTF morph target
    names and other formats trimesh reads; an .npz with a ``names`` array) or a list of names."""
    if not isinstance(spec, str | os.PathLike):
        return [str(n) for n in spec]
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"rig names file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            if "names" not in data:
                raise InputError(f"{path} has no 'names' array")
            return [str(n) for n in data["names"]]
    if suffix in (".gltf", ".glb"):
        return _gltf_target_names(path)
    if suffix in MESH_SUFFIXES:
        return _trimesh_names(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is neither a text file of names nor a known mesh format") from e
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"{path} lists no shape-key names")
    return names


def _gltf_target_names(path: Path) -> list[str]:
    """Morph-target names of every mesh (``mesh.extras.targetNames``, the glTF convention)."""
    try:
        doc = (
            _glb_json(path) if path.suffix.lower() == ".glb" else json.loads(path.read_text(encoding="utf-8"))
        )
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read glTF {path}: {e}") from e
    names: list[str] = []
    for mesh in doc.get("meshes", []):
        for n in (mesh.get("extras") or {}).get("targetNames", []):
            if n not in names:
                names.append(str(n))
    if not names:
        raise InputError(f"{path} has no named morph targets (mesh.extras.targetNames)")
    return names


def _glb_json(path: Path) -> dict:
    import struct

    data = path.read_bytes()
    if data[:4] != b"glTF" or len(data) < 20:
        raise ValueError("not a GLB file")
    length, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise ValueError("first GLB chunk is not JSON")
    return json.loads(data[20 : 20 + length].decode("utf-8"))


def _trimesh_names(path: Path) -> list[str]:
    import trimesh

    try:
        scene = trimesh.load(path, force="scene")
    except Exception as e:  # trimesh raises many types for unreadable files
        raise InputError(f"trimesh cannot read {path}: {e}") from e
    names: list[str] = []
    for geom in scene.geometry.values():
        for key in ("target_names", "shape_keys", "morph_targets"):
            for n in geom.metadata.get(key, []) or []:
                if n not in names:
                    names.append(str(n))
    if not names:
        raise InputError(f"{path} carries no shape-key names trimesh can see; pass a text file of names")
    return names


def match_names(names: Iterable[str], profile_name: str = "matched") -> MatchResult:
    """Match rig ``names`` to sources and shipped profile targets; see the module docstring."""
    by_exact = {n: n for n in SOURCE_NAMES}
    by_lower = {n.lower(): n for n in SOURCE_NAMES}
    by_key = {canonical_key(n): n for n in SOURCE_NAMES}
    shipped: dict[str, tuple[str, Target]] = {}
    for pname in available_profiles():
        for t in load_profile(pname).targets:
            shipped.setdefault(t.name, (pname, t))
    entries: list[MatchEntry] = []
    targets: list[Target] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        if name in by_exact:
            entry, target = MatchEntry(name, "exact", name), Target(name, {name: 1.0})
        elif name.lower() in by_lower:
            src = by_lower[name.lower()]
            entry, target = MatchEntry(name, "case-insensitive", src), Target(name, {src: 1.0})
        elif canonical_key(name) in by_key:
            src = by_key[canonical_key(name)]
            entry, target = MatchEntry(name, "spelling variant", src), Target(name, {src: 1.0})
        elif name in shipped:
            pname, t = shipped[name]
            entry = MatchEntry(
                name, f"profile {pname}", " + ".join(f"{w:g}*{s}" for s, w in t.sources.items())
            )
            target = t
        else:
            entries.append(MatchEntry(name, "unmatched"))
            continue
        entries.append(entry)
        targets.append(target)
    profile = (
        Profile(
            name=profile_name, targets=tuple(targets), description="written by avatar-bridge profiles match"
        )
        if targets
        else None
    )
    return MatchResult(profile, tuple(entries))


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def profile_to_toml(profile: Profile, header: str = "") -> str:
    """TOML text of ``profile`` in the shipped profiles' format (loads back to an equal profile)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [
        "[profile]",
        f"name = {_toml_str(profile.name)}",
        f"description = {_toml_str(profile.description)}",
        f"mirror = {'true' if profile.mirror else 'false'}",
        "spellings = [" + ", ".join(_toml_str(s) for s in profile.spellings) + "]",
        "",
    ]
    for t in profile.targets:
        lines += ["[[target]]", f"name = {_toml_str(t.name)}"]
        if list(t.sources.values()) == [1.0]:
            lines.append(f"source = {_toml_str(next(iter(t.sources)))}")
        else:
            lines.append(
                "sources = { " + ", ".join(f"{_toml_str(s)} = {w!r}" for s, w in t.sources.items()) + " }"
            )
        if t.gain != 1.0:
            lines.append(f"gain = {t.gain!r}")
        if t.offset != 0.0:
            lines.append(f"offset = {t.offset!r}")
        if t.clamp != (0.0, 1.0):
            lines.append(f"clamp = [{t.clamp[0]!r}, {t.clamp[1]!r}]")
        if t.curve.value != "linear":
            lines.append(f"curve = {_toml_str(t.curve.value)}")
        if t.exponent != 1.0:
            lines.append(f"exponent = {t.exponent!r}")
        if t.description:
            lines.append(f"description = {_toml_str(t.description)}")
        lines.append("")
    return "\n".join(lines)


def write_profile(profile: Profile, path: str | os.PathLike[str], header: str = "") -> Path:
    """Write ``profile`` as TOML (temp file, then rename)."""
    return write_text_atomic(path, profile_to_toml(profile, header), "profile")
