"""Piecewise-affine warp of an image by landmark displacements (Delaunay triangles on the mesh).

Displacements are tiny (a few pixels), so the backward map uses the source triangulation:
``out(x) = in(x - d(x))`` with ``d`` interpolated linearly inside each triangle. Triangles whose
corners do not move are skipped, and points on a box around the face are pinned, so the image
outside the face is left untouched bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np


def delaunay(points: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of ``points`` (N, 2) in ``rect`` (x, y, w, h)."""
    subdiv = cv2.Subdiv2D(rect)
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    tris = subdiv.getTriangleList().reshape(-1, 3, 2)
    # Map triangle corners back to point indices (nearest point; Subdiv2D stores float32 copies).
    flat = tris.reshape(-1, 2)
    d2 = ((flat[:, None, :] - points[None, :, :].astype(np.float32)) ** 2).sum(axis=2)
    idx = d2.argmin(axis=1).reshape(-1, 3)
    ok = d2.min(axis=1).reshape(-1, 3).max(axis=1) < 1e-2  # drops triangles on Subdiv2D's outer vertices
    return idx[ok]


def warp_image(image: np.ndarray, points: np.ndarray, displacement: np.ndarray, margin: float = 0.15,
               min_move: float = 1e-3) -> np.ndarray:  # fmt: skip
    """Return a copy of ``image`` with ``points`` (N, 2, pixels) moved by ``displacement`` (N, 2, pixels).

    ``margin``: fraction of the face box added around it, pinned with zero displacement.
    """
    h, w = image.shape[:2]
    pts = np.asarray(points, dtype=np.float64)
    disp = np.asarray(displacement, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = (hi - lo) * margin
    x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + pad, [w - 1, h - 1])).astype(int)
    xs, ys = np.linspace(x0, x1, 5), np.linspace(y0, y1, 5)
    frame_pts = np.array([(x, y) for x in xs for y in ys if x in (x0, x1) or y in (y0, y1)])
    all_pts = np.vstack([np.clip(pts, [x0, y0], [x1, y1]), frame_pts])
    all_disp = np.vstack([disp, np.zeros((len(frame_pts), 2))])
    tris = delaunay(all_pts, (x0 - 1, y0 - 1, x1 - x0 + 3, y1 - y0 + 3))
    moving = np.hypot(all_disp[:, 0], all_disp[:, 1]) > min_move
    tris = tris[moving[tris].any(axis=1)]
    field = np.zeros((y1 - y0 + 1, x1 - x0 + 1, 2), np.float32)
    for tri in tris:
        p = all_pts[tri]
        bx0, by0 = np.floor(p.min(axis=0)).astype(int)
        bx1, by1 = np.ceil(p.max(axis=0)).astype(int)
        gx, gy = np.meshgrid(np.arange(bx0, bx1 + 1), np.arange(by0, by1 + 1))
        m = np.array([[p[0, 0] - p[2, 0], p[1, 0] - p[2, 0]], [p[0, 1] - p[2, 1], p[1, 1] - p[2, 1]]])
        det = np.linalg.det(m)
        if abs(det) < 1e-9:
            continue
        inv = np.linalg.inv(m)
        rx, ry = gx - p[2, 0], gy - p[2, 1]
        l1 = inv[0, 0] * rx + inv[0, 1] * ry
        l2 = inv[1, 0] * rx + inv[1, 1] * ry
        l3 = 1.0 - l1 - l2
        inside = (l1 >= -1e-9) & (l2 >= -1e-9) & (l3 >= -1e-9)
        d = all_disp[tri]
        vals = l1[..., None] * d[0] + l2[..., None] * d[1] + l3[..., None] * d[2]
        fy, fx = gy[inside] - y0, gx[inside] - x0
        field[fy, fx] = vals[inside]
    gx, gy = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.float32), np.arange(y0, y1 + 1, dtype=np.float32))
    map_x, map_y = gx - field[..., 0], gy - field[..., 1]
    out = image.copy()
    out[y0 : y1 + 1, x0 : x1 + 1] = cv2.remap(
        image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    still = (field == 0).all(axis=2)
    out[y0 : y1 + 1, x0 : x1 + 1][still] = image[y0 : y1 + 1, x0 : x1 + 1][still]
    return out


def shift_image(
    image: np.ndarray, dx: float, dy: float, angle_deg: float, centre: tuple[float, float]
) -> np.ndarray:
    """Rigid move of the whole image (head jitter): rotate about ``centre`` then translate, in pixels."""
    m = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    m[:, 2] += (dx, dy)
    h, w = image.shape[:2]
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
