"""Turn a detected movement into an :class:`ExpressionEvent`: regions, side, AUs, confidence, label."""

from __future__ import annotations

import numpy as np

from avatar_bridge.channels import AU_INTENSITY
from avatar_bridge.micro.spotting.channels import Layout
from avatar_bridge.micro.spotting.detector import Found
from avatar_bridge.micro.spotting.options import SpotterOptions
from avatar_bridge.records import EventKind, ExpressionEvent


def side_of(layout: Layout, strength: np.ndarray, involved: np.ndarray, ratio: float) -> str:
    """'left' / 'right' when one side's strongest involved channel beats the other's by ``ratio``."""
    sides = np.array(layout.sides)
    left = float(np.max(strength[(sides == "left") & involved], initial=0.0))
    right = float(np.max(strength[(sides == "right") & involved], initial=0.0))
    if left > 0 and left > ratio * right:
        return "left"
    if right > 0 and right > ratio * left:
        return "right"
    return "both"


def cue_aus(layout: Layout, movement: np.ndarray, involved: np.ndarray, side: str, au_px: float,
            au_min: float) -> dict[str, float]:  # fmt: skip
    """AU intensities (0-5) from each involved channel's movement (C, 2), px at 640 px face width.

    Each channel's movement goes to the cue it follows best; an AU takes its strongest channel.
    On a one-sided event, channels of the other side do not vote.
    """
    out: dict[str, float] = {}
    for i in np.flatnonzero(involved):
        if side in ("left", "right") and layout.sides[i] not in (side, "both"):
            continue
        best, value = None, 0.0
        for au, direction in layout.cues[i]:
            v = float(movement[i] @ direction)
            if v > value:
                best, value = au, v
        if best is not None and value / au_px >= au_min:
            out[best] = max(out.get(best, 0.0), round(min(value / au_px, 5.0), 3))
    return out


def estimator_aus(rise: np.ndarray, au_min: float) -> dict[str, float]:
    """AUs from the AU estimator: intensity rises at the apex over the person's baseline."""
    return {AU_INTENSITY[i]: round(float(rise[i]), 3) for i in np.flatnonzero(rise >= au_min)}


def describe(found: Found, face_id: int, layout: Layout, options: SpotterOptions,
             au_rise: np.ndarray | None = None) -> ExpressionEvent:  # fmt: skip
    """The event for ``found``; AUs from the estimator's rise when given, else from the cues."""
    o = options
    strength = np.hypot(*found.movement.T)
    side = side_of(layout, np.where(found.involved, strength, 0.0), found.involved, o.side_ratio)
    aus = estimator_aus(au_rise, o.au_min) if au_rise is not None else {}
    if not aus:
        aus = cue_aus(layout, found.movement, found.involved, side, o.au_px, o.au_min)
    conf = float(1.0 / (1.0 + np.exp(-(found.z - o.z_on) / 1.5)))
    conf *= 0.5 if found.truncated else 1.0
    kind = EventKind.MACRO if found.macro else EventKind.MICRO
    return ExpressionEvent(kind, face_id, found.onset, found.apex, found.offset, found.emitted_at, aus,
                           tuple(layout.region_names(found.involved)), side, found.peak, conf,
                           truncated=found.truncated)  # fmt: skip
