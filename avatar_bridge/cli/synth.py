"""``avatar-bridge synth``: inject labelled micro-expressions into a real face video.

Writes ``<name>.mkv`` (lossless) and ``<name>.truth.json`` (ground truth) per variant into a
folder (default: the user cache, never the repository); ``avatar-bridge evaluate synth FOLDER``
scores the spotter on them. ``--still FRAME`` makes a lab-like recording instead: that frame held
still and filmed (head sway, flicker, sensor noise, JPEG), as lab datasets film a seated person.
The video is tracked once with real MediaPipe; bundled samples reuse their cached tracking. By
default the output is an 800 x 800 close-up framed on the face with the face 640 px wide, so that
amplitudes (given "at 640 px face width") are real pixels of the written video; ``--closeup 0``
keeps the source framing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from platformdirs import user_cache_dir
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from avatar_bridge.cli import app
from avatar_bridge.errors import InputError
from avatar_bridge.micro.synth import PATTERNS, CameraOptions, HeldStill, SynthOptions, generate

console = Console(stderr=True)


def _track(video: Path, bar: Progress) -> list:
    from avatar_bridge.capture import open_source
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    with open_source(video) as src, FaceTracker(TrackerOptions()) as tracker:
        task = bar.add_task(f"tracking {video.name}", total=src.info.frame_count)
        results = []
        for frame in src:
            results.append(tracker.update(frame))
            bar.advance(task)
    return results


#: Seconds over which a --light change ramps (a raised cosine), up and back.
LIGHT_RAMP = 0.1


def _light_change(text: str) -> tuple[float, float, float, float]:
    """``START:CHANGE[:SECONDS]`` as a :attr:`CameraOptions.light` change (start, ramp, change, hold)."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or parts[0] < 0 or parts[1] <= -1 or (len(parts) == 3 and parts[2] < 0):
        raise InputError(f"--light {text!r}: expected START:CHANGE[:SECONDS], e.g. 3:0.25:0 (a flash at "
                         "3 s) or 5:-0.3 (30 % darker from 5 s on); CHANGE above -1, times not negative")
    return parts[0], LIGHT_RAMP, parts[1], parts[2] if len(parts) == 3 else float("inf")


@app.command()
def synth(
    source: str = typer.Argument(..., help="A video file, or a bundled sample name such as single_face.mp4."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: the user cache)."),
    events: int | None = typer.Option(None, help="Micro-expressions per video (default: as many as fit)."),
    amplitude: list[float] = typer.Option([1.0, 2.0, 3.0, 4.0], help="Amplitudes, px at 640 px face width."),
    pattern: list[str] = typer.Option(list(PATTERNS), help=f"AU patterns: {', '.join(PATTERNS)}."),
    macro: int = typer.Option(1, help="Hard-negative macro-expressions (1-3 s) per video."),
    jitter: int = typer.Option(1, help="Hard-negative head jitters per video."),
    variants: int = typer.Option(1, min=1, help="Videos to make, seeds seed .. seed+variants-1."),
    closeup: int = typer.Option(
        800, min=0, help="Side of the square close-up in pixels (0 = source framing)."
    ),
    face_width: float = typer.Option(640.0, help="Face width in the close-up, pixels."),
    seed: int = typer.Option(0, help="Random seed of the first variant."),
    still: int | None = typer.Option(
        None,
        metavar="FRAME",
        help="Hold this frame still for --seconds and film it (head sway, flicker, sensor noise, JPEG): "
        "a lab-like recording, where a face at rest makes brief movements stand out.",
    ),
    seconds: float = typer.Option(8.0, min=0.1, help="Length of a --still recording."),
    light: list[str] = typer.Option(
        [],
        metavar="START:CHANGE[:SECONDS]",
        help="Change the room's light in a --still recording, a hard negative for spotters: from START s "
        "by CHANGE (0.25: 25 % brighter, -0.25: darker) over 0.1 s, for SECONDS and back (0: a flash), "
        "or for good without SECONDS. Repeatable; written to the truth as 'light' negatives.",
    ),
    lead_in: float | None = typer.Option(
        None,
        help="Untouched seconds at the start, while a spotter learns the face's own noise "
        "(default: 1.5 with --still, 0.6 otherwise).",
    ),
) -> None:
    """Inject labelled micro-expressions (and hard negatives) into a real face video.

    Writes NAME.mkv (lossless) and NAME.truth.json (the ground truth: every event's onset, apex,
    offset, AUs, side and label, and the hard negatives) per variant. Score the spotter on them
    with: avatar-bridge evaluate synth FOLDER.

    Example: avatar-bridge synth single_face.mp4 --still 2 --amplitude 3 -o lab
    """
    from avatar_bridge import sample_media

    folder = out or Path(user_cache_dir("avatar-bridge")) / "synth"
    is_sample = source in sample_media.SAMPLES
    video = sample_media.sample(source) if is_sample else Path(source)
    if not video.is_file():
        raise InputError(f"{source} is neither a video file nor a sample ({', '.join(sample_media.SAMPLES)})")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    lead = lead_in if lead_in is not None else 1.5 if still is not None else 0.6
    if light and still is None:
        raise InputError("--light changes the light of a --still recording; add --still FRAME")
    changes = tuple(_light_change(text) for text in light)
    written = []
    with Progress(*columns, console=console, transient=True) as bar:
        if is_sample:
            from avatar_bridge.recording import load_recording

            results = load_recording(sample_media.sample_recording(source))
        else:
            results = _track(video, bar)
        for k in range(variants):
            opts = SynthOptions(events=events, amplitudes=tuple(amplitude), patterns=tuple(pattern),
                                macro=macro, jitter=jitter, seed=seed + k, closeup=closeup or None,
                                face_width=face_width, lead_in=lead)  # fmt: skip
            camera = CameraOptions(seed=seed + k, light=changes)
            held = None if still is None else HeldStill(still, seconds, camera)
            task = bar.add_task(f"variant {k + 1}/{variants}", total=len(results))

            def progress(done: int, total: int, task: int = task) -> None:
                bar.update(task, completed=done, total=total)

            written.append(generate(video, folder, results, opts, progress=progress, still=held))
    for vid, truth in written:
        console.print(f"wrote {vid}\n      {truth}")
