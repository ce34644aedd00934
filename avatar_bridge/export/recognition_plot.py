"""A picture of recognition: one confusion matrix per method, side by side, so that where each
classifier goes wrong (a negative read as positive, say) shows at a glance.

Rows are the true classes, columns the predicted ones, each cell the count and its colour the share
of its row (the class's recall on the diagonal). A last column, "no label", appears when a method
left some samples unlabelled (the AU rules on an AU code they do not know, say). Each panel's title
gives the method, UF1, UAR and the number of samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from avatar_bridge.fileio import atomic_path


def plot_confusions(path: str | Path, results: Mapping[str, dict], title: str = "", dpi: int = 110) -> Path:
    """Write the picture to ``path`` (PNG). ``results``: method name ->
    :meth:`micro.evaluation.RecognitionScores.as_dict` (with ``confusion`` and ``classes``); methods
    without a confusion matrix (chance references) are left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = {name: r for name, r in results.items() if r and r.get("confusion")}
    if not panels:
        raise ValueError("no confusion matrix to draw")
    fig = Figure(figsize=(0.6 + 3.6 * len(panels), 3.7), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, r) in zip(axes, panels.items(), strict=True):
        classes = list(r["classes"])
        counts = np.asarray(r["confusion"], dtype=float)
        none = np.array([r.get("unlabelled", {}).get(c, 0) for c in classes], dtype=float)
        columns = classes + (["no label"] if none.any() else [])
        if none.any():
            counts = np.hstack([counts, none[:, None]])
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        for (i, j), v in np.ndenumerate(counts):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(columns)), columns, fontsize=8, rotation=30, ha="right")
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(f"{name}\nUF1 {r['uf1']:.3f}  UAR {r['uar']:.3f}  n {r['n']}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.subplots_adjust(left=0.12 / len(panels) + 0.05, right=0.98, bottom=0.22, top=0.78, wspace=0.55)
    path = Path(path)
    with atomic_path(path, "plot") as tmp:
        fig.savefig(tmp, format="png")
    return path
