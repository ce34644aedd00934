"""Dense optical flow per face region: the features the issue names, as an alternative spotter signal.

Per frame, OpenCV's dense flow (DIS) from a reference aligned face to the current one; the mean
flow of the rigid box (head motion, alignment wobble) is subtracted; then, in each of the three
64 x 64 regions of the seed dissertation (:data:`micro.flow.CROPS`: left eye and brow, right eye
and brow, mouth), the mean non-rigid flow vector and the mean optical strain magnitude
``sqrt(exx^2 + eyy^2 + 2 exy^2)``. Like the patch tracks (:mod:`flowtracks`) the reference is
refreshed every ``refresh`` seconds while nothing moves and the measurements are chained across
refreshes, so each region gets a continuous track the detector reads as it reads a patch.

The patch tracks stay the default: a 64 x 64 mean dilutes a movement of a few patches' size, and
the strain of a sub-pixel movement sits near the flow's own noise (measured in
``benchmarks/bench_spotting.py``, results in ``docs/micro_expressions.md``).
"""

from __future__ import annotations

import cv2
import numpy as np

from avatar_bridge.errors import InputError
from avatar_bridge.micro.flow import CROP_SIZE, CROPS
from avatar_bridge.micro.spotting.flowtracks import ALIGNED_FACE_WIDTH, FlowTrackOptions

#: The region channels, in the order :meth:`RegionFlow.update` returns them: each region's mean
#: flow, then each region's strain (as a position (strain, 0)).
REGIONS = tuple(CROPS)
REGION_CHANNELS = tuple(f"{r}_flow" for r in REGIONS) + tuple(f"{r}_strain" for r in REGIONS)
#: OpenCV's DIS presets by name (ultrafast about 0.13 ms on a 128 x 128 face, fast 0.28, medium 1.4).
PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}  # fmt: skip


def strain_magnitude(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude per pixel, sqrt(exx^2 + eyy^2 + 2 exy^2), of an (H, W, 2) flow."""
    ux_y, ux_x = np.gradient(flow[..., 0])
    uy_y, uy_x = np.gradient(flow[..., 1])
    exy = 0.5 * (ux_y + uy_x)
    return np.sqrt(ux_x * ux_x + uy_y * uy_y + 2.0 * exy * exy)


class RegionFlow:
    """Chained region features of one face: ``update(aligned grey face, t, hold) -> (6, 2)``.

    ``rigid``: the box (x0, y0, x1, y1) of the aligned face whose mean flow is taken as rigid;
    ``options``: refresh and max_age as for the patch tracks (``blur`` is DIS's own business: it
    works on its image pyramid); ``preset``: a key of :data:`PRESETS`.
    """

    def __init__(self, rigid: tuple[int, int, int, int], options: FlowTrackOptions | None = None,
                 preset: str = "ultrafast") -> None:  # fmt: skip
        if preset not in PRESETS:
            raise InputError(f"DIS preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.options = options or FlowTrackOptions()
        self.rigid = rigid
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.scale = 640.0 / ALIGNED_FACE_WIDTH  # aligned px -> px at 640 px face width
        self._ref: np.ndarray | None = None
        self._ref_t = -np.inf
        self._base = np.zeros((len(REGION_CHANNELS), 2))
        self._last = self._base.copy()

    def reset(self) -> None:
        self._ref, self._ref_t = None, -np.inf
        self._base = np.zeros((len(REGION_CHANNELS), 2))
        self._last = self._base.copy()

    def measure(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """(6, 2) region features of the flow from ``ref`` to ``cur`` (uint8 grey aligned faces): mean
        non-rigid flow (x right, y up) per region, then (mean strain magnitude x crop width, 0); px at
        640 px face width."""
        flow = self._dis.calc(ref, cur, None)
        x0, y0, x1, y1 = self.rigid
        flow -= flow[y0:y1, x0:x1].reshape(-1, 2).mean(axis=0)
        strain = strain_magnitude(flow)
        out = np.zeros((len(REGION_CHANNELS), 2))
        for i, (x, y) in enumerate(CROPS.values()):
            sl = (slice(y, y + CROP_SIZE), slice(x, x + CROP_SIZE))
            out[i] = flow[sl].reshape(-1, 2).mean(axis=0)
            out[len(REGIONS) + i, 0] = float(strain[sl].mean()) * CROP_SIZE
        out[: len(REGIONS), 1] *= -1.0  # image y down -> up
        return out * self.scale

    def update(self, aligned: np.ndarray, t: float, hold: bool = False) -> np.ndarray:
        """(6, 2) chained region features (see :meth:`measure`); the reference is kept while ``hold``."""
        if self._ref is None:
            self._ref, self._ref_t = aligned, t
            return self._last.copy()
        self._last = self._base + self.measure(self._ref, aligned)
        age = t - self._ref_t
        if age >= self.options.max_age or (age >= self.options.refresh and not hold):
            self._base = self._last.copy()
            self._ref, self._ref_t = aligned, t
        return self._last.copy()
