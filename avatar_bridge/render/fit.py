"""Fit one blendshape target per ARKit channel to real tracked faces, by regularised least squares.

Each tracked frame's landmarks are put into the canonical face frame with the inverse of a
similarity pose solved on rigid landmarks (forehead, nose bridge, eye corners, cheekbones). Then,
for every frame f of recording r: ``canonical_f ~ neutral_r + sum_i w_fi * delta_i``, with
``w_f`` MediaPipe's own blendshape scores for that frame. Each recording gets its own neutral
(different people), the deltas are shared, and a ridge penalty picked by blocked cross-validation
keeps weakly excited channels small; a locality prior keeps eye and brow targets in the upper
face and jaw and mouth targets in the lower face. Channels never excited stay exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avatar_bridge.channels import ARKIT_NAMES
from avatar_bridge.errors import InputError
from avatar_bridge.records import TrackingResult
from avatar_bridge.render.canonical import NUM_CANONICAL, RIGID_LANDMARKS


@dataclass(frozen=True)
class FitOptions:
    """Tunables of :func:`fit_targets`."""

    ridge_grid: tuple[float, ...] = (
        0.003,
        0.01,
        0.03,
        0.1,
        0.3,
        1.0,
        3.0,
        10.0,
    )  # candidate penalties (frames x w^2)
    min_excitation: float = 0.05  # a channel whose 99th-percentile weight is below this stays zero
    folds: int = 5  # cross-validation folds, made of contiguous blocks
    block: int = 12  # frames per block, so neighbouring frames do not leak between folds
    rigid_landmarks: tuple[int, ...] = RIGID_LANDMARKS
    # Locality: MediaPipe's scores are correlated (a blink co-occurs with a frown...), so an
    # unconstrained fit smears every target over the whole face. Eye and brow channels may move
    # only vertices above landmark ``upper_above`` (mid-nose); jaw and mouth channels only vertices
    # below landmark ``lower_below`` (upper nose bridge); cheek and nose channels move anything.
    upper_above: int = 5
    lower_below: int = 195
    # Locality: MediaPipe's scores are correlated (a blink co-occurs with a frown...), so an
    # unconstrained fit smears every target over the whole face. Eye and brow channels may move
    # only vertices above landmark ``upper_above`` (mid-nose); jaw and mouth channels only vertices
    # below landmark ``lower_below`` (upper nose bridge); cheek and nose channels move anything.
    upper_above: int = 5
    lower_below: int = 195


@dataclass
class FitResult:
    """Deltas (52, 468, 3) in cm in ARKit order, with the numbers the model card reports."""

    deltas: np.ndarray
    excited: tuple[str, ...]
    ridge: float
    frames: int
    recordings: dict[str, int]
    rms_neutral_cm: float  # held-out RMS per landmark, per-recording neutral only
    rms_model_cm: float  # held-out RMS per landmark, neutral + fitted targets
    cv: dict[float, float] = field(default_factory=dict)  # ridge -> held-out RMS


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity: ``dst ~ s * R @ src + t``; returns (s, R, t)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    s = float((sv * np.diag(d)).sum() / (a**2).sum())
    return s, r, md - s * r @ ms


def to_canonical(landmarks: np.ndarray, image_size: tuple[int, int], reference: np.ndarray,
                 rigid: Sequence[int] = RIGID_LANDMARKS) -> np.ndarray:  # fmt: skip
    """(468, 3) landmarks of one face in the canonical frame (cm), the inverse of its pose.

    MediaPipe's normalised landmarks become pixels with +y up and +z towards the camera; the
    similarity pose is solved from ``reference`` (the canonical mesh) to them on ``rigid`` points.
    """
    w, h = image_size
    q = landmarks[:NUM_CANONICAL].astype(np.float64) * np.array([w, -h, -w])
    idx = list(rigid)
    s, r, t = similarity(reference[idx].astype(np.float64), q[idx])
    return ((q - t) @ r) / s


def collect(recordings: dict[str, list[TrackingResult]], reference: np.ndarray,
            rigid: Sequence[int] = RIGID_LANDMARKS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(canonical landmarks (N, 468, 3), weights (N, 52), recording id (N,)) of the first face per frame."""
    shapes, weights, group = [], [], []
    for gi, results in enumerate(recordings.values()):
        for r in results:
            if not r.faces:
                continue
            face = r.faces[0]
            shapes.append(to_canonical(face.landmarks, face.image_size, reference, rigid))
            weights.append(np.nan_to_num(face.blendshapes, nan=0.0))
            group.append(gi)
    if not shapes:
        raise InputError("no tracked face in the recordings: nothing to fit the avatar targets to")
    return np.asarray(shapes), np.asarray(weights, np.float64), np.asarray(group)


def locality(reference: np.ndarray, options: FitOptions) -> np.ndarray:
    """(52, 468) bool: which vertices each ARKit channel may move (see :class:`FitOptions`)."""
    y = reference[:, 1]
    upper = y > reference[options.upper_above, 1]
    lower = y < reference[options.lower_below, 1]
    allowed = np.ones((len(ARKIT_NAMES), len(reference)), bool)
    for i, name in enumerate(ARKIT_NAMES):
        if name.startswith(("eye", "brow")):
            allowed[i] = upper
        elif name.startswith(("jaw", "mouth", "tongue")):
            allowed[i] = lower
    return allowed


def _solve_local(w: np.ndarray, y: np.ndarray, group: np.ndarray, n_groups: int, ridge: float,
                 allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`_solve` per set of vertices sharing the same allowed channels; others stay zero."""
    n_v = allowed.shape[1]
    yv = y.reshape(len(y), n_v, 3)
    neutral = np.zeros((n_groups, n_v, 3))
    deltas = np.zeros((w.shape[1], n_v, 3))
    patterns, which = np.unique(allowed.T, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        verts = np.flatnonzero(which.ravel() == p)
        cols = np.flatnonzero(pattern)
        nb, db = _solve(w[:, cols], yv[:, verts].reshape(len(y), -1), group, n_groups, ridge)
        neutral[:, verts] = nb.reshape(n_groups, len(verts), 3)
        deltas[np.ix_(cols, verts)] = db.reshape(len(cols), len(verts), 3)
    return neutral.reshape(n_groups, n_v * 3), deltas.reshape(w.shape[1], n_v * 3)


def _solve(
    w: np.ndarray, y: np.ndarray, group: np.ndarray, n_groups: int, ridge: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge solution of ``y ~ onehot(group) @ N + w @ D`` (penalty on D only); returns (N, D)."""
    x = np.concatenate([np.eye(n_groups)[group], w], axis=1)
    penalty = np.concatenate([np.zeros(n_groups), np.full(w.shape[1], ridge)])
    b = np.linalg.solve(x.T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1]), x.T @ y)
    return b[:n_groups], b[n_groups:]


def fit_targets(recordings: dict[str, list[TrackingResult]], reference: np.ndarray,
                options: FitOptions | None = None) -> FitResult:  # fmt: skip
    """Fit ARKit targets on the canonical mesh ``reference`` (468, 3) from real tracked recordings."""
    o = options or FitOptions()
    shapes, weights, group = collect(recordings, reference, o.rigid_landmarks)
    n, k = len(shapes), len(ARKIT_NAMES)
    excited = np.quantile(weights, 0.99, axis=0) >= o.min_excitation
    cols = np.flatnonzero(excited)
    y = shapes.reshape(n, -1)
    w = weights[:, cols]
    n_groups = int(group.max()) + 1
    allowed = locality(reference, o)[cols]
    fold = (np.arange(n) // o.block) % o.folds

    def held_out(ridge: float, use_targets: bool) -> float:
        err2, count = 0.0, 0
        for f in range(o.folds):
            train, test = fold != f, fold == f
            if not test.any():
                continue
            wt = w if use_targets else w[:, :0]
            nb, db = _solve_local(wt[train], y[train], group[train], n_groups, ridge, allowed[: wt.shape[1]])
            pred = nb[group[test]] + wt[test] @ db
            err = (y[test] - pred).reshape(-1, NUM_CANONICAL, 3)
            err2 += float((err**2).sum(axis=2).sum())
            count += err.shape[0] * NUM_CANONICAL
        return float(np.sqrt(err2 / max(count, 1)))

    cv = {lam: held_out(lam, True) for lam in o.ridge_grid}
    best = min(cv, key=cv.get)
    _, d = _solve_local(w, y, group, n_groups, best, allowed)
    deltas = np.zeros((k, NUM_CANONICAL, 3), np.float32)
    deltas[cols] = d.reshape(len(cols), NUM_CANONICAL, 3)
    names = list(recordings)
    return FitResult(
        deltas=deltas,
        excited=tuple(ARKIT_NAMES[i] for i in cols),
        ridge=best,
        frames=n,
        recordings={names[g]: int((group == g).sum()) for g in range(n_groups)},
        rms_neutral_cm=held_out(best, False),
        rms_model_cm=cv[best],
        cv=cv,
    )
