"""The blendshape + geometry -> action-unit mapping, loaded from TOML and validated.

The mapping is data (``blendshapes/facs_mapping.toml``, documented in ``FACS_MAPPING.md``): for each
AU, a few *inputs* (an ARKit blendshape, a geometric feature of :mod:`.geometry` or an appearance
feature of :mod:`.appearance`), each with

- ``span``: the change of that input, from the person's neutral face to a maximal (FACS "E") action.
  Its sign says which way the AU moves the input (negative: the AU lowers it). The input's gain to
  the 0-5 scale is ``5 / span``.
- ``weight``: its share of the AU (weights of one AU normally add up to 1; a negative weight is
  evidence against the AU, e.g. a closed eye against lid tightening).
- ``baseline`` (optional): the running percentile that stands for neutral, on the side opposite to
  the AU's push (default: the source's ``baseline``, else ``[defaults] baseline_percentile``).

``[sources.NAME]`` tables describe an input once for every AU that reads it: ``baseline`` (its
running percentile), ``typical`` (its value on a typical neutral face) and ``neutral = [lo, hi]``
(the range a neutral face can plausibly take across people). The running neutral starts at
``typical`` and hands over to the person's own percentile as samples come in, and stays clamped
into ``neutral``, so a video that opens on closed eyes or a smile cannot make that expression the
person's neutral. Blendshapes without a table take ``[defaults] blendshape_neutral`` and
``blendshape_typical``; an explicit calibration is used as it is.

An AU's intensity is ``5 * clip(sum(weight * (value - neutral) / span), 0, 1)``. Appearance inputs
need the camera frame: their positive weights are the AU's *appearance share* ``a``; with a frame
the AU is ``(1 - a) * (blendshape and geometry sum) + (appearance sum)``, without one (or when a
patch cannot be measured) it is the blendshape and geometry sum alone, exactly as without them.
Presence switches on at ``threshold_on`` and off below ``threshold_off`` (hysteresis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_bridge.channels import ARKIT_INDEX, AU_PRESENCE, UNTRACKED_BLENDSHAPES
from avatar_bridge.errors import ConfigError
from avatar_bridge.facs.appearance import APPEARANCE_FEATURES
from avatar_bridge.facs.geometry import GEOMETRIC_FEATURES
from avatar_bridge.fileio import read_toml
from avatar_bridge.resources import data_dir

MAPPING_FILE = "facs_mapping.toml"
FORMAT_VERSION = 1
#: Every input the estimator can compute: the tracked ARKit blendshapes, then the geometric features.
SOURCES: tuple[str, ...] = (
    tuple(n for n in ARKIT_INDEX if n not in UNTRACKED_BLENDSHAPES) + GEOMETRIC_FEATURES
)
SOURCE_INDEX: dict[str, int] = {n: i for i, n in enumerate(SOURCES)}
#: Every input a mapping may read: :data:`SOURCES`, then the appearance features (which need the frame).
INPUTS: tuple[str, ...] = SOURCES + APPEARANCE_FEATURES
INPUT_INDEX: dict[str, int] = {n: i for i, n in enumerate(INPUTS)}

_DEFAULT_KEYS = {
    "baseline_percentile",
    "blendshape_neutral",
    "blendshape_typical",
    "threshold_on",
    "threshold_off",
}
_SOURCE_KEYS = {"baseline", "neutral", "typical"}
_AU_KEYS = {"description", "inputs", "threshold_on", "threshold_off"}
_INPUT_KEYS = {"source", "span", "weight", "baseline"}


def default_mapping_path() -> Path:
    return data_dir("blendshapes") / MAPPING_FILE


@dataclass(frozen=True)
class FACSMapping:
    """A validated mapping as flat arrays over its T input terms (one per AU input).

    ``term_au[t]`` indexes :data:`AU_PRESENCE`; ``term_source[t]`` indexes :data:`INPUTS` (appearance
    features from ``len(SOURCES)`` on); ``term_percentile[t]`` is already mirrored for negative spans
    (the neutral end of the range).
    """

    path: Path
    term_au: np.ndarray  # (T,) int
    term_source: np.ndarray  # (T,) int
    term_gain: np.ndarray  # (T,) float: 5 * weight / span
    term_percentile: np.ndarray  # (T,) float 0..100
    term_neutral_lo: np.ndarray  # (T,) lowest plausible neutral of the term's input
    term_neutral_hi: np.ndarray  # (T,) highest plausible neutral
    term_typical: np.ndarray  # (T,) neutral of a typical face (the running baseline's prior)
    threshold_on: np.ndarray  # (18,) in AU_PRESENCE order
    threshold_off: np.ndarray  # (18,)
    term_appearance: np.ndarray  # (T,) bool: the term reads an appearance feature
    appearance_share: np.ndarray  # (18,) sum of the AU's positive appearance weights (0 = none)

    @property
    def used_sources(self) -> tuple[str, ...]:
        return tuple(INPUTS[i] for i in sorted(set(self.term_source.tolist())))


def _number(value: object, where: str, path: Path, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{path}: {where} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{path}: {where} must be between {lo} and {hi}, got {value!r}")
    return float(value)


def _range(value: object, where: str, path: Path) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{path}: {where} must be a list [low, high], got {value!r}")
    lo, hi = _number(value[0], f"{where}[0]", path), _number(value[1], f"{where}[1]", path)
    if lo > hi:
        raise ConfigError(f"{path}: {where} must have low <= high, got {value!r}")
    return lo, hi


def _check_keys(table: dict, allowed: set[str], where: str, path: Path) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key {where}.{unknown[0]} (allowed: {', '.join(sorted(allowed))})")


def load_mapping(path: str | Path | None = None) -> FACSMapping:
    """Read and validate a mapping file; errors name the file and the key."""
    path = Path(path) if path is not None else default_mapping_path()
    return parse_mapping(read_toml(path, "FACS mapping file"), path)


def parse_mapping(data: dict, path: Path) -> FACSMapping:
    """Validate an already-parsed mapping table (``path`` is only used in messages)."""
    _check_keys(data, {"version", "defaults", "sources", "AU"}, "(top level)", path)
    if data.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: version must be {FORMAT_VERSION}, got {data.get('version')!r}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: defaults must be a table")
    _check_keys(defaults, _DEFAULT_KEYS, "defaults", path)
    d_pct = _number(defaults.get("baseline_percentile", 10.0), "defaults.baseline_percentile", path, 0, 100)
    d_on = _number(defaults.get("threshold_on", 1.0), "defaults.threshold_on", path, 0, 5)
    d_off = _number(defaults.get("threshold_off", d_on), "defaults.threshold_off", path, 0, 5)
    d_bs = _range(defaults.get("blendshape_neutral", [0.0, 1.0]), "defaults.blendshape_neutral", path)
    d_typ = _number(defaults.get("blendshape_typical", 0.0), "defaults.blendshape_typical", path, 0, 1)

    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError(f"{path}: sources must be a table of [sources.NAME] tables")
    src_pct: dict[str, float] = {}
    src_range: dict[str, tuple[float, float]] = {}
    src_typ: dict[str, float] = {}
    for name, table in sources.items():
        where = f"sources.{name}"
        if name not in INPUT_INDEX:
            raise ConfigError(f"{path}: {where}: unknown channel {name!r}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where} must be a table")
        _check_keys(table, _SOURCE_KEYS, where, path)
        if "baseline" in table:
            src_pct[name] = _number(table["baseline"], f"{where}.baseline", path, 0, 100)
        if "neutral" in table:
            src_range[name] = _range(table["neutral"], f"{where}.neutral", path)
        if "typical" in table:
            src_typ[name] = _number(table["typical"], f"{where}.typical", path)
            lo, hi = src_range.get(name, (-math.inf, math.inf))
            if not lo <= src_typ[name] <= hi:
                raise ConfigError(f"{path}: {where}.typical ({src_typ[name]}) lies outside its neutral range")

    aus = data.get("AU")
    if not isinstance(aus, dict):
        raise ConfigError(f"{path}: missing [AU.*] tables (one per action unit: {', '.join(AU_PRESENCE)})")
    for name in aus:
        if name not in AU_PRESENCE:
            raise ConfigError(f"{path}: unknown action unit AU.{name} (known: {', '.join(AU_PRESENCE)})")
    missing = [a for a in AU_PRESENCE if a not in aus]
    if missing:
        raise ConfigError(f"{path}: missing action unit AU.{missing[0]}")

    t_au, t_src, t_gain, t_pct, t_lo, t_hi, t_typ = [], [], [], [], [], [], []
    on, off = np.zeros(len(AU_PRESENCE)), np.zeros(len(AU_PRESENCE))
    share = np.zeros(len(AU_PRESENCE))
    for a, name in enumerate(AU_PRESENCE):
        table, where = aus[name], f"AU.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where} must be a table")
        _check_keys(table, _AU_KEYS, where, path)
        on[a] = _number(table.get("threshold_on", d_on), f"{where}.threshold_on", path, 0, 5)
        off[a] = _number(table.get("threshold_off", min(d_off, on[a])), f"{where}.threshold_off", path, 0, 5)
        if off[a] > on[a]:
            raise ConfigError(
                f"{path}: {where}.threshold_off ({off[a]}) must not exceed threshold_on ({on[a]})"
            )
        inputs = table.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise ConfigError(f"{path}: {where}.inputs must be a non-empty list of {{source, span, weight}}")
        for k, term in enumerate(inputs):
            tw = f"{where}.inputs[{k}]"
            if not isinstance(term, dict):
                raise ConfigError(
                    f"{path}: {tw} must be a table like {{source = ..., span = ..., weight = ...}}"
                )
            _check_keys(term, _INPUT_KEYS, tw, path)
            source = term.get("source")
            if source not in INPUT_INDEX:
                hint = " (MediaPipe does not track it)" if source in UNTRACKED_BLENDSHAPES else ""
                raise ConfigError(f"{path}: {tw}.source: unknown channel {source!r}{hint}")
            span = _number(term.get("span"), f"{tw}.span", path)
            if abs(span) < 1e-9:
                raise ConfigError(f"{path}: {tw}.span must not be zero")
            weight = _number(term.get("weight", 1.0), f"{tw}.weight", path, -10, 10)
            pct = _number(term.get("baseline", src_pct.get(source, d_pct)), f"{tw}.baseline", path, 0, 100)
            default_range = d_bs if source in ARKIT_INDEX else (-math.inf, math.inf)
            lo, hi = src_range.get(source, default_range)
            typical = src_typ.get(source, d_typ if source in ARKIT_INDEX else math.nan)
            t_typ.append(min(max(typical, lo), hi) if math.isfinite(typical) else math.nan)
            t_lo.append(lo)
            t_hi.append(hi)
            t_au.append(a)
            t_src.append(INPUT_INDEX[source])
            t_gain.append(5.0 * weight / span)
            if source in APPEARANCE_FEATURES and weight > 0:
                share[a] += weight
            t_pct.append(pct if span > 0 else 100.0 - pct)
        if share[a] > 1.0:
            raise ConfigError(f"{path}: {where}: appearance weights add up to {share[a]:g}, more than 1")
    return FACSMapping(
        path=path,
        term_au=np.asarray(t_au, np.int64),
        term_source=np.asarray(t_src, np.int64),
        term_gain=np.asarray(t_gain, np.float64),
        term_percentile=np.asarray(t_pct, np.float64),
        term_neutral_lo=np.asarray(t_lo, np.float64),
        term_neutral_hi=np.asarray(t_hi, np.float64),
        term_typical=np.asarray(t_typ, np.float64),
        threshold_on=on,
        threshold_off=off,
        term_appearance=np.asarray(t_src, np.int64) >= len(SOURCES),
        appearance_share=share,
    )


_TRACKED_BLENDSHAPES = np.array([ARKIT_INDEX[n] for n in SOURCES[: len(SOURCES) - len(GEOMETRIC_FEATURES)]])


def source_values(blendshapes: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """All inputs of one face in :data:`SOURCES` order: tracked blendshapes, then geometric features."""
    return np.concatenate((np.asarray(blendshapes, np.float64)[_TRACKED_BLENDSHAPES], geometry))
