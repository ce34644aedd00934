"""A picture of the AU curves that a person can read at a glance.

Top: every AU as a row of a heat map over time (0-5), frames without a face hatched.
Bottom: the strongest AUs as lines, with spotted expression events shaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avatar_bridge.channels import AU_DESCRIPTIONS, AU_INTENSITY
from avatar_bridge.records import EventKind, ExpressionEvent


def plot_au_curves(
    path: Path,
    times: np.ndarray,
    intensity: np.ndarray,
    title: str,
    events: Sequence[ExpressionEvent] = (),
    top: int = 5,
) -> Path:
    """Draw ``intensity`` (N x 17, NaN where no face) against ``times`` (N seconds) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A fixed layout (not constrained_layout) draws the figure once instead of twice: half the cost.
    fig, (ax_map, ax_lines) = plt.subplots(
        2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    fig.subplots_adjust(left=0.16, right=0.97, top=0.96, bottom=0.11, hspace=0.14)
    t0, t1 = (float(times[0]), float(times[-1])) if len(times) else (0.0, 1.0)
    t1 = t1 if t1 > t0 else t0 + 1.0
    shown = np.ma.masked_invalid(intensity.T)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="#bbbbbb")
    im = ax_map.imshow(shown, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=5,
                       extent=(t0, t1, len(AU_INTENSITY) - 0.5, -0.5))  # fmt: skip
    ax_map.set_yticks(range(len(AU_INTENSITY)))
    ax_map.set_yticklabels([f"{au} {AU_DESCRIPTIONS[au]}" for au in AU_INTENSITY], fontsize=8)
    ax_map.set_title(f"{title}: action-unit intensity (0-5, grey = no face)")
    fig.colorbar(im, ax=ax_map, fraction=0.025, pad=0.01, label="intensity")

    peak = np.nan_to_num(intensity, nan=0.0).max(axis=0) if len(intensity) else np.zeros(len(AU_INTENSITY))
    order = np.argsort(peak)[::-1][:top]
    for k in order:
        ax_lines.plot(
            times, intensity[:, k], lw=1.4, label=f"{AU_INTENSITY[k]} {AU_DESCRIPTIONS[AU_INTENSITY[k]]}"
        )
    for ev in events:
        micro = ev.kind is EventKind.MICRO
        # Micro-expressions are the rare, important marks: strong red with their label; macro-
        # expressions are a faint blue background so the curves stay readable.
        ax_lines.axvspan(ev.onset, ev.offset, color="tab:red" if micro else "tab:blue",
                         alpha=0.35 if micro else 0.08, lw=0, zorder=0)  # fmt: skip
        if micro:
            ax_map.axvline(ev.apex, color="tab:red", lw=1.2, alpha=0.9)
            ax_lines.annotate(ev.label or "micro", (ev.apex, 5.05), fontsize=7, ha="center", color="tab:red")
    n_micro = sum(e.kind is EventKind.MICRO for e in events)
    ax_lines.set_ylim(0, 5.3)
    ax_lines.set_xlim(t0, t1)
    ax_lines.set_xlabel("time (s, source clock)")
    ax_lines.set_ylabel("intensity")
    title = f"strongest {len(order)} AUs"
    if events:
        title += f"; micro-expressions: {n_micro} (red), macro: {len(events) - n_micro} (pale blue)"
    ax_lines.set_title(title)
    ax_lines.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=len(order), frameon=False
    )
    ax_lines.grid(alpha=0.3)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
