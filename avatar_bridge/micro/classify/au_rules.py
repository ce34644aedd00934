"""AU-rule classifier: no training, the objective classes I-VII from an event's action units.

The rules are data (``blendshapes/micro_au_rules.toml``): each objective class lists AU combinations,
a 3-class label (positive / negative / surprise) and an emotion word. The classifier picks the most
specific combination whose AUs are all active (ties: the class that lists more of the active AUs,
then the stronger AUs), which also works on the AU codes of dataset label
sheets ("4+L10", "R12", "AU1+AU2").

>>> clf = AURuleClassifier()
>>> clf.classify({"AU06": 1.1, "AU12": 2.0}).emotion
'happiness'
>>> clf.classify_codes("1+2+4").objective_class
'VI'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from avatar_bridge.errors import ConfigError
from avatar_bridge.fileio import read_toml
from avatar_bridge.records import ExpressionEvent
from avatar_bridge.resources import data_dir

RULES_FILE = "micro_au_rules.toml"
_TOKEN = re.compile(r"^(?:AU)?\s*([LRBTU])?\s*(?:AU)?(\d{1,2})([A-E])?(?:_[rc])?$", re.IGNORECASE)


def au_number(name: str | int) -> int:
    """'AU12', 'AU12_r', 'L12', '12' or 12 -> 12."""
    if isinstance(name, int):
        return name
    m = _TOKEN.match(str(name).strip())
    if not m:
        raise ConfigError(f"not an action unit: {name!r}")
    return int(m.group(2))


def parse_au_codes(text: object) -> tuple[dict[int, str], list[str]]:
    """Parse a label sheet's AU cell into {AU number: side} and the tokens that are not AUs.

    Side is 'L' or 'R' for a one-sided code (FACS sheets write L12 / R12), '' otherwise. Intensity
    letters (12C) are dropped. Empty cells give ({}, [])."""
    if text is None:
        return {}, []
    if isinstance(text, (int, float)):
        if text != text:  # NaN from a blank spreadsheet cell
            return {}, []
        text = str(int(text))
    out: dict[int, str] = {}
    bad: list[str] = []
    for token in re.split(r"[+,;/&\s]+", str(text).strip()):
        if not token:
            continue
        m = _TOKEN.match(token)
        if not m:
            bad.append(token)
            continue
        side = (m.group(1) or "").upper()
        out[int(m.group(2))] = side if side in ("L", "R") else ""
    return out, bad


@dataclass(frozen=True, slots=True)
class AURule:
    objective_class: str
    aus: frozenset[int]
    emotion: str
    label: str


@dataclass(frozen=True, slots=True)
class AUClassification:
    """The outcome for one event: class, 3-class label ('' for others), emotion, and why."""

    objective_class: str
    label: str
    emotion: str
    matched: tuple[int, ...]
    active: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AURulesOptions:
    """``min_intensity``: intensity (0-5) from which an AU counts as active; micro-expressions are
    faint, so the default is low. ``relative``: an AU must also reach this fraction of the event's
    strongest AU, so weak co-activations do not change the class. ``rules``: a TOML file in the
    format of the packaged one (None = packaged)."""

    min_intensity: float = 0.3
    relative: float = 0.35
    rules: Path | None = None


def load_rules(path: Path | None = None) -> tuple[tuple[AURule, ...], AURule]:
    """Read the rules file: (rules in file order, fallback rule for 'nothing matched')."""
    path = Path(path) if path is not None else data_dir("blendshapes") / RULES_FILE
    data = read_toml(path, "AU rules file")
    classes = data.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise ConfigError(f"{path}: needs a [classes.NAME] table per objective class")
    rules: list[AURule] = []
    fallback: AURule | None = None
    for name, spec in classes.items():
        where = f"{path}: classes.{name}"
        try:
            emotion, label = str(spec["emotion"]), str(spec["label"])
            combos = [frozenset(int(a) for a in combo) for combo in spec["aus"]]
            named = [(frozenset(int(a) for a in n["aus"]), str(n["emotion"]), str(n["label"]))
                     for n in spec.get("named", [])]  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: needs emotion, label and aus (lists of AU numbers): {e}") from e
        if label not in ("", "positive", "negative", "surprise"):
            raise ConfigError(f"{where}: label {label!r} is not positive, negative, surprise or ''")
        rules.extend(AURule(name, c, emotion, label) for c in combos if c)
        rules.extend(AURule(name, c, e, lab) for c, e, lab in named if c)
        if not combos:
            fallback = AURule(name, frozenset(), emotion, label)
    if fallback is None:
        raise ConfigError(f"{path}: one class needs an empty aus list (the class for everything else)")
    return tuple(rules), fallback


class AURuleClassifier:
    """Objective class, 3-class label and emotion word from AU intensities or AU codes."""

    def __init__(self, options: AURulesOptions | None = None) -> None:
        self.options = options or AURulesOptions()
        self.rules, self.fallback = load_rules(self.options.rules)
        self._class_aus: dict[str, frozenset[int]] = {}
        for rule in self.rules:
            self._class_aus[rule.objective_class] = (
                self._class_aus.get(rule.objective_class, frozenset()) | rule.aus
            )

    def active(self, aus: Mapping[str | int, float]) -> dict[int, float]:
        """The AUs that count as active in an event, by number, with their intensities."""
        values = {au_number(k): float(v) for k, v in aus.items()}
        if not values:
            return {}
        floor = max(self.options.min_intensity, self.options.relative * max(values.values()))
        return {k: v for k, v in values.items() if v >= floor}

    def classify(self, aus: Mapping[str | int, float]) -> AUClassification:
        """Classify from AU intensities ({'AU12': 1.4, ...}, 0-5 scale)."""
        return self._decide(self.active(aus))

    def classify_codes(self, codes: object) -> AUClassification:
        """Classify from a label sheet's AU cell ('4+L10', 'R12+R15'); every coded AU is active."""
        parsed, _ = parse_au_codes(codes)
        return self._decide({k: 1.0 for k in parsed})

    def classify_event(self, event: ExpressionEvent) -> ExpressionEvent:
        """The event with ``label`` and ``emotion`` filled in from its AUs."""
        c = self.classify(event.aus)
        return replace(event, label=c.label, emotion=c.emotion)

    def _decide(self, active: dict[int, float]) -> AUClassification:
        best: tuple[int, int, float, int] | None = None
        best_rule = self.fallback
        keys = set(active)
        for order, rule in enumerate(self.rules):
            if not rule.aus <= keys:
                continue
            # most specific combination; then the class that accounts for more of the active AUs
            # (4+10 is disgust: class IV lists both AUs, class III only AU4); then intensity
            coverage = len(keys & self._class_aus[rule.objective_class])
            score = (len(rule.aus), coverage, sum(active[a] for a in rule.aus), -order)
            if best is None or score > best:
                best, best_rule = score, rule
        return AUClassification(
            objective_class=best_rule.objective_class,
            label=best_rule.label,
            emotion=best_rule.emotion,
            matched=tuple(sorted(best_rule.aus)),
            active=tuple(sorted(active)),
        )
