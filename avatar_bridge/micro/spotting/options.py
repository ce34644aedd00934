"""Settings of the online micro-expression spotter (one frozen dataclass, every number documented)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from avatar_bridge.errors import InputError
from avatar_bridge.micro.spotting.flowtracks import FlowTrackOptions
from avatar_bridge.micro.spotting.regionflow import PRESETS

#: What the optical flow measures (``SpotterOptions.flow_features``).
FLOW_FEATURES = ("patches", "regions")
#: The classifiers that may label spotted micro-expressions (``SpotterOptions.classifier``).
CLASSIFIERS = ("au-rules", "tp-ha3dnet")


@dataclass(frozen=True, slots=True)
class SpotterOptions:
    """Spotting settings; times are seconds of source time, distances px at 640 px face width.

    Signals. use_flow: when frames are given, track face patches by optical flow on the aligned
    face (sub-pixel, what finds 2-4 px events; see ``flowtracks``) instead of MediaPipe landmark
    groups; without frames the landmarks are always used. flow: the flow tracker's settings.
    flow_features: what the flow measures. "patches" (default): Lucas-Kanade tracks of 16 small
    skin patches (``flowtracks``). "regions": the issue's dense features, OpenCV's DIS flow
    (``dense_preset``: "ultrafast", "fast" or "medium") with the rigid box's motion removed, as mean
    flow and optical strain in the three 64 x 64 regions (left eye and brow, right eye and brow,
    mouth; ``regionflow``); set min_peak about 0.1 with it (a region's mean flow is a diluted
    movement: a 4 px smile corner moves the mouth region's by about 0.2 px). Held out the patches
    find far more (``docs/micro_expressions.md``).
    stabilise: each frame, remove from the flow tracks what one similarity transform of all patches
    explains (the aligned face's rotation and scale jitter, the nose box's own noise; a robust fit,
    so the few patches an expression moves get no weight: :mod:`stabilise`); stabilise_cutoff: residuals
    beyond this many robust deviations get no weight in that fit. Off by default: held out, it found
    more 2 px events (F1 0.77 against 0.71, z_on chosen on the other person) but made 1.5 false
    micro-expressions a minute on untouched held-still recordings against 0.5
    (``benchmarks/results/bench_spotting_stabilised.json``).

    Detection. A channel (patch or landmark group) shows a bump when its position ``h`` seconds
    ago stands out from the straight line between the positions ``2h`` ago and now (``h`` in
    ``scales``); each probe position is the mean over +-``probe`` seconds. The bump is scored in
    units of that person's own variability (running mean and deviation per channel and scale,
    learnt over ``noise_tau`` seconds while nothing is spotted; values beyond ``z_learn`` deviations
    are not learnt). z_on: score that opens a candidate; min_peak: least bump (above the usual one)
    that may; z_pair: while any channel scores above this, the flow reference is kept (not
    chained), so a movement is measured against one image. pool: the channels one AU moves
    together (``groups`` in micro_spotting.toml: the brows) pool their evidence: the sum of a group's
    ``pool`` highest scores over sqrt(pool) may open a candidate on its strongest channel, when each
    of those scores is at least ``pool_min`` (a shared movement adds up, independent noise does not;
    pool 1 = off). templates: the AU templates of micro_spotting.toml (the patches one AU moves
    together, each in its own direction: AU15+17 pulls both lip corners down and the lower lip and
    chin up) are scored too: the patches' movements along those directions, summed, on the channels'
    scale (the same false alarms in Gaussian noise), may open a candidate on the template's strongest
    patch. A movement that follows the template adds up; noise and a shift of the whole mouth do
    not. Whether such a candidate came back (``step_ratio``) is judged along the template's
    movement, so that a patch drifting aside does not make it the edge of an expression, unless a
    patch of the template moved more than ``busy_peak`` between the ends (a face in motion).
    hold: seconds without a stronger bump before a candidate is decided (most of the decision
    delay). warmup: seconds of face before anything is spotted. step_ratio: a bump
    whose ends differ by more than this times its height is the edge of an expression that stays
    (a macro-expression starts). tail_cut: onset and offset come from the half-height crossings
    of the movement above the straight line between the scale's two outer probes; when the later
    probe still stands more than this fraction of the height above the earlier one (a quick rise
    and a slow return longer than the scale: the line cuts the fall short), they come from the
    movement above the level before it instead (1 = off). crest: a candidate whose earlier probe
    already stands more than this times its height above the level one scale before it (along the
    bump's direction) is the top of a longer movement (a word, an expression coming and going),
    brief only at that scale: it is no micro-expression (``rejected_crest``; one timed as macro
    stays macro), and the longer movement is left to the held expressions (0 = off).

    Classification of what was found. max_micro: longer is a macro-expression; max_event: a held
    expression still open after this is reported and dropped; min_duration: shortest event kept.
    max_peak: micro-expressions are subtle (the spec: 1-4 px at 640 px face width); a brief
    movement whose strongest channel (a patch, which moves less than the point pulled most) moves
    more than this (the spec's largest amplitude, 4 px, plus the noise of a measured 4 px
    twitch) is an ordinary expression or a gesture (speech, a sob, a hand on the face):
    reported as macro, not micro.
    max_gap: a missing face or a time jump longer than this drops open events. blink_threshold:
    eyeBlink (or AU45 / 5) above this is eye closure: eye channels are ignored around it and
    eye-only events are rejected. head_speed: deg/s of head rotation that marks an event as head
    motion; nose_ratio: the nose groups (landmarks only) moving this fraction of the peak mark it
    too. z_off: a held expression is back when its channels are under this many deviations or half
    their own peak (``hold`` seconds on end); a brief one is then closed and timed where its fall
    ends, twice the time from its apex to that half-way point. back_share: only the channels whose
    peak is at least this fraction of the strongest channel's say whether a held expression is back
    (the ones that carry it; a patch that drifts a little against the held reference, or barely
    follows, would keep it open past its end and into the next expression; 0 = every involved
    channel). lighting: relative change of face
    brightness (needs frames) that marks a lighting change. region_z: z a channel must reach to be
    listed in the event's regions. side_ratio: left/right contrast that names a side.
    sd_floor: least deviation used to score (px).
    rigid_fit: with flow, a movement of which a similarity transform of all channels (a head
    turn, nod or shift the alignment did not follow) explains more than this fraction is head
    motion, not an expression (1 = off).

    Context. A micro-expression is a brief movement of a face otherwise at rest: a candidate with a
    bump larger than ``busy_peak`` px (any channel of its zone, see ``zones``; any scale) within
    ``busy_window`` seconds before its onset sits inside ongoing non-rigid activity (speech, crying,
    an expression coming and going) and is not reported as micro (counted as ``rejected_busy``;
    busy_window 0 = off). Nor is one whose ``busy_window`` before its onset was not watched (the
    first second of a face: ``rejected_unseen_context``).
    A bump counts by its centre (when the movement happened, not when it was measured), and a
    movement rejected as head motion does not count as activity. zones: the upper face (brows, eyes)
    and the lower face (mouth) are watched apart: each has its own candidate, refractory time and
    context, so speech or a smile in the mouth neither hides nor vetoes a brief brow movement, and
    an event lists only its own zone's channels (False: one candidate for the whole face).

    Description. au_min: least AU intensity rise (0-5) to list an AU; au_px: px of movement per
    AU intensity unit for the geometric / flow cues. label: fill ``label`` and ``emotion`` of every
    event. classifier: who labels micro-expressions: "au-rules" (default; ``micro.classify.au_rules``,
    no training, the better scores on the project's data) or "tp-ha3dnet" (the learned 3D CNN on the
    event's aligned frames, ``micro.classify.online``; its class probabilities go to the event's
    ``label_scores``). Macro events, and micro events whose frames are missing (no frame given),
    keep the AU rules. classifier_model: the TP-HA3DNet file (``avatar-bridge train tp-ha3dnet``);
    None = ``tp_ha3dnet.pt`` from ``$AVATAR_BRIDGE_MODEL_DIR`` or the packaged models folder.
    """

    use_flow: bool = True
    flow: FlowTrackOptions = field(default_factory=FlowTrackOptions)
    flow_features: str = "patches"
    dense_preset: str = "ultrafast"
    stabilise: bool = False
    stabilise_cutoff: float = 3.0
    z_on: float = 6.0
    z_pair: float = 3.0
    pool: int = 2
    pool_min: float = 4.5
    templates: bool = True
    min_peak: float = 0.6
    scales: tuple[float, ...] = (0.1, 0.2, 0.3)
    probe: float = 0.02
    hold: float = 0.06
    noise_tau: float = 4.0
    z_learn: float = 8.0
    warmup: float = 0.5
    step_ratio: float = 0.6
    tail_cut: float = 0.25
    crest: float = 1.0
    max_micro: float = 0.5
    max_peak: float = 5.0
    max_event: float = 4.0
    min_duration: float = 0.06
    max_gap: float = 0.25
    blink_threshold: float = 0.45
    head_speed: float = 60.0
    nose_ratio: float = 0.6
    lighting: float = 0.06
    region_z: float = 3.5
    side_ratio: float = 1.6
    sd_floor: float = 0.05
    rigid_fit: float = 0.85
    busy_window: float = 1.0
    busy_peak: float = 4.0
    zones: bool = True
    z_off: float = 2.0
    back_share: float = 0.5
    au_min: float = 0.25
    au_px: float = 2.0
    label: bool = True
    classifier: str = "au-rules"
    classifier_model: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.z_off < self.z_on:
            raise InputError(f"need 0 < z_off < z_on, got z_off={self.z_off} z_on={self.z_on}")
        for name in ("hold", "noise_tau", "max_micro", "max_event", "max_gap"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive seconds, got {getattr(self, name)}")
        if self.stabilise_cutoff <= 0:
            raise InputError(f"stabilise_cutoff must be positive (deviations), got {self.stabilise_cutoff}")
        if self.flow_features not in FLOW_FEATURES:
            choices = " or ".join(repr(c) for c in FLOW_FEATURES)
            raise InputError(f"flow_features must be {choices}, got {self.flow_features!r}")
        if self.dense_preset not in PRESETS:
            raise InputError(f"dense_preset must be one of {', '.join(PRESETS)}, got {self.dense_preset!r}")
        if self.stabilise and self.flow_features != "patches":
            raise InputError("stabilise fits the patch tracks; it needs flow_features 'patches'")
        if self.pool < 1:
            raise InputError(f"pool must be at least 1 (1 = off), got {self.pool}")
        if self.crest < 0:
            raise InputError(f"crest must be 0 or more (a ratio; 0 = off), got {self.crest}")
        if self.tail_cut < 0:
            raise InputError(f"tail_cut must be 0 or more (a fraction; 1 = off), got {self.tail_cut}")
        if not self.scales or min(self.scales) <= 0:
            raise InputError(f"scales must be positive seconds, got {self.scales}")
        if self.classifier not in CLASSIFIERS:
            choices = " or ".join(repr(c) for c in CLASSIFIERS)
            raise InputError(f"classifier must be {choices}, got {self.classifier!r}")
        if self.classifier_model is not None and self.classifier != "tp-ha3dnet":
            raise InputError(f"a classifier model ({self.classifier_model}) needs classifier 'tp-ha3dnet'")
        if not 0 <= self.back_share <= 1:
            raise InputError(f"back_share must be a fraction (0-1) of a peak, got {self.back_share}")
        if self.max_event <= self.max_micro:
            raise InputError(f"max_event ({self.max_event}) must exceed max_micro ({self.max_micro})")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _value(kind: str, text: str) -> object:
    """``text`` as a value of the field type named ``kind`` (ValueError when it is not one)."""
    t = text.strip()
    if kind == "bool":
        if t.lower() not in _TRUE + _FALSE:
            raise ValueError("expected true or false")
        return t.lower() in _TRUE
    if kind in ("int", "float"):
        return int(t) if kind == "int" else float(t)
    if kind == "tuple[float, ...]":
        return tuple(float(v) for v in t.split(",") if v.strip())
    if kind == "str | None":
        return None if t.lower() in ("", "none") else t
    if kind == "str":
        return t
    raise ValueError(f"a {kind} cannot be set from text")


def with_settings(base: SpotterOptions, settings: Iterable[str]) -> SpotterOptions:
    """``base`` with ``NAME=VALUE`` settings applied (the command lines' ``--spotter``; ``flow.NAME``
    for the patch tracker's settings; lists as ``0.1,0.2``). Unknown names and bad values are
    one-line :class:`InputError` messages that say what would have been valid."""
    top: dict[str, object] = {}
    nested: dict[str, object] = {}
    for text in settings:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"spotter setting {text!r}: expected NAME=VALUE, for example z_on=7")
        owner, _, inner = name.partition(".") if "." in name else ("", "", name)
        cls = FlowTrackOptions if owner == "flow" else SpotterOptions
        kinds = {f.name: str(f.type) for f in fields(cls) if not (cls is SpotterOptions and f.name == "flow")}
        if owner not in ("", "flow") or inner not in kinds:
            close = difflib.get_close_matches(inner, list(kinds), n=1)
            hint = f" (did you mean {owner + '.' if owner else ''}{close[0]}?)" if close else ""
            raise InputError(f"spotter setting {text!r}: expected NAME=VALUE with NAME a SpotterOptions "
                             f"field or flow.NAME{hint}; see docs/micro_expressions.md")  # fmt: skip
        try:
            (nested if owner else top)[inner] = _value(kinds[inner], value)
        except ValueError as e:
            raise InputError(f"spotter setting {name}: {value!r} is not a {kinds[inner]} ({e})") from e
    if nested:
        top["flow"] = replace(base.flow, **nested)
    return replace(base, **top)
