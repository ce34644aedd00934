"""``avatar-bridge live``: a camera or a video driving avatars through several sinks at once."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from avatar_bridge.capture import CaptureOptions, SourceInfo
from avatar_bridge.cli import app
from avatar_bridge.cli.spotter import (
    calm_lines,
    classifier_model_option,
    classifier_option,
    spotter_option,
    spotter_options,
)
from avatar_bridge.errors import ConfigError
from avatar_bridge.pipeline.live import LiveOptions, LivePipeline, LiveStats, LiveStatus
from avatar_bridge.tracking import TrackerOptions

console = Console(stderr=True)


def _size(text: str, option: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as e:
        raise ConfigError(f"{option} must be WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from e
    if w < 16 or h < 16:
        raise ConfigError(f"{option} must be at least 16x16, got {text!r}")
    return w, h


def vcam_url(backend: str | None, size: str, fps: float) -> str:
    _size(size, "--vcam-size")
    query = f"size={size}&fps={fps:g}" + (f"&backend={backend}" if backend else "")
    return f"vcam://?{query}"


def preview_url(path: Path) -> str:
    return f"preview://{path.resolve()}"


def _status_line(s: LiveStatus) -> str:
    face = "[green]face[/]" if s.face_found else "[red]no face[/]"
    errs = f"  [red]{s.sink_errors} sink errors[/]" if s.sink_errors else ""
    rate = f"{s.fps:5.1f} fps  latency {s.latency_ms:6.1f} ms"
    return f"{s.frames:6d} frames  {rate}  {face}  events {s.events}{errs}"


def print_live_summary(stats: LiveStats, out: Console) -> None:
    s = stats.summary()
    how = "interrupted" if stats.interrupted else "done"
    out.print(f"[bold]{how}[/]: {s['frames']} frames in {s['elapsed_s']} s ({s['fps']} fps), "
              f"face in {s['frames_with_face']}, {s['events']} expression events")  # fmt: skip
    out.print(f"latency frame->sent: median {s['latency_ms_median']} ms, p99 {s['latency_ms_p99']} ms")
    out.print(f"per frame: tracking {s['tracking_ms_median']} ms, retarget+sinks {s['output_ms_median']} ms")
    for line in calm_lines(stats.calm):
        out.print(line)
    table = Table(box=None)
    for col in ("sink", "datagrams", "errors", "first error"):
        table.add_column(col)
    for name, n in stats.datagrams.items():
        table.add_row(name, str(n), str(stats.sink_errors.get(name, 0)), stats.sink_first_error.get(name, ""))
    out.print(table)


@app.command()
def live(
    source: str = typer.Option("0", "--source", help="Camera index (0) or a video file."),
    sink: list[str] = typer.Option(
        None,
        "--sink",
        help="Sink URL, repeatable: osc://, vmc://, vrchat://, livelink:// (e.g. vmc://127.0.0.1:39539).",
    ),
    profile: str = typer.Option(
        "arkit52", "--profile", help="Rig profile (avatar-bridge profiles list) or a .toml file."
    ),
    spelling: str = typer.Option(None, help="Profile spelling variant: apple, unity or suffix."),
    calibration: Path = typer.Option(
        None, "--calibration", help="A file written by avatar-bridge calibrate."
    ),
    fast: bool = typer.Option(
        False, "--fast", help="Play videos as fast as possible, not at their frame rate."
    ),
    vcam: bool = typer.Option(False, "--vcam", help="Also render the avatar to a virtual camera."),
    vcam_backend: str = typer.Option(None, "--vcam-backend", help="v4l2loopback, obs or unitycapture."),
    vcam_size: str = typer.Option("1280x720", "--vcam-size", help="Virtual camera size, WIDTHxHEIGHT."),
    vcam_fps: float = typer.Option(30.0, "--vcam-fps", help="Virtual camera frame rate."),
    preview: Path = typer.Option(None, "--preview", help="Also render the avatar to this video file."),
    record_video: Path = typer.Option(
        None, "--record-video", help="Also save the camera frames to this video file (off by default)."
    ),
    camera_size: str = typer.Option(
        None, "--camera-size", help="Ask the camera for WIDTHxHEIGHT (it may give another; we report it)."
    ),
    camera_fps: float = typer.Option(None, "--camera-fps", help="Ask the camera for this rate (e.g. 120)."),
    overlap: bool = typer.Option(
        True,
        "--overlap/--no-overlap",
        help="Track the next frame while this one is analysed and sent (more frames a second from a source "
        "faster than the pipeline: a 120 fps camera, --fast); --no-overlap: one frame at a time, one thread.",
    ),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    num_faces: int = typer.Option(1, "--num-faces", help="Most faces to track."),
    replay_events: bool = typer.Option(False, help="Replay detected micro-expressions on the avatar."),
    classifier: str = classifier_option("its class probabilities go out as /ab/label on osc://"),
    classifier_model: Path | None = classifier_model_option(),
    spotter: list[str] = spotter_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No status line."),
) -> None:
    """Drive avatars live: several sinks at once, Ctrl-C stops with a summary.

    Examples: [cyan]avatar-bridge live --source 0 --sink vmc://127.0.0.1:39539 --profile vrm0[/] (VSeeFace,
    Warudo); [cyan]--sink osc://127.0.0.1:9100[/] (Blender add-on); [cyan]--sink vrchat:// --profile
    vrcft_unified[/]; [cyan]--sink livelink://[/] (Unreal). A sink URL may carry its own rig profile:
    [cyan]vmc://127.0.0.1:39539?profile=vrm0[/]. Everything stays on 127.0.0.1 unless a URL names another
    host; camera frames are never written to disk unless --record-video is given.
    """
    urls = list(sink or [])
    if vcam:
        urls.append(vcam_url(vcam_backend, vcam_size, vcam_fps))
    if preview is not None:
        urls.append(preview_url(preview))
    if record_video is not None:
        urls.append(f"record://{record_video.resolve()}")
    if not urls:
        raise ConfigError(
            "give at least one --sink URL (e.g. --sink osc://127.0.0.1:9100), --vcam or --preview"
        )
    cam_w, cam_h = _size(camera_size, "--camera-size") if camera_size else (None, None)
    micro = spotter_options(classifier, classifier_model, spotter)
    options = LiveOptions(
        source=source,
        sinks=tuple(urls),
        profile=profile,
        spelling=spelling,
        calibration=calibration,
        fast=fast,
        max_frames=max_frames,
        tracker=TrackerOptions(num_faces=num_faces),
        capture=CaptureOptions(max_size=1280, width=cam_w, height=cam_h, fps=camera_fps),
        replay_events=replay_events,
        spotter=micro,
        overlap=overlap,
    )
    show = not quiet and console.is_terminal

    def status(s: LiveStatus) -> None:
        console.print(_status_line(s), end="\r", highlight=False)

    def started(info: SourceInfo) -> None:
        if not quiet:
            count = f", {info.frame_count} frames" if info.frame_count else ""
            console.print(f"{info.kind} {info.name}: {info.width}x{info.height} at {info.fps:g} fps{count}")

    pipeline = LivePipeline(options, on_status=status if show else None, on_start=started)
    stats = pipeline.run()
    if show:
        console.print()
    print_live_summary(stats, console)
