"""The micro-expression spotter's settings as ``export`` and ``live`` take them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from avatar_bridge.micro import SpotterOptions
from avatar_bridge.micro.spotting import with_settings


def spotter_option() -> Any:
    """``--spotter NAME=VALUE``, repeatable (one declaration for every command that spots)."""
    return typer.Option(
        None,
        "--spotter",
        metavar="NAME=VALUE",
        help="A micro-expression spotter setting, repeatable: --spotter z_on=7 (fewer, surer events), "
        "--spotter stabilise=true, --spotter flow.refresh=0.4. Every name, its default and why: "
        "SpotterOptions (docs/micro_expressions.md).",
    )


def classifier_option(what: str) -> Any:
    """``--classifier``; ``what``: where the command puts the learned model's class probabilities."""
    return typer.Option(
        "au-rules",
        "--classifier",
        help=f"Who labels micro-expressions: au-rules (default) or tp-ha3dnet (the learned model; {what}).",
    )


def classifier_model_option() -> Any:
    """``--classifier-model``, the TP-HA3DNet file."""
    return typer.Option(
        None,
        "--classifier-model",
        help="TP-HA3DNet file (avatar-bridge train tp-ha3dnet); default: the shipped models/tp_ha3dnet.pt.",
    )


def spotter_options(
    classifier: str, classifier_model: Path | None, settings: list[str] | None
) -> SpotterOptions:
    """The spotter's options from the command line (one-line errors for bad names and values). A
    TP-HA3DNet model is loaded once here, so a missing or corrupt one fails before any video is read."""
    model = str(classifier_model) if classifier_model else None
    options = with_settings(SpotterOptions(classifier=classifier, classifier_model=model), settings or ())
    if options.classifier == "tp-ha3dnet":
        from avatar_bridge.micro.classify.online import OnlineTPHA3DNet

        OnlineTPHA3DNet(options.classifier_model, warmup=0)
    return options


def calm_lines(calm: dict[int, dict[str, float]], hint_below: float = 0.1) -> list[str]:
    """One line per face: how much of its time was calm enough to look for micro-expressions; and,
    when a face was calm less than ``hint_below`` of its time in every zone, why that matters and
    how to look everywhere (a moving face otherwise reads as one without micro-expressions)."""
    lines, hint = [], False
    for face_id, c in calm.items():
        seconds = c["seconds"]
        zones = [(z if z == "face" else f"{z} face", v) for z, v in c.items() if z != "seconds"]
        if seconds > 0:  # zones: upper and lower face, or the whole face
            share = ", ".join(f"{z} {100 * v / seconds:.0f} %" for z, v in zones)
            what = "calm enough to look for micro-expressions"
            lines.append(f"face {face_id} {what}: {share} of {seconds:.1f} s")
            hint = hint or max(v for _, v in zones) < hint_below * seconds
    if hint:
        why = "micro-expressions are looked for only while the rest of that half of the face is still"
        lines.append(f"  ({why}; to look everywhere, with many more false ones: --spotter busy_window=0)")
    return lines
