"""Frames per second of decode only, decode + bare FaceLandmarker, and the full export, in one run.

The three are interleaved over several rounds on the same videos (this machine is noisy) and the
median round is reported, with the ratio c/b: the goal is that the pipeline costs at most 10 %
over bare MediaPipe (c/b >= 0.9). Also reported: c/b paired (the median over rounds of each
round's own ratio, which cancels load that drifts between rounds), the CPU seconds each case used
(all threads of this process: the work done, whatever the scheduling) and the load average, since
on a shared machine c's extra threads compete with other processes for the cores. For c, the PNG's
cost after the last frame (``AUPlot.save``: CPU seconds of the thread that saves) is reported per
video, the part of the plot that cannot overlap with tracking. c'' is c with every thread at normal
priority (``ExportOptions(nice=None)``), to show what lowering the export's own threads' priority
gives in the same run.

    .venv/bin/python benchmarks/bench_export.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json  # noqa: E402

from avatar_bridge.export.plot import AUPlot  # noqa: E402
from avatar_bridge.pipeline import export as export_module  # noqa: E402
from avatar_bridge.pipeline.export import ExportOptions, export_video  # noqa: E402
from avatar_bridge.resources import resolve_model  # noqa: E402
from avatar_bridge.sample_media import sample  # noqa: E402

VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


def decode_only(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    n = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def bare_mediapipe(video: Path) -> int:
    """What a user would write with MediaPipe alone: read, convert, detect_for_video."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(resolve_model())),
        running_mode=vision.RunningMode.VIDEO, num_faces=1,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True,
    )  # fmt: skip
    cap = cv2.VideoCapture(str(video))
    n = 0
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            ts = int(cap.get(cv2.CAP_PROP_POS_MSEC))
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            landmarker.detect_for_video(image, max(ts, n))
            n += 1
    cap.release()
    return n


def full_export(video: Path, prefetch: int, plot: bool, png_seconds: list[float] | None = None,
                **more: object) -> int:  # fmt: skip
    """Export ``video``; with ``png_seconds``, append the CPU seconds its plot's save() took;
    ``more``: other ExportOptions fields."""
    options = ExportOptions(prefetch=prefetch, plot=plot, **more)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as out:
        if png_seconds is None:
            return export_video(video, out, options).frames
        with mock.patch.object(export_module, "AUPlot", _timed_plot(png_seconds)):
            return export_video(video, out, options).frames


def _timed_plot(seconds: list[float]) -> type[AUPlot]:
    class TimedPlot(AUPlot):
        def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.thread_time()
            try:
                return super().save(*args, **kwargs)
            finally:
                seconds.append(time.thread_time() - start)

    return TimedPlot


def cpu_seconds() -> float:
    """CPU time of every thread of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    png_seconds: list[float] = []
    cases = {
        "a decode only": lambda v: decode_only(v),
        "b decode + bare FaceLandmarker": lambda v: bare_mediapipe(v),
        "c full export (decode thread, CSV+JSON+PNG)": lambda v: full_export(v, 8, True, png_seconds),
        "c' full export, no PNG": lambda v: full_export(v, prefetch=8, plot=False),
        "c'' full export, all threads at normal priority": lambda v: full_export(v, 8, True, nice=None),
    }
    videos = [sample(name) for name in VIDEOS]
    timings: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    frames: dict[str, int] = {}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for label, fn in cases.items():
            total_frames, start, cpu_start = 0, time.perf_counter(), cpu_seconds()
            for v in videos:
                total_frames += fn(v)
            timings[label].append(time.perf_counter() - start)
            cpu[label].append(cpu_seconds() - cpu_start)
            frames[label] = total_frames
    load_after = os.getloadavg()
    fps = {k: frames[k] / statistics.median(t) for k, t in timings.items()}
    b_label, c_label = "b decode + bare FaceLandmarker", "c full export (decode thread, CSV+JSON+PNG)"
    b = fps[b_label]
    cpu_b = statistics.median(cpu[b_label])
    rows = [[k, frames[k], statistics.median(timings[k]), fps[k], fps[k] / b, statistics.median(cpu[k]),
             statistics.median(cpu[k]) / cpu_b] for k in cases]  # fmt: skip
    columns = ["case", "frames", "seconds", "frames/s", "ratio to b", "CPU s", "CPU to b"]
    print_table(f"export speed on {', '.join(VIDEOS)} (median of {args.rounds} interleaved rounds)",
                columns, rows)  # fmt: skip
    ratio = fps[c_label] / b
    paired = statistics.median(tb / tc for tb, tc in zip(timings[b_label], timings[c_label], strict=True))
    print(f"c/b = {ratio:.2f} (goal >= 0.90); c/b paired by round = {paired:.2f}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (2 cores)")  # fmt: skip
    png = statistics.median(png_seconds)
    print(f"PNG after the last frame (c, AUPlot.save, CPU of the saving thread): median {png * 1000:.0f} ms "
          f"per video over {len(png_seconds)} exports")  # fmt: skip
    write_json("bench_export", {"videos": VIDEOS, "rounds": args.rounds, "fps": fps, "frames": frames,
                                "seconds": timings, "cpu_seconds": cpu, "c_over_b": ratio,
                                "c_over_b_paired": paired, "cores": os.cpu_count(), "goal": 0.9,
                                "png_save_cpu_seconds": png_seconds,
                                "load_average_1min": [load_before[0], load_after[0]]})  # fmt: skip


if __name__ == "__main__":
    main()
