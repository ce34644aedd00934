"""Rig profiles: which source channels drive each target of a rig, loaded from TOML and validated.

A profile is data (``blendshapes/profiles/<name>.toml``). Each target is a weighted sum of
source channels (the 52 ARKit blendshapes, 0-1, and the 17 AU intensities scaled to 0-1 by
dividing by 5), then ``gain``, ``offset``, a response ``curve`` and a ``clamp``::

    [profile]
    name = "vrm0"
    description = "VRM 0.x presets"
    mirror = false                  # swap the subject's Left/Right sources
    spellings = ["apple"]           # target spellings this profile may be written in

    [defaults]                      # optional: defaults for every target
    clamp = [0.0, 1.0]

    [[target]]
    name = "Joy"
    sources = { cheekSquintLeft = 0.5, cheekSquintRight = 0.5 }
    gain = 1.2                      # optional, default 1
    offset = 0.0                    # optional, default 0
    curve = "linear"                # linear | power (with exponent) | smoothstep
    clamp = [0.0, 1.0]

``source = "eyeBlinkLeft"`` is shorthand for ``sources = { eyeBlinkLeft = 1.0 }``. Validation
collects every problem (unknown source, duplicate target, bad number, unknown key) and raises one
:class:`ConfigError` naming the file and the key of each.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES, AU_INTENSITY
from avatar_bridge.errors import ConfigError
from avatar_bridge.fileio import read_toml
from avatar_bridge.resources import data_dir
from avatar_bridge.retarget.naming import SPELLINGS, respell

#: Every source channel a profile may name: ARKit blendshapes, then AU intensities.
SOURCE_NAMES: tuple[str, ...] = (*ARKIT_NAMES, *AU_INTENSITY)
SOURCE_INDEX: dict[str, int] = {n: i for i, n in enumerate(SOURCE_NAMES)}
#: AU intensities are 0-5; as profile sources they are divided by this to share the 0-1 scale.
AU_SCALE = 5.0

_TARGET_KEYS = frozenset(
    {"name", "source", "sources", "gain", "offset", "clamp", "curve", "exponent", "description"}
)
_DEFAULT_KEYS = frozenset({"gain", "offset", "clamp", "curve", "exponent"})
_PROFILE_KEYS = frozenset({"name", "description", "mirror", "spellings"})
_TOP_KEYS = frozenset({"profile", "defaults", "target"})


class Curve(StrEnum):
    LINEAR = "linear"
    POWER = "power"  # sign(x) * |x| ** exponent
    SMOOTHSTEP = "smoothstep"  # 3x^2 - 2x^3 on 0..1 (odd-symmetric outside)


@dataclass(frozen=True, slots=True)
class Target:
    """One rig target: ``clamp(curve(gain * sum(w * source) + offset))``."""

    name: str
    sources: dict[str, float]
    gain: float = 1.0
    offset: float = 0.0
    clamp: tuple[float, float] = (0.0, 1.0)
    curve: Curve = Curve.LINEAR
    exponent: float = 1.0
    description: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile plus its compiled arrays (see :meth:`compile`)."""

    name: str
    targets: tuple[Target, ...]
    description: str = ""
    mirror: bool = False
    spellings: tuple[str, ...] = ("apple",)
    path: Path | None = None
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)

    def with_spelling(self, spelling: str) -> Profile:
        """This profile with every target name written in ``spelling`` (one of its ``spellings``)."""
        if spelling not in self.spellings:
            raise ConfigError(
                f"profile {self.name} does not offer spelling {spelling!r}; "
                f"it offers {', '.join(self.spellings)}"
            )
        targets = tuple(replace(t, name=respell(t.name, spelling)) for t in self.targets)
        _check_duplicates([t.name for t in targets], f"profile {self.name} in spelling {spelling}")
        return replace(self, targets=targets, _compiled={})

    def with_mirror(self, mirror: bool) -> Profile:
        return self if mirror == self.mirror else replace(self, mirror=mirror, _compiled={})

    def compile(self) -> CompiledProfile:
        """Dense arrays for fast evaluation (cached)."""
        if "c" not in self._compiled:
            self._compiled["c"] = CompiledProfile.build(self)
        return self._compiled["c"]


def mirror_permutation() -> np.ndarray:
    """Index array over SOURCE_NAMES that swaps every ...Left source with its ...Right twin."""
    perm = np.arange(len(SOURCE_NAMES))
    for i, name in enumerate(SOURCE_NAMES):
        for a, b in (("Left", "Right"), ("Right", "Left")):
            if name.endswith(a):
                twin = name[: -len(a)] + b
                if twin in SOURCE_INDEX:
                    perm[i] = SOURCE_INDEX[twin]
    return perm


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    """A profile as arrays: ``W`` (targets x sources), gains, offsets, clamps, curve codes."""

    names: tuple[str, ...]
    weights: np.ndarray
    used: np.ndarray  # (targets, sources) bool: which sources each target reads
    gain: np.ndarray
    offset: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    curve: np.ndarray  # Curve index per target
    exponent: np.ndarray
    perm: np.ndarray  # source permutation (mirroring)

    @classmethod
    def build(cls, profile: Profile) -> CompiledProfile:
        n = len(profile.targets)
        w = np.zeros((n, len(SOURCE_NAMES)))
        for i, t in enumerate(profile.targets):
            for src, weight in t.sources.items():
                w[i, SOURCE_INDEX[src]] = weight
        curves = list(Curve)
        perm = mirror_permutation() if profile.mirror else np.arange(len(SOURCE_NAMES))
        return cls(
            names=profile.target_names,
            weights=w,
            used=w != 0,
            gain=np.array([t.gain for t in profile.targets], dtype=np.float64),
            offset=np.array([t.offset for t in profile.targets], dtype=np.float64),
            lo=np.array([t.clamp[0] for t in profile.targets], dtype=np.float64),
            hi=np.array([t.clamp[1] for t in profile.targets], dtype=np.float64),
            curve=np.array([curves.index(t.curve) for t in profile.targets], dtype=np.int64),
            exponent=np.array([t.exponent for t in profile.targets], dtype=np.float64),
            perm=perm,
        )

    def apply(self, sources: np.ndarray) -> np.ndarray:
        """Target values for ``sources`` (SOURCE_NAMES order; NaN = untracked, contributes nothing).

        A target whose every source is untracked takes its neutral value (that of all-zero sources).
        """
        s = np.asarray(sources, dtype=np.float64)[self.perm]
        tracked = np.isfinite(s)
        v = self.weights @ np.where(tracked, s, 0.0)
        return self.shape(v)

    def shape(self, v: np.ndarray) -> np.ndarray:
        """gain, offset, curve and clamp applied to weighted sums ``v``."""
        x = self.gain * v + self.offset
        power = self.curve == 1
        if power.any():
            x = np.where(power, np.sign(x) * np.abs(x) ** self.exponent, x)
        smooth = self.curve == 2
        if smooth.any():
            a = np.clip(np.abs(x), 0.0, 1.0)
            x = np.where(smooth, np.sign(x) * a * a * (3.0 - 2.0 * a), x)
        return np.clip(x, self.lo, self.hi)

    @property
    def neutral(self) -> np.ndarray:
        """Target values when every source is at rest (0)."""
        return self.shape(np.zeros(len(self.names)))


# ----------------------------------------------------------------------------- loading


def profiles_dir() -> Path:
    return data_dir("blendshapes") / "profiles"


def available_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(
    name_or_path: str | Path, spelling: str | None = None, mirror: bool | None = None
) -> Profile:
    """A shipped profile by name (``vrm0``) or a profile file by path, validated.

    ``spelling`` rewrites target names (e.g. ``unity`` for ``EyeBlinkLeft``); ``mirror`` overrides
    the profile's own switch.
    """
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix == ".toml" or path.exists()):
        path = profiles_dir() / f"{text}.toml"
        if not path.is_file():
            raise ConfigError(
                f"unknown profile {text!r}; shipped profiles: {', '.join(available_profiles())}"
            )
    elif not path.is_file():
        raise ConfigError(f"profile file not found: {path}")
    profile = parse_profile(path)
    if spelling is not None:
        profile = profile.with_spelling(spelling)
    if mirror is not None:
        profile = profile.with_mirror(mirror)
    return profile


def parse_profile(path: str | Path) -> Profile:
    """Read and validate one profile file; every problem is listed in one ConfigError."""
    path = Path(path)
    data = read_toml(path, "profile")
    return profile_from_dict(data, origin=str(path), path=path)


def profile_from_dict(data: dict, origin: str = "<profile>", path: Path | None = None) -> Profile:
    """Build a validated :class:`Profile` from parsed TOML ``data``."""
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown section (expected profile, defaults, target)")
    head = data.get("profile", {})
    if not isinstance(head, dict):
        head, _ = {}, problems.append("profile: must be a table")
    for key in head:
        if key not in _PROFILE_KEYS:
            problems.append(f"profile.{key}: unknown key")
    name = head.get("name", path.stem if path else "")
    if not isinstance(name, str) or not name:
        problems.append("profile.name: must be a non-empty string")
        name = "?"
    mirror = head.get("mirror", False)
    if not isinstance(mirror, bool):
        problems.append(f"profile.mirror: must be true or false, got {mirror!r}")
        mirror = False
    spellings = head.get("spellings", ["apple"])
    if not isinstance(spellings, list) or not all(isinstance(s, str) and s in SPELLINGS for s in spellings):
        problems.append(
            f"profile.spellings: must be a list drawn from {', '.join(SPELLINGS)}, got {spellings!r}"
        )
        spellings = ["apple"]
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        defaults, _ = {}, problems.append("defaults: must be a table")
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            problems.append(f"defaults.{key}: unknown key (allowed: {', '.join(sorted(_DEFAULT_KEYS))})")
    raw_targets = data.get("target", [])
    if not isinstance(raw_targets, list) or not raw_targets:
        problems.append("target: a profile needs at least one [[target]]")
        raw_targets = []
    targets: list[Target] = []
    for i, raw in enumerate(raw_targets):
        target = _parse_target(raw, defaults, i, problems)
        if target is not None:
            targets.append(target)
    dup = _duplicates([t.name for t in targets])
    problems.extend(f"target {d!r}: duplicate target" for d in dup)
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))
    return Profile(
        name=name,
        targets=tuple(targets),
        description=str(head.get("description", "")),
        mirror=mirror,
        spellings=tuple(spellings),
        path=path,
    )


def _number(value: object, where: str, problems: list[str], positive: bool = False) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{where}: must be a finite number, got {value!r}")
        return None
    if positive and value <= 0:
        problems.append(f"{where}: must be > 0, got {value!r}")
        return None
    return float(value)


def _parse_target(raw: object, defaults: dict, i: int, problems: list[str]) -> Target | None:
    if not isinstance(raw, dict):
        problems.append(f"target[{i}]: must be a table")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"target[{i}].name: must be a non-empty string")
        return None
    where = f"target {name!r}"
    for key in raw:
        if key not in _TARGET_KEYS:
            problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(_TARGET_KEYS))})")
    if ("source" in raw) == ("sources" in raw):
        problems.append(f'{where}: give exactly one of source = "name" or sources = {{ name = weight }}')
        return None
    sources = {raw["source"]: 1.0} if "source" in raw else raw["sources"]
    if not isinstance(sources, dict) or not sources:
        problems.append(f"{where}.sources: must be a non-empty table of source = weight")
        return None
    clean: dict[str, float] = {}
    for src, w in sources.items():
        if src not in SOURCE_INDEX:
            hint = difflib.get_close_matches(str(src), SOURCE_NAMES, n=1)
            problems.append(
                f"{where}.sources.{src}: unknown source" + (f" (did you mean {hint[0]}?)" if hint else "")
            )
            continue
        weight = _number(w, f"{where}.sources.{src}", problems)
        if weight is not None:
            clean[src] = weight
    merged = {**defaults, **{k: v for k, v in raw.items() if k in _DEFAULT_KEYS}}
    gain = _number(merged.get("gain", 1.0), f"{where}.gain", problems)
    offset = _number(merged.get("offset", 0.0), f"{where}.offset", problems)
    exponent = _number(merged.get("exponent", 1.0), f"{where}.exponent", problems, positive=True)
    clamp = merged.get("clamp", [0.0, 1.0])
    lo = hi = None
    if not isinstance(clamp, list) or len(clamp) != 2:
        problems.append(f"{where}.clamp: must be [low, high], got {clamp!r}")
    else:
        lo = _number(clamp[0], f"{where}.clamp[0]", problems)
        hi = _number(clamp[1], f"{where}.clamp[1]", problems)
        if lo is not None and hi is not None and lo >= hi:
            problems.append(f"{where}.clamp: low must be below high, got {clamp!r}")
    curve_name = merged.get("curve", "linear")
    try:
        curve = Curve(curve_name)
    except ValueError:
        problems.append(
            f"{where}.curve: must be one of {', '.join(c.value for c in Curve)}, got {curve_name!r}"
        )
        curve = None
    if None in (gain, offset, exponent, lo, hi, curve) or len(clean) != len(sources):
        return None
    return Target(name, clean, gain, offset, (lo, hi), curve, exponent, str(raw.get("description", "")))  # type: ignore[arg-type]


def _duplicates(names: list[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    return dup


def _check_duplicates(names: list[str], where: str) -> None:
    dup = _duplicates(names)
    if dup:
        raise ConfigError(f"{where}: duplicate target(s) {', '.join(dup)}")


def source_vector(blendshapes: np.ndarray | None, au_intensity: np.ndarray | None) -> np.ndarray:
    """Sources in SOURCE_NAMES order; a missing part is NaN (untracked)."""
    out = np.full(len(SOURCE_NAMES), np.nan)
    if blendshapes is not None:
        out[: len(ARKIT_NAMES)] = blendshapes
    if au_intensity is not None:
        out[len(ARKIT_NAMES) :] = np.asarray(au_intensity, dtype=np.float64) / AU_SCALE
    return out
