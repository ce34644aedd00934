"""A picture of the AU curves that a person can read at a glance.

Top: every AU as a row of a heat map over time (0-5), frames without a face hatched.
Bottom: the strongest AUs as lines, with spotted expression events shaded.

The figure is built in two steps so that an export can hide most of its cost: :class:`AUPlot`
makes the parts that need no data (axes, the 17 AU labels, colour bar, axis labels) and can be
built while frames are still being tracked; :meth:`AUPlot.save` adds the curves, draws once and
writes the PNG (``AUPlot().save(...)`` does both in a row).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.channels import AU_DESCRIPTIONS, AU_INTENSITY
from avatar_bridge.errors import InputError, OutputError
from avatar_bridge.fileio import atomic_path
from avatar_bridge.records import EventKind, ExpressionEvent


class AUPlot:
    """One figure of AU curves, used once: build it (no data needed), then :meth:`save` it.

    Matplotlib's object API with the Agg canvas (no pyplot: no global figure registry, no
    backend switch), so a figure may be built in one thread and saved in another.
    size: inches (width, height); dpi: pixels per inch of the PNG.
    """

    def __init__(self, size: tuple[float, float] = (12.0, 8.0), dpi: int = 110) -> None:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure

        self.fig = fig = Figure(figsize=size, dpi=dpi)
        FigureCanvasAgg(fig)
        # A fixed layout (not constrained_layout) draws the figure once instead of twice.
        self.ax_map, self.ax_lines = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        fig.subplots_adjust(left=0.16, right=0.97, top=0.96, bottom=0.11, hspace=0.14)
        self.cmap = colormaps["magma"].with_extremes(bad="#bbbbbb")
        self.norm = Normalize(vmin=0, vmax=5)
        self.ax_map.set_yticks(range(len(AU_INTENSITY)))
        self.ax_map.set_yticklabels([f"{au} {AU_DESCRIPTIONS[au]}" for au in AU_INTENSITY], fontsize=8)
        fig.colorbar(ScalarMappable(self.norm, self.cmap), ax=self.ax_map, fraction=0.025, pad=0.01,
                     label="intensity")  # fmt: skip
        ax = self.ax_lines
        ax.set_ylim(0, 5.3)
        ax.set_xlabel("time (s, source clock)")
        ax.set_ylabel("intensity")
        ax.grid(alpha=0.3)
        ax.set_xlim(0.0, 60.0)
        # Drawing the empty figure once makes the tick objects and lays out the fixed labels, which
        # the final draw reuses: that work is done here, not when the data are in.
        fig.canvas.draw()
        self._saved = False

    def save(
        self,
        path: Path,
        times: np.ndarray,
        intensity: np.ndarray,
        title: str,
        events: Sequence[ExpressionEvent] = (),
        top: int = 5,
    ) -> Path:
        """Draw ``intensity`` (N x 17, NaN where no face) against ``times`` (N seconds) into a PNG."""
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import to_rgba

        if self._saved:
            raise InputError("an AUPlot draws one picture; build a new one for the next")
        self._saved = True
        ax_map, ax_lines = self.ax_map, self.ax_lines
        t0, t1 = (float(times[0]), float(times[-1])) if len(times) else (0.0, 1.0)
        t1 = t1 if t1 > t0 else t0 + 1.0
        shown = np.ma.masked_invalid(intensity.T)
        ax_map.imshow(shown, aspect="auto", interpolation="nearest", cmap=self.cmap, norm=self.norm,
                      extent=(t0, t1, len(AU_INTENSITY) - 0.5, -0.5))  # fmt: skip
        # y given: the title sits on the axes' top edge without measuring the tick labels first.
        ax_map.set_title(f"{title}: action-unit intensity (0-5, grey = no face)", y=1.0)

        peak = (
            np.nan_to_num(intensity, nan=0.0).max(axis=0) if len(intensity) else np.zeros(len(AU_INTENSITY))
        )
        order = np.argsort(peak)[::-1][:top]
        for k in order:
            ax_lines.plot(
                times, intensity[:, k], lw=1.4, label=f"{AU_INTENSITY[k]} {AU_DESCRIPTIONS[AU_INTENSITY[k]]}"
            )
        spans, colours = [], []
        for ev in events:
            micro = ev.kind is EventKind.MICRO
            spans.append([(ev.onset, 0.0), (ev.onset, 1.0), (ev.offset, 1.0), (ev.offset, 0.0)])
            # Micro-expressions are the rare, important marks: strong red with their label; macro-
            # expressions are a faint blue background so the curves stay readable.
            colours.append(to_rgba("tab:red", 0.35) if micro else to_rgba("tab:blue", 0.08))
            if micro:
                ax_map.axvline(ev.apex, color="tab:red", lw=1.2, alpha=0.9)
                ax_lines.annotate(
                    ev.label or "micro", (ev.apex, 5.05), fontsize=7, ha="center", color="tab:red"
                )
        if spans:  # one collection (full height, in event order): far cheaper than a patch per event
            ax_lines.add_collection(
                PolyCollection(spans, facecolors=colours, edgecolors="none", linewidths=0, zorder=0,
                               transform=ax_lines.get_xaxis_transform()),
                autolim=False,
            )  # fmt: skip
        n_micro = sum(e.kind is EventKind.MICRO for e in events)
        ax_lines.set_xlim(t0, t1)
        heading = f"strongest {len(order)} AUs"
        if events:
            heading += f"; micro-expressions: {n_micro} (red), macro: {len(events) - n_micro} (pale blue)"
        ax_lines.set_title(heading, y=1.0)
        ax_lines.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=len(order), frameon=False
        )
        self.fig.canvas.draw()
        rgba = np.asarray(self.fig.canvas.buffer_rgba())
        # OpenCV's PNG encoder (fast deflate) takes a third of the time PIL's default level does.
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR))
        if not ok:  # pragma: no cover - encoding an in-memory image does not fail in practice
            raise OutputError(f"could not encode {path} as PNG")
        with atomic_path(path, "plot") as tmp:  # the project's one way to write a file
            tmp.write_bytes(png.tobytes())
        return path

