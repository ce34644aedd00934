"""Spelling variants of shape names: an explicit profile option, never a silent guess.

Rigs spell the ARKit names three common ways: Apple's ``eyeBlinkLeft``, Unity's ``EyeBlinkLeft``
and ICT-FaceKit's ``eyeBlink_L``. :func:`respell` turns Apple's spelling into another;
:func:`canonical_key` reduces any of them to one comparison key for :mod:`.match`.
"""

from __future__ import annotations

import re

#: Spelling styles a profile may offer, with an example of each.
SPELLINGS: dict[str, str] = {
    "apple": "eyeBlinkLeft",
    "unity": "EyeBlinkLeft",
    "suffix": "eyeBlink_L",
}

_SIDE_SUFFIX = re.compile(r"(?:[_.\- ]?(Left|Right|left|right|L|R|l|r))$")


def respell(name: str, spelling: str) -> str:
    """``name`` (Apple spelling) written in ``spelling`` ('apple', 'unity' or 'suffix')."""
    if spelling == "apple":
        return name
    if spelling == "unity":
        return name[:1].upper() + name[1:]
    if spelling == "suffix":
        for side, short in (("Left", "_L"), ("Right", "_R")):
            if name.endswith(side) and len(name) > len(side):
                return name[: -len(side)] + short
        return name
    raise ValueError(f"unknown spelling {spelling!r}; known: {', '.join(SPELLINGS)}")


def canonical_key(name: str) -> str:
    """Comparison key that ignores case, separators and the side spelling (``_L`` = ``Left``).

    >>> canonical_key("eyeBlink_L") == canonical_key("EyeBlinkLeft") == canonical_key("eye_blink.left")
    True
    """
    side = ""
    m = _SIDE_SUFFIX.search(name)
    if m and m.start() > 0:
        side = "left" if m.group(1).lower() in ("left", "l") else "right"
        # a bare trailing l/r only counts as a side when it is separated (eyeBlink_l), not 'Brow'...
        if len(m.group(1)) == 1 and m.group(0) == m.group(1) and m.group(1).islower():
            side = ""
        else:
            name = name[: m.start()]
    return re.sub(r"[^a-z0-9]", "", name.lower()) + side
