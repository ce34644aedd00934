"""What the spotter watches: channels (flow patches or landmark groups), their regions, sides and
AU cues, read from ``blendshapes/micro_spotting.toml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_bridge.errors import ConfigError
from avatar_bridge.fileio import read_toml
from avatar_bridge.micro.features import GROUP_NAMES, GROUP_REGION, GROUP_SIDE, REGION_NAMES
from avatar_bridge.micro.spotting.flowtracks import ALIGNED_FACE_WIDTH, Patch
from avatar_bridge.micro.spotting.regionflow import REGION_CHANNELS, REGIONS
from avatar_bridge.resources import data_dir

SPOTTING_FILE = "micro_spotting.toml"
_REGIONS = frozenset({"left_eye", "right_eye", "brows", "mouth", "nose"})  # of patches
_EYES = frozenset({"left_eye", "right_eye", "brows"})
#: The flow layout's last two channels: the face's rigid motion at the top and bottom of the patches.
RIGID_CHANNELS = ("rigid_upper", "rigid_lower")


@dataclass(frozen=True, slots=True)
class Layout:
    """Channels of one signal kind. ``regions`` per channel ('brows' = both eyes' regions);
    ``cues`` per channel: tuple of (AU, unit direction (x to the subject's left, y up))."""

    names: tuple[str, ...]
    regions: tuple[str, ...]
    sides: tuple[str, ...]
    cues: tuple[tuple[tuple[str, np.ndarray], ...], ...]
    #: (C, 2) where each channel sits on the face (x to the subject's left, y up, px at 640 px face
    #: width; as the tracks), or None when unknown; used to tell a rigid head movement (a
    #: similarity transform of all channels) from a local expression.
    centres: np.ndarray | None = None
    #: Channels that one AU moves together (index arrays), whose evidence may be pooled.
    groups: tuple[np.ndarray, ...] = ()
    #: AU templates: (channel indices, (k, 2) unit directions in which that AU moves them).
    templates: tuple[tuple[np.ndarray, np.ndarray], ...] = ()

    @property
    def eye(self) -> np.ndarray:
        return np.array([r in _EYES for r in self.regions])

    @property
    def nose(self) -> np.ndarray:
        return np.array([r == "nose" for r in self.regions])

    @property
    def rigid(self) -> np.ndarray:
        """The channels of the face's rigid motion (:data:`RIGID_CHANNELS`), never an expression's."""
        return np.array([r == "rigid" for r in self.regions])

    def region_names(self, mask: np.ndarray) -> list[str]:
        """Sorted face regions ('left_eye', 'right_eye', 'mouth') of the channels in ``mask``."""
        out: set[str] = set()
        for i in np.flatnonzero(mask):
            r = self.regions[i]
            out |= {"left_eye", "right_eye"} if r == "brows" else {r}
        return sorted(out - {"nose", "rigid"})


@dataclass(frozen=True, slots=True)
class SpottingConfig:
    patches: tuple[Patch, ...]
    rigid: tuple[int, int, int, int]
    flow: Layout
    landmarks: Layout
    #: The dense-flow region channels (:mod:`regionflow`); no centres: strain is not a point.
    regions: Layout


def _cues(table: dict, names: tuple[str, ...], path: Path) -> tuple:
    out = []
    for n in names:
        spec = table.get(n, {})
        try:
            items = tuple((str(au), np.asarray(v, dtype=np.float64) / np.hypot(*v)) for au, v in spec.items())
        except (TypeError, ValueError, ZeroDivisionError) as e:
            raise ConfigError(f"{path}: cues.{n} must map AU names to [dx, dy] directions: {e}") from e
        out.append(items)
    return tuple(out)


def _groups(spec: list, names: tuple[str, ...], path: Path) -> tuple[np.ndarray, ...]:
    out = []
    for g in spec:
        if not isinstance(g, list) or len(g) < 2 or any(n not in names for n in g):
            raise ConfigError(f"{path}: each of groups must list two or more patch names, got {g}")
        out.append(np.array([names.index(n) for n in g]))
    return tuple(out)


def _templates(table: dict, names: tuple[str, ...], path: Path) -> tuple:
    out = []
    for name, spec in table.items():
        if not isinstance(spec, dict) or len(spec) < 2:
            raise ConfigError(f"{path}: templates.{name} must map two or more patch names to directions")
        try:
            idx = np.array([names.index(n) for n in spec])
            dirs = np.array([np.asarray(v, dtype=np.float64) / np.hypot(*v) for v in spec.values()])
        except (TypeError, ValueError, ZeroDivisionError) as e:
            raise ConfigError(
                f"{path}: templates.{name} must map patch names to [dx, dy] directions: {e}"
            ) from e
        out.append((idx, dirs))
    return tuple(out)


def load_config(path: Path | None = None) -> SpottingConfig:
    """Read the patches, the rigid box and the AU cues."""
    path = Path(path) if path is not None else data_dir("blendshapes") / SPOTTING_FILE
    data = read_toml(path, "spotting configuration")
    try:
        patches = tuple(Patch(str(p["name"]), str(p["region"]), str(p["side"]),
                              tuple(int(v) for v in p["box"])) for p in data["patches"])  # fmt: skip
        rigid = tuple(int(v) for v in data["rigid"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(
            f"{path}: needs rigid = [x0, y0, x1, y1] and patches with name, region, side, box"
        ) from e
    for p in patches:
        x0, y0, x1, y1 = p.box
        if p.region not in _REGIONS or p.side not in ("left", "right", "both") or not 0 <= x0 < x1 <= 128 \
                or not 0 <= y0 < y1 <= 128:  # fmt: skip
            raise ConfigError(f"{path}: patch {p.name}: bad region, side or box (inside the 128 x 128 face)")
    cues = data.get("cues", {})
    names = tuple(p.name for p in patches)
    groups = _groups(data.get("groups", []), names, path)
    scale = 640.0 / ALIGNED_FACE_WIDTH
    centres = np.array([((x0 + x1) / 2.0, -(y0 + y1) / 2.0) for x0, y0, x1, y1 in (p.box for p in patches)])
    # Two more channels, after the patches: the rigid motion of the face (the similarity the
    # stabiliser fits to all patches) at the top and the bottom of the patches, region 'rigid'.
    mid = centres[:, 0].mean()
    rigid_at = np.array([[mid, centres[:, 1].max()], [mid, centres[:, 1].min()]])
    flow = Layout(names + RIGID_CHANNELS, tuple(p.region for p in patches) + ("rigid", "rigid"),
                  tuple(p.side for p in patches) + ("both", "both"), _cues(cues, names, path) + ((), ()),
                  np.vstack([centres, rigid_at]) * scale, groups,
                  _templates(data.get("templates", {}), names, path))  # fmt: skip
    lm = Layout(
        GROUP_NAMES, tuple(REGION_NAMES[r] for r in GROUP_REGION), GROUP_SIDE, _cues(cues, GROUP_NAMES, path)
    )
    sides = {"left_eye": "left", "right_eye": "right", "mouth": "both"}
    regions = Layout(REGION_CHANNELS, REGIONS + REGIONS, tuple(sides[r] for r in REGIONS + REGIONS),
                     _cues(cues, REGION_CHANNELS, path))  # fmt: skip
    return SpottingConfig(patches, rigid, flow, lm, regions)  # type: ignore[arg-type]
