"""A picture of spotting against ground truth: which injected micro-expressions (or a dataset
sheet's, :data:`DATASET_LEGEND`) were found, when, and what the false ones sat on.

One lane per generated video, time along x. Upper half of a lane: every injected micro-expression,
green when found and red when missed, named by its AU pattern and amplitude. Lower half: what the
spotter reported as micro, blue where it matched an injected event and orange where it did not,
and as a thin purple line what it reported as macro.
Grey bands behind: the hard negatives (head jitter, macro-expressions, natural blinks), where a
false micro-expression is a rejection that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from avatar_bridge.fileio import atomic_path

_FOUND, _MISSED, _MATCH, _FALSE, _NEGATIVE = "#2e9e44", "#d62728", "#1f77b4", "#ff7f0e", "#cfcfcf"
_MACRO = "#9467bd"


#: What the colours mean, in the order found, missed, matched, false, spotted macro, negative.
INJECTED_LEGEND = ("injected, found", "injected, missed", "spotted, matched", "spotted, false",
                   "spotted macro", "hard negative")  # fmt: skip
#: The same picture for a dataset's sheet: true micro-expressions, and true macro-expressions behind.
DATASET_LEGEND = ("true micro, found", "true micro, missed", "spotted micro, matched", "spotted micro, false",
                  "spotted macro", "true macro")  # fmt: skip


def plot_injected(path: str | Path, videos: Mapping[str, dict], truths: Mapping[str, dict],
                  title: str = "", max_lanes: int = 60, dpi: int = 110,
                  legend: tuple[str, ...] = INJECTED_LEGEND) -> Path:  # fmt: skip
    """Write the picture to ``path`` (PNG). ``videos``: name -> :func:`micro.evaluation.score_injected`
    result; ``truths``: name -> that video's ground truth (for its length and negatives). At most
    ``max_lanes`` videos are drawn (the first, by name), and the title says so. ``legend``: what
    each colour means (:data:`DATASET_LEGEND` for a dataset's sheet)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = sorted(videos)[:max_lanes]
    fig = Figure(figsize=(12.0, 1.2 + 0.55 * len(names)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    end = 0.0
    for lane, name in enumerate(names):
        y = len(names) - 1 - lane  # the first video on top
        scored, truth = videos[name], truths[name]
        end = max(end, float(truth["frame_count"]) / float(truth["fps"]))
        for n in truth.get("negatives", ()):
            ax.axvspan(n["onset"], n["offset"], ymin=(y + 0.05) / len(names), ymax=(y + 0.95) / len(names),
                       color=_NEGATIVE, lw=0)  # fmt: skip
            ax.text(n["offset"], y + 0.08, n["kind"], fontsize=6, color="#777777")
        for row in scored["events"]:
            colour = _FOUND if row["found"] else _MISSED
            ax.broken_barh([(row["onset"], row["offset"] - row["onset"])], (y + 0.55, 0.3), color=colour)
            amp = "" if row.get("amplitude") is None else f" {row['amplitude']:g}px"
            ax.text(row["onset"], y + 0.88, f"{row.get('pattern', '')}{amp}", fontsize=6)
            if row["found"]:
                a, b = row["spotted"]
                ax.broken_barh([(a, b - a)], (y + 0.15, 0.3), color=_MATCH)
        for a, b in scored.get("macro", ()):
            ax.broken_barh([(a, b - a)], (y + 0.02, 0.08), color=_MACRO)
        for f in scored["false"]:
            ax.broken_barh([(f["onset"], f["offset"] - f["onset"])], (y + 0.15, 0.3), color=_FALSE)
    ax.set_ylim(0, max(len(names), 1))
    ax.set_xlim(0, max(end, 1e-3))
    ticks = [len(names) - 1 - k + 0.5 for k in range(len(names))]
    ax.set_yticks(ticks, [n.split(".")[0] for n in names], fontsize=7)
    ax.set_xlabel("time (s)")
    more = f" (first {len(names)} of {len(videos)} videos)" if len(videos) > len(names) else ""
    ax.set_title(title + more, fontsize=9, loc="left")
    colours = (_FOUND, _MISSED, _MATCH, _FALSE, _MACRO, _NEGATIVE)
    handles = [Patch(color=c, label=text) for c, text in zip(colours, legend, strict=True)]
    fig.legend(handles=handles, fontsize=7, ncols=6, loc="lower center", frameon=False)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.16, right=0.98, top=1 - 0.4 / height, bottom=0.75 / height)
    path = Path(path)
    with atomic_path(path, "plot") as tmp:
        fig.savefig(tmp, format="png")
    return path
