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


def spotter_options(
    classifier: str, classifier_model: Path | None, settings: list[str] | None
) -> SpotterOptions:
    """The spotter's options from the command line (one-line errors for bad names and values)."""
    model = str(classifier_model) if classifier_model else None
    return with_settings(SpotterOptions(classifier=classifier, classifier_model=model), settings or ())
