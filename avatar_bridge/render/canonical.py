"""MediaPipe's canonical face mesh (468 vertices in landmark order) dressed up as an avatar base.

The mesh has open holes at the mouth and eyes; we close each with a strip of triangles between
the upper and lower inner contours, on duplicated vertices of their own colour, so an open mouth
shows a dark interior and a closed eye shows its lid. The strips collapse to nothing when closed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatar_bridge.errors import InputError

NUM_CANONICAL = 468
#: Inner lip contours (corner to corner), from MediaPipe's FACEMESH_LIPS.
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
#: Eye contours (corner to corner), from FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE (the subject's sides).
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
#: Eyebrows, from FACEMESH_RIGHT_EYEBROW / FACEMESH_LEFT_EYEBROW.
BROWS = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107, 276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
#: Landmarks that move little with expressions (forehead, nose bridge, eye corners, cheekbones):
#: the head pose of a tracked frame is solved on these.
RIGID_LANDMARKS = (10, 151, 9, 8, 108, 337, 67, 297, 109, 338, 69, 299, 6, 168, 197, 195, 5, 4,
                   33, 263, 133, 362, 234, 454, 127, 356, 116, 345, 123, 352)  # fmt: skip

SKIN = (0.86, 0.70, 0.60)
LIP = (0.72, 0.38, 0.38)
BROW = (0.35, 0.24, 0.18)
MOUTH_INSIDE = (0.30, 0.06, 0.08)
EYE_INSIDE = (0.16, 0.11, 0.09)


def read_canonical_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(vertices (468, 3) cm, triangles (898, 3), uvs) of ``canonical_face_mesh.obj``."""
    from avatar_bridge.render.assets import read_obj

    v, f, uv, _ = read_obj(path)
    if len(v) != NUM_CANONICAL:
        raise InputError(f"{path}: a canonical face mesh has {NUM_CANONICAL} vertices, found {len(v)}")
    return v, f, uv


def _strip(upper: tuple[int, ...], lower: tuple[int, ...]) -> list[tuple[int, int, int]]:
    tris = []
    for i in range(len(upper) - 1):
        tris.append((upper[i], upper[i + 1], lower[i + 1]))
        tris.append((upper[i], lower[i + 1], lower[i]))
    return [t for t in tris if len(set(t)) == 3]


def closed_mesh(
    vertices: np.ndarray, faces: np.ndarray, inset: float = 0.15
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add mouth and eye strips; return (source (V',), faces (F', 3), colours (V', 3), neutral (V', 3)).

    Vertex ``k`` of the result copies vertex ``source[k]`` of the canonical mesh (itself for
    k < 468), pushed ``inset`` cm back (-z) so a closed strip hides behind the lids and lips
    instead of fighting them for depth. Strip triangles come in both windings so back-face
    culling never opens a hole.
    """
    source = list(range(NUM_CANONICAL))
    colors = np.tile(np.asarray(SKIN, np.float32), (NUM_CANONICAL, 1))
    colors[list(LIPS_OUTER + LIPS_INNER_UPPER + LIPS_INNER_LOWER)] = LIP
    colors[list(BROWS)] = BROW
    new_faces = [faces]
    new_colors = [colors]
    for upper, lower, color in (
        (LIPS_INNER_UPPER, LIPS_INNER_LOWER, MOUTH_INSIDE),
        (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, EYE_INSIDE),
        (LEFT_EYE_UPPER, LEFT_EYE_LOWER, EYE_INSIDE),
    ):
        ring = sorted(set(upper) | set(lower))
        remap = {s: len(source) + i for i, s in enumerate(ring)}
        source.extend(ring)
        new_colors.append(np.tile(np.asarray(color, np.float32), (len(ring), 1)))
        tris = np.asarray(_strip(upper, lower), np.int64)
        strip = np.vectorize(remap.get)(tris)
        new_faces += [strip, strip[:, ::-1]]  # both sides: a posed strip can fold over itself
    source_arr = np.asarray(source, np.int64)
    neutral = vertices[source_arr].astype(np.float32)
    neutral[NUM_CANONICAL:, 2] -= inset
    return source_arr, np.concatenate(new_faces), np.concatenate(new_colors), neutral
