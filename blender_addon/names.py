"""Matching incoming channel names to a mesh's shape keys, without ever guessing.

Order: the exact name; then a case- and spelling-insensitive key, so that ``eyeBlinkLeft``,
``EyeBlinkLeft``, ``eye_blink_left`` and ``eyeBlink_L`` all meet; then the user's explicit
mapping table (stored in the .blend), which may send one name to several shape keys (ICT-FaceKit
splits ``browInnerUp`` into ``browInnerUp_L`` and ``browInnerUp_R``). A name that two shape keys
match equally well is ambiguous and, like a name nothing matches, is reported as unmatched.
Pure Python, no bpy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_.\-:]+")
_SIDES = {"l": "left", "r": "right"}


def normalise(name: str) -> str:
    """The spelling-insensitive key of a name: camel case and separators split words, ``L``/``R``
    words read as left/right, everything lower case and joined (``eyeBlink_L`` -> ``eyeblinkleft``)."""
    words = _SEPARATORS.split(_CAMEL.sub(" ", name.strip()).lower())
    return "".join(_SIDES.get(w, w) for w in words if w)


@dataclass
class NameMatcher:
    """Resolve incoming names to shape-key names; results are cached per name.

    ``targets``: the shape keys that may be driven (the basis is left out by the caller).
    ``explicit``: (incoming name, shape key) pairs from the mapping table; a name may repeat.
    """

    targets: Iterable[str]
    explicit: Iterable[tuple[str, str]] = ()
    _exact: frozenset = field(init=False)
    _loose: dict = field(init=False)
    _table: dict = field(init=False)
    _cache: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        targets = [t for t in self.targets if t]
        self._exact = frozenset(targets)
        loose: dict[str, list[str]] = {}
        for t in targets:
            loose.setdefault(normalise(t), []).append(t)
        self._loose = loose
        table: dict[str, list[str]] = {}
        for src, dst in self.explicit:
            if src and dst in self._exact and dst not in table.get(src, []):
                table.setdefault(src, []).append(dst)
        self._table = table

    def resolve(self, name: str) -> tuple[str, ...]:
        """Shape keys driven by ``name`` (empty when unmatched or ambiguous)."""
        hit = self._cache.get(name)
        if hit is None:
            hit = self._cache[name] = self._resolve(name)
        return hit

    def _resolve(self, name: str) -> tuple[str, ...]:
        if name in self._exact:
            return (name,)
        loose = self._loose.get(normalise(name), [])
        if len(loose) == 1:
            return (loose[0],)
        return tuple(self._table.get(name, ()))

    def why_unmatched(self, name: str) -> str:
        """'' when ``name`` resolves, else a short reason for the status list."""
        if self.resolve(name):
            return ""
        loose = self._loose.get(normalise(name), [])
        if len(loose) > 1:
            return "ambiguous: " + ", ".join(sorted(loose))
        return "no shape key"

    def split(self, names: Iterable[str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
        """(matched name -> shape keys, unmatched names in order)."""
        matched, unmatched = {}, []
        for n in names:
            keys = self.resolve(n)
            if keys:
                matched[n] = keys
            else:
                unmatched.append(n)
        return matched, unmatched
