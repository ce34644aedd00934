"""A vectorised NumPy z-buffer rasteriser (Gouraud-shaded triangles), no display and no GPU needed.

Triangles are grouped by the size of their pixel bounding box; each group tests all the pixel
centres of its boxes at once with edge functions, and the nearest fragment per pixel wins through
``np.minimum.at`` on a depth buffer. Cost grows with covered pixels, not with Python loops.
"""

from __future__ import annotations

import numpy as np

#: Largest number of candidate pixels tested in one NumPy batch (bounds peak memory).
DEFAULT_BATCH = 1 << 21


def _pow2_ceil(n: np.ndarray) -> np.ndarray:
    return (1 << np.ceil(np.log2(np.maximum(n, 1))).astype(np.int64)).astype(np.int64)


def rasterize(
    screen: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    width: int,
    height: int,
    cull_backfaces: bool = False,
    batch: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw triangles; return (rgb float32 (H, W, 3), coverage bool (H, W)).

    ``screen`` is (V, 3): pixel x, pixel y (down) and depth (smaller = nearer); ``colors`` (V, 3)
    floats are interpolated across each triangle. With ``cull_backfaces`` triangles whose corners
    appear clockwise on screen (counter-clockwise in a y-up view) are skipped.
    """
    tri = screen[faces]  # (F, 3, 3)
    x0, y0 = tri[:, 0, 0], tri[:, 0, 1]
    x1, y1 = tri[:, 1, 0], tri[:, 1, 1]
    x2, y2 = tri[:, 2, 0], tri[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    xmin = np.maximum(np.ceil(np.minimum(np.minimum(x0, x1), x2) - 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.floor(np.maximum(np.maximum(x0, x1), x2) - 0.5), width - 1).astype(np.int64)
    ymin = np.maximum(np.ceil(np.minimum(np.minimum(y0, y1), y2) - 0.5), 0).astype(np.int64)
    ymax = np.minimum(np.floor(np.maximum(np.maximum(y0, y1), y2) - 0.5), height - 1).astype(np.int64)
    keep = (xmax >= xmin) & (ymax >= ymin) & (np.abs(area) > 1e-9) & (tri[:, :, 2].min(axis=1) > 0)
    if cull_backfaces:
        keep &= area < 0
    ids = np.flatnonzero(keep)
    bw = xmax[ids] - xmin[ids] + 1
    bh = ymax[ids] - ymin[ids] + 1
    kw, kh = _pow2_ceil(bw), _pow2_ceil(bh)
    key = kw * 65536 + kh

    pix_parts, depth_parts, tri_parts, l1_parts, l2_parts = [], [], [], [], []
    for k in np.unique(key):
        sel = ids[key == k]
        gw, gh = int(k // 65536), int(k % 65536)
        step = max(1, batch // (gw * gh))
        for start in range(0, len(sel), step):
            t = sel[start : start + step]
            _fragments(t, gw, gh, xmin, ymin, xmax, ymax, tri, area, width,
                       pix_parts, depth_parts, tri_parts, l1_parts, l2_parts)  # fmt: skip

    image = np.zeros((height * width, 3), np.float32)
    covered = np.zeros(height * width, bool)
    if not pix_parts:
        return image.reshape(height, width, 3), covered.reshape(height, width)
    pix = np.concatenate(pix_parts)
    depth = np.concatenate(depth_parts)
    tri_id = np.concatenate(tri_parts)
    l1 = np.concatenate(l1_parts)
    l2 = np.concatenate(l2_parts)
    zbuf = np.full(height * width, np.inf, np.float32)
    np.minimum.at(zbuf, pix, depth)
    win = depth <= zbuf[pix]
    pix, tri_id, l1, l2 = pix[win], tri_id[win], l1[win], l2[win]
    f = faces[tri_id]
    l0 = 1.0 - l1 - l2
    image[pix] = l0[:, None] * colors[f[:, 0]] + l1[:, None] * colors[f[:, 1]] + l2[:, None] * colors[f[:, 2]]
    covered[pix] = True
    return image.reshape(height, width, 3), covered.reshape(height, width)


def _fragments(t, gw, gh, xmin, ymin, xmax, ymax, tri, area, width, pix_parts, depth_parts, tri_parts,
               l1_parts, l2_parts) -> None:  # fmt: skip
    """Append the inside fragments of triangles ``t`` whose boxes fit in ``gw`` x ``gh`` pixels."""
    ox = np.arange(gw, dtype=np.float32)
    oy = np.arange(gh, dtype=np.float32)
    bx = xmin[t].astype(np.float32)[:, None, None]
    by = ymin[t].astype(np.float32)[:, None, None]
    px = bx + ox[None, None, :] + 0.5
    py = by + oy[None, :, None] + 0.5
    p = tri[t]
    x0, y0 = p[:, 0, 0, None, None], p[:, 0, 1, None, None]
    ex1, ey1 = (p[:, 1, 0] - p[:, 0, 0])[:, None, None], (p[:, 1, 1] - p[:, 0, 1])[:, None, None]
    ex2, ey2 = (p[:, 2, 0] - p[:, 0, 0])[:, None, None], (p[:, 2, 1] - p[:, 0, 1])[:, None, None]
    inv = (1.0 / area[t])[:, None, None]
    dx = px - x0
    dy = py - y0
    l1 = (dx * ey2 - dy * ex2) * inv
    l2 = (ex1 * dy - ey1 * dx) * inv
    eps = -1e-5
    inside = (l1 >= eps) & (l2 >= eps) & (l1 + l2 <= 1.0 - eps)
    inside &= (ox[None, None, :] <= (xmax[t] - xmin[t])[:, None, None]) & (
        oy[None, :, None] <= (ymax[t] - ymin[t])[:, None, None]
    )
    n, iy, ix = np.nonzero(inside)
    if n.size == 0:
        return
    l1v = l1[n, iy, ix]
    l2v = l2[n, iy, ix]
    z = p[:, :, 2]
    tn = t[n]
    zn = z[n]
    depth = zn[:, 0] + l1v * (zn[:, 1] - zn[:, 0]) + l2v * (zn[:, 2] - zn[:, 0])
    pix_parts.append((ymin[tn] + iy) * width + (xmin[tn] + ix))
    depth_parts.append(depth.astype(np.float32))
    tri_parts.append(tn)
    l1_parts.append(l1v.astype(np.float32))
    l2_parts.append(l2v.astype(np.float32))
