"""``avatar-bridge calibrate``: record a neutral face (and optionally full expressions) to JSON.

The file holds the FACS stage's neutral (``avatar_bridge.facs.Calibration``) and the avatar
path's per-channel neutral and maximum (``RetargetCalibration``); ``live --calibration FILE`` and
``export`` reuse it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from avatar_bridge.capture import CaptureOptions, open_source
from avatar_bridge.cli import app
from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.records import TrackingResult
from avatar_bridge.retarget import CalibrationFile, RetargetCalibration, source_vector
from avatar_bridge.tracking import FaceTracker, TrackerOptions

console = Console(stderr=True)


def record_segments(
    source: str, neutral_seconds: float, expression_seconds: float, prompt: bool
) -> tuple[list[TrackingResult], list[TrackingResult]]:
    """Track ``neutral_seconds`` then ``expression_seconds`` of the source (seconds of its own clock)."""
    neutral: list[TrackingResult] = []
    expressions: list[TrackingResult] = []
    src = open_source(source, CaptureOptions(max_size=1280))
    asked = False
    try:
        with FaceTracker(TrackerOptions()) as tracker:
            if prompt:
                console.print(f"hold a [bold]neutral[/] face for {neutral_seconds:g} s ...")
            t0: float | None = None
            for frame in src:
                t0 = frame.timestamp if t0 is None else t0
                t = frame.timestamp - t0
                if t >= neutral_seconds + expression_seconds:
                    break
                result = tracker.update(frame)
                if t < neutral_seconds:
                    neutral.append(result)
                else:
                    if prompt and not asked:
                        console.print(
                            f"now make your [bold]widest expressions[/] for {expression_seconds:g} s ..."
                        )
                        asked = True
                    expressions.append(result)
    finally:
        src.close()
    return neutral, expressions


def build_calibration(neutral: list[TrackingResult], expressions: list[TrackingResult]) -> CalibrationFile:
    """FACS neutral from the neutral segment; retarget neutral/maximum from both segments."""
    from avatar_bridge.facs import AUEstimator, Calibration, FACSOptions

    with_face = [r for r in neutral if r.faces]
    if len(with_face) < 3:
        raise InputError(f"the neutral segment has {len(with_face)} frames with a face; need at least 3")
    facs_cal = Calibration.from_results(with_face)
    estimator = AUEstimator(FACSOptions())
    estimator.set_calibration(facs_cal)

    def rows(results: list[TrackingResult]) -> list:
        out = []
        for r in results:
            if r.faces:
                aus = estimator.update(r)
                out.append(source_vector(r.faces[0].blendshapes, aus[0].intensity))
        return out

    retarget = RetargetCalibration.from_samples(rows(with_face), rows(expressions))
    return CalibrationFile(facs=facs_cal, retarget=retarget)


@app.command()
def calibrate(
    source: str = typer.Option("0", "--source", help="Camera index (0) or a video file."),
    out: Path = typer.Option(..., "--out", "-o", help="Calibration JSON to write."),
    neutral_seconds: float = typer.Option(2.0, help="Seconds of neutral face at the start."),
    expression_seconds: float = typer.Option(
        0.0, help="Seconds of widest expressions after the neutral part (0 = record no maximum)."
    ),
) -> None:
    """Record a neutral face (and optionally per-channel maximum expressions) for live and export."""
    if neutral_seconds <= 0 or expression_seconds < 0:
        raise ConfigError("--neutral-seconds must be > 0 and --expression-seconds >= 0")
    prompt = source.isdigit()
    neutral, expressions = record_segments(source, neutral_seconds, expression_seconds, prompt)
    calib = build_calibration(neutral, expressions)
    calib.save(out)
    r = calib.retarget
    n_max = len(r.maximum) if r else 0
    console.print(f"wrote {out}: neutral from {calib.facs.frames} frames, maximum for {n_max} channels")
