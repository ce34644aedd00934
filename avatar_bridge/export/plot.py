"""A picture of the AU curves that a person can read at a glance.

Top: every AU as a row of a heat map over time (0-5), frames without a face in grey.
Bottom: the strongest AUs as lines, with spotted expression events shaded and, as olive bars along
the bottom, the time the face was calm enough for micro-expressions to be looked for.

The picture costs little at the end of an export because most of it needs no data: building an
:class:`AUPlot` (which an export does while frames are still being tracked) draws the fixed layer
once (axes, the 17 AU labels, colour bar, y axes, grid and, when the time range is known up front,
the time axes) and keeps its pixels; :meth:`AUPlot.save` puts those pixels back, draws only what
depends on the data on top of them (heat map, curves, events, titles, legend) and writes the PNG.
``AUPlot().save(...)`` does both in a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from pathlib import Path

import cv2
import numpy as np

from avatar_bridge.channels import AU_DESCRIPTIONS, AU_INTENSITY
from avatar_bridge.errors import InputError, OutputError
from avatar_bridge.fileio import atomic_path
from avatar_bridge.records import EventKind, ExpressionEvent

# zlib's "filtered" strategy without PNG row filters: on these plots about a third less encoding
# time than OpenCV's default (RLE strategy, sub filter) and a file 2-3 times smaller; lossless.
_PNG_PARAMS = [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_FILTERED, cv2.IMWRITE_PNG_FILTER,
               cv2.IMWRITE_PNG_FILTER_NONE]  # fmt: skip


class AUPlot:
    """One figure of AU curves, used once: build it (no data needed), then :meth:`save` it.

    Matplotlib's object API with the Agg canvas (no pyplot: no global figure registry, no
    backend switch), so a figure may be built in one thread and saved in another.
    size: inches (width, height); dpi: pixels per inch of the PNG.
    span: the time range (s) the data will cover, first to last frame, when it is known before
    the data are (an export knows it from the source's frame count and rate): the time axes are
    then drawn with the fixed layer. Data whose range differs from it by more than
    ``span_tolerance`` of its length get time axes of their own, drawn by :meth:`save`.
    """

    def __init__(
        self,
        size: tuple[float, float] = (12.0, 8.0),
        dpi: int = 110,
        span: tuple[float, float] | None = None,
        span_tolerance: float = 0.005,
    ) -> None:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure

        if span is not None and not span[1] > span[0]:
            raise InputError(f"a plot's time span must end after it starts, got {span}")
        if not span_tolerance >= 0:
            raise InputError(f"span_tolerance must be 0 or more, got {span_tolerance}")
        self.fig = fig = Figure(figsize=size, dpi=dpi)
        FigureCanvasAgg(fig)
        # A fixed layout (not constrained_layout): the axes stay where the fixed layer put them.
        self.ax_map, self.ax_lines = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        fig.subplots_adjust(left=0.16, right=0.97, top=0.96, bottom=0.11, hspace=0.14)
        self.cmap = colormaps["magma"].with_extremes(bad="#bbbbbb")
        self.norm = Normalize(vmin=0, vmax=5)
        self.ax_map.set_yticks(range(len(AU_INTENSITY)))
        self.ax_map.set_yticklabels([f"{au} {AU_DESCRIPTIONS[au]}" for au in AU_INTENSITY], fontsize=8)
        self.ax_map.set_ylim(len(AU_INTENSITY) - 0.5, -0.5)  # AU01 in the top row
        fig.colorbar(ScalarMappable(self.norm, self.cmap), ax=self.ax_map, fraction=0.025, pad=0.01,
                     label="intensity")  # fmt: skip
        ax = self.ax_lines
        ax.set_ylim(0, 5.3)
        ax.set_xlabel("time (s, source clock)")
        ax.set_ylabel("intensity")
        ax.grid(alpha=0.3)
        self.span, self.span_tolerance = span, span_tolerance
        # The fixed layer, kept as pixels for save() to draw on: all but the time axes (their ticks
        # follow the time range) and the frames (save() draws them over the map and the curves, as
        # a full draw would). With a span, a second copy has the time axes drawn as well.
        time_axes = (self.ax_map.xaxis, ax.xaxis)
        later = [*time_axes, *self.ax_map.spines.values(), *ax.spines.values()]
        for artist in later:
            artist.set_visible(False)
        fig.canvas.draw()
        for artist in later:
            artist.set_visible(True)
        self._bare = fig.canvas.copy_from_bbox(fig.bbox)
        for axis in time_axes:  # tick objects are costly to make: made here, save() only moves them
            axis.get_major_ticks(12)  # more than a time axis of this width shows
        self._with_time_axes = None
        if span is not None:
            ax.set_xlim(*span)
            renderer = fig.canvas.get_renderer()
            for axis in time_axes:
                axis.draw(renderer)
            self._with_time_axes = fig.canvas.copy_from_bbox(fig.bbox)
        self._saved = False

    def save(
        self,
        path: Path,
        times: np.ndarray,
        intensity: np.ndarray,
        title: str,
        events: Sequence[ExpressionEvent] = (),
        top: int = 5,
        calm: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    ) -> Path:
        """Draw ``intensity`` (N x 17, NaN where no face) against ``times`` (N seconds) into a PNG.

        calm: per zone ("upper", "lower" or "face"), the (start, end) times the face was calm
        enough to look for micro-expressions (:meth:`MicroSpotter.calm_spans`): one olive bar per
        zone, so that few micro-expressions in a busy face read as "not looked for", not "none".
        """
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import to_rgba

        if self._saved:
            raise InputError("an AUPlot draws one picture; build a new one for the next")
        self._saved = True
        ax_map, ax_lines = self.ax_map, self.ax_lines
        t0, t1 = (float(times[0]), float(times[-1])) if len(times) else (0.0, 1.0)
        t1 = t1 if t1 > t0 else t0 + 1.0
        on_map: list = [ax_map.set_title(f"{title}: action-unit intensity (0-5, grey = no face)", y=1.0)]
        on_lines: list = []  # what save() draws on the fixed layer (y given: titles need no measuring)
        background = self._with_time_axes
        if background is None or not self._fits_span(t0, t1):
            background = self._bare
            ax_lines.set_xlim(t0, t1)  # both axes: they share x
            on_map.append(ax_map.xaxis)
            on_lines.append(ax_lines.xaxis)

        peak = (
            np.nan_to_num(intensity, nan=0.0).max(axis=0) if len(intensity) else np.zeros(len(AU_INTENSITY))
        )
        order = np.argsort(peak)[::-1][:top]
        columns = int(np.ceil(ax_lines.bbox.width))  # pixel columns of the curves' axes
        for k in order:
            keep = _per_pixel_column(times, intensity[:, k], ax_lines.get_xlim(), columns)
            on_lines += ax_lines.plot(
                times[keep], intensity[keep, k], lw=1.4,
                label=f"{AU_INTENSITY[k]} {AU_DESCRIPTIONS[AU_INTENSITY[k]]}",
            )  # fmt: skip
        spans, colours = [], []
        for ev in events:
            micro = ev.kind is EventKind.MICRO
            spans.append([(ev.onset, 0.0), (ev.onset, 1.0), (ev.offset, 1.0), (ev.offset, 0.0)])
            # Micro-expressions are the rare, important marks: strong red with their label; macro-
            # expressions are a faint blue background so the curves stay readable.
            colours.append(to_rgba("tab:red", 0.35) if micro else to_rgba("tab:blue", 0.08))
            if micro:
                on_map.append(ax_map.axvline(ev.apex, color="tab:red", lw=1.2, alpha=0.9))
                on_lines.append(
                    ax_lines.annotate(
                        ev.label or "micro", (ev.apex, 5.05), fontsize=7, ha="center", color="tab:red"
                    )
                )
        if spans:  # one collection (full height, in event order): far cheaper than a patch per event
            on_lines.append(
                ax_lines.add_collection(
                    PolyCollection(spans, facecolors=colours, edgecolors="none", linewidths=0, zorder=0,
                                   transform=ax_lines.get_xaxis_transform()),
                    autolim=False,
                )
            )  # fmt: skip
        n_micro = sum(e.kind is EventKind.MICRO for e in events)
        heading = f"strongest {len(order)} AUs"
        if events:
            heading += f"; micro-expressions: {n_micro} (red), macro: {len(events) - n_micro} (pale blue)"
        if calm is not None:
            on_lines += self._calm_bars(calm)
            if any(calm.values()):
                heading += "; olive: calm enough to look for micro-expressions"
            else:
                heading += "; never calm enough to look for micro-expressions"
        on_lines.append(ax_lines.set_title(heading, y=1.0))
        on_lines.append(
            ax_lines.legend(
                loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=len(order), frameon=False
            )
        )
        canvas = self.fig.canvas
        canvas.restore_region(background)
        renderer = canvas.get_renderer()
        self._draw_heat_map(renderer, t0, t1, intensity)
        for ax, artists in ((ax_map, on_map), (ax_lines, on_lines)):
            # In the order a full draw uses (z-order), the frames on top of what they border.
            for artist in sorted([*artists, *ax.spines.values()], key=attrgetter("zorder")):
                artist.draw(renderer)
        rgba = np.asarray(canvas.buffer_rgba())
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), _PNG_PARAMS)
        if not ok:  # pragma: no cover - encoding an in-memory image does not fail in practice
            raise OutputError(f"could not encode {path} as PNG")
        with atomic_path(path, "plot") as tmp:  # the project's one way to write a file
            tmp.write_bytes(png.tobytes())
        return path

    def _calm_bars(self, calm: Mapping[str, Sequence[tuple[float, float]]], height: float = 0.03) -> list:
        """One thin bar per zone along the bottom of the curves (the first zone on top), olive where
        it was calm, named at its left end; ``height``: of a bar, a fraction of the axes' height."""
        from matplotlib.collections import PolyCollection

        ax = self.ax_lines
        spans, out = [], []
        for k, (zone, times) in enumerate(calm.items()):
            y0 = (len(calm) - 1 - k) * 1.3 * height
            spans += [[(a, y0), (a, y0 + height), (b, y0 + height), (b, y0)] for a, b in times]
            name = "calm" if zone == "face" else f"calm: {zone} face"
            out.append(ax.text(0.003, y0 + height / 2, name, transform=ax.transAxes, fontsize=6, va="center",
                               color="darkolivegreen"))  # fmt: skip
        if spans:
            out.append(ax.add_collection(
                PolyCollection(spans, facecolors="tab:olive", alpha=0.6, edgecolors="none", zorder=0.5,
                               transform=ax.get_xaxis_transform()),
                autolim=False,
            ))  # fmt: skip
        return out

    def _fits_span(self, t0: float, t1: float) -> bool:
        """Whether the data's time range is the span given up front, to within the tolerance."""
        if self.span is None:
            return False
        s0, s1 = self.span
        tol = self.span_tolerance * (s1 - s0)
        return abs(t0 - s0) <= tol and abs(t1 - s1) <= tol

    def _draw_heat_map(self, renderer, t0: float, t1: float, intensity: np.ndarray) -> None:
        """Paint the AU x frame cells into the map's axes, each screen pixel the colour of its cell.

        What ``imshow(..., interpolation="nearest", extent=(t0, t1, ...))`` draws, without its
        general resampler (a third of the plot's cost at the end of an export): the N cells share
        ``t0``-``t1`` evenly, in frame order, AU01 in the top row.
        """
        ax = self.ax_map
        n = len(intensity)
        x0, y0, x1, y1 = ax.bbox.extents
        cols = np.arange(int(np.ceil(x0 - 0.5)), int(np.floor(x1 - 0.5)) + 1)  # pixel centres inside
        rows = np.arange(int(np.ceil(y0 - 0.5)), int(np.floor(y1 - 0.5)) + 1)
        if not n or not len(cols) or not len(rows):
            return
        v0, v1 = ax.get_xlim()
        t = v0 + (cols + 0.5 - x0) / (x1 - x0) * (v1 - v0)  # the time at each pixel column's centre
        cell = np.clip(np.floor((t - t0) / (t1 - t0) * n).astype(np.intp), 0, n - 1)
        au = np.floor((y1 - (rows + 0.5)) / (y1 - y0) * len(AU_INTENSITY)).astype(np.intp)
        au = np.clip(au, 0, len(AU_INTENSITY) - 1)
        # Colours of the cells the columns show (17 x columns x RGBA), then one row per pixel row.
        colours = self.cmap(self.norm(np.ma.masked_invalid(intensity[cell].T)), bytes=True)
        gc = renderer.new_gc()
        gc.set_clip_rectangle(ax.bbox)
        renderer.draw_image(gc, int(cols[0]), int(rows[0]), colours[au])  # bottom row first
        gc.restore()


def _per_pixel_column(x: np.ndarray, y: np.ndarray, xlim: tuple[float, float], columns: int) -> np.ndarray:
    """Indices of the points of the curve (x increasing) that its picture needs at ``columns`` pixels.

    A long video has many frames per pixel column; drawing them all costs time and shows nothing
    more. Each column keeps its first, last, lowest and highest point (so a one-frame spike stays)
    and the first frame of every gap (NaN: the line still breaks there); a curve with no more than
    four points per column is kept whole.
    """
    n = len(x)
    if n <= 4 * columns:
        return np.arange(n)
    col = np.clip(((x - xlim[0]) / (xlim[1] - xlim[0]) * columns).astype(np.intp), 0, columns - 1)
    first = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    last = np.r_[first[1:], n] - 1
    lowest = np.lexsort((y, col))[first]  # lexsort puts NaN last: the lowest real value in the column
    highest = np.lexsort((-y, col))[first]
    gap = np.isnan(y)
    gap_starts = np.flatnonzero(gap & ~np.r_[False, gap[:-1]])
    return np.unique(np.concatenate([first, last, lowest, highest, gap_starts]))
