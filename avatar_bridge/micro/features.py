"""Per-frame landmark features for micro-expression spotting (causal, NumPy only).

Landmarks are aligned to a per-face reference by a 3D similarity transform fitted on rigid anchor
points (forehead, nose bridge, face contour), so head pose is removed; coordinates are then in
"pixels at 640 px face width", the unit the generator's amplitudes use. Each region's displacement
is measured against a rolling neutral baseline that the spotter freezes while an event is open.
Eyelid points are left out of the eye regions on purpose: blinks move them, brows carry the AUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar_bridge.records import FaceObservation

#: Reference face width (landmarks 234-454) that displacements are expressed at, in pixels.
FACE_WIDTH_UNITS = 640.0

#: Landmark indices per region. Sides are the subject's own (subject's left = image right unmirrored).
REGIONS: dict[str, np.ndarray] = {
    "left_eye": np.array([300, 293, 334, 296, 336, 285, 295, 282, 283, 276, 362, 263]),
    "right_eye": np.array([70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 133, 33]),
    "nose": np.array([168, 6, 197, 195, 5, 4, 1, 45, 275]),
    "mouth": np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39,
                       40, 185, 78, 308, 13, 14, 152, 199, 200, 18, 216, 436, 206, 426]),
}  # fmt: skip
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
#: Rigid points the head pose is fitted on: forehead, nose bridge, contour, inner eye corners.
ANCHORS = np.array(
    [10, 151, 9, 8, 168, 6, 197, 195, 234, 454, 127, 356, 93, 323, 133, 362, 21, 251, 162, 389]
)
#: Eye openness: (upper lid, lower lid, outer corner, inner corner) per eye.
EYE_LIDS = {"left": (386, 374, 263, 362), "right": (159, 145, 33, 133)}

# Key points for geometric AU cues: (landmark, axis, sign) with axis 0 = lateral (subject's left +),
# 1 = up. Lateral signs point away from the midline on each side.
_AU_CUES: dict[str, tuple[tuple[int, int, float], ...]] = {
    "AU01": ((55, 1, 1.0), (285, 1, 1.0), (65, 1, 1.0), (295, 1, 1.0)),
    "AU02": ((70, 1, 1.0), (300, 1, 1.0), (63, 1, 1.0), (293, 1, 1.0)),
    "AU04": ((55, 1, -1.0), (285, 1, -1.0), (107, 1, -1.0), (336, 1, -1.0)),
    "AU12": ((61, 1, 1.0), (291, 1, 1.0)),
    "AU14": ((61, 0, 1.0), (291, 0, 1.0)),
    "AU15": ((61, 1, -1.0), (291, 1, -1.0)),
    "AU17": ((152, 1, 1.0), (17, 1, 1.0)),
    "AU10": ((0, 1, 1.0), (37, 1, 1.0), (267, 1, 1.0)),
    "AU26": ((17, 1, -1.0), (152, 1, -1.0)),
}


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (scale, rotation, translation) mapping ``src`` (N, D) onto ``dst`` (least squares)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(len(sv))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = (u * sign) @ vt
    var = (s0**2).sum() / len(src)
    scale = float((sv * sign).sum() / var) if var > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def face_width_px(face: FaceObservation) -> float:
    """Face width in image pixels (landmarks 234-454, 2D)."""
    p = face.landmarks_px
    return float(np.hypot(*(p[454, :2] - p[234, :2])))


def face_axes(points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit 2D vectors (lateral towards the subject's left, up) of a face in image pixels."""
    lateral = points_px[454, :2] - points_px[234, :2]
    lateral = lateral / max(float(np.hypot(*lateral)), 1e-6)
    up = np.array([lateral[1], -lateral[0]])  # image y points down
    if np.dot(up, points_px[10, :2] - points_px[152, :2]) < 0:  # mirrored input
        up = -up
    return lateral, up


#: Image pixels (x right, y down, z away) -> y up, z towards the camera: a 180 degree turn about x,
#: a proper rotation, so that a similarity fit never has to mirror.
_Y_UP = np.array([1.0, -1.0, -1.0])


def reference_shape(face: FaceObservation) -> np.ndarray:
    """(478, 3) reference for alignment: this face, centred on its anchors, at 640 px face width.

    Axes are the face's own (x = towards the subject's left, y = up, for an unmirrored image), so
    displacements read the same whatever the roll of the first frame.
    """
    p = face.landmarks_px.astype(np.float64) * _Y_UP
    lateral = p[454, :2] - p[234, :2]
    lateral = lateral / max(float(np.hypot(*lateral)), 1e-6)
    up = np.array([-lateral[1], lateral[0]])  # lateral turned 90 degrees: a proper frame
    q = p - p[ANCHORS].mean(axis=0)
    out = np.stack([q[:, :2] @ lateral, q[:, :2] @ up, q[:, 2]], axis=1)
    return out * (FACE_WIDTH_UNITS / max(face_width_px(face), 1e-6))


def align(points_px: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Landmarks (478, 3) in image pixels -> reference frame (head pose and scale removed)."""
    p = points_px.astype(np.float64) * _Y_UP
    scale, rot, trans = umeyama(p[ANCHORS], reference[ANCHORS])
    return scale * p @ rot.T + trans


def eye_openness(points_px: np.ndarray) -> np.ndarray:
    """(left, right) lid gap divided by eye width: about 0.25-0.35 open, under 0.1 closed."""
    out = np.empty(2)
    for i, (up, lo, a, b) in enumerate(EYE_LIDS.values()):
        gap = np.hypot(*(points_px[up, :2] - points_px[lo, :2]))
        width = np.hypot(*(points_px[a, :2] - points_px[b, :2]))
        out[i] = gap / max(width, 1e-6)
    return out


def au_cues(displacement: np.ndarray) -> dict[str, tuple[float, float]]:
    """Geometric AU evidence from aligned displacements (478, 3): AU -> (left, right) in px at 640 px.

    Each cue is the movement of its key points along the AU's direction, averaged per side (midline
    points count for both), negative values clipped to 0. A fallback when no AU estimator runs: it
    names AUs, it does not measure FACS intensity.
    """
    out: dict[str, tuple[float, float]] = {}
    for au, cues in _AU_CUES.items():
        sides: dict[str, list[float]] = {"left": [], "right": []}
        for idx, axis, sign in cues:
            side = "right" if idx in _RIGHT_POINTS else "left" if idx in _LEFT_POINTS else "both"
            d = float(displacement[idx, axis])
            if axis == 0 and side == "right":  # outward on the subject's right is -x
                d = -d
            v = max(sign * d, 0.0)
            for s in ("left", "right") if side == "both" else (side,):
                sides[s].append(v)
        out[au] = (float(np.mean(sides["left"] or [0.0])), float(np.mean(sides["right"] or [0.0])))
    return out


_RIGHT_POINTS = frozenset({55, 65, 70, 63, 107, 61, 37})
_LEFT_POINTS = frozenset({285, 295, 300, 293, 336, 291, 267})


#: Small groups of neighbouring points that move together; a group's mean displacement averages
#: tracking noise away while keeping a local, coherent movement (a micro-expression is local).
GROUPS: dict[str, tuple[str, np.ndarray]] = {
    "brow_inner_l": ("left_eye", np.array([285, 295, 336, 296])),
    "brow_mid_l": ("left_eye", np.array([334, 293, 282])),
    "brow_outer_l": ("left_eye", np.array([300, 276, 283])),
    "brow_inner_r": ("right_eye", np.array([55, 65, 107, 66])),
    "brow_mid_r": ("right_eye", np.array([105, 63, 52])),
    "brow_outer_r": ("right_eye", np.array([70, 46, 53])),
    "nose_bridge": ("nose", np.array([168, 6, 197, 195])),
    "nose_tip": ("nose", np.array([5, 4, 1, 45, 275])),
    "corner_l": ("mouth", np.array([291, 409, 375, 308, 436])),
    "corner_r": ("mouth", np.array([61, 185, 146, 78, 216])),
    "lip_upper": ("mouth", np.array([0, 37, 267, 13, 39, 269])),
    "lip_lower": ("mouth", np.array([17, 84, 314, 14, 181, 405])),
    "chin": ("mouth", np.array([152, 199, 200, 18])),
    "cheek_l": ("mouth", np.array([426, 436, 432, 410])),
    "cheek_r": ("mouth", np.array([206, 216, 212, 186])),
}
GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)
#: Group index -> region index (REGION_NAMES order).
GROUP_REGION = np.array([REGION_NAMES.index(r) for r, _ in GROUPS.values()])
#: Which side of the face each group is on ('left', 'right' or 'both').
GROUP_SIDE: tuple[str, ...] = tuple(
    "left" if n.endswith("_l") else "right" if n.endswith("_r") else "both" for n in GROUP_NAMES
)
_GROUP_IDX = [g for _, g in GROUPS.values()]


_GROUP_MEAN = np.zeros((len(_GROUP_IDX), 478))
for _i, _g in enumerate(_GROUP_IDX):
    _GROUP_MEAN[_i, _g] = 1.0 / len(_g)
_GROUP_MEAN.setflags(write=False)


def group_positions(aligned: np.ndarray) -> np.ndarray:
    """(G, 2) mean aligned position of each group (GROUP_NAMES order), px at 640 px face width."""
    return _GROUP_MEAN @ aligned[:, :2]


def group_magnitudes(displacement: np.ndarray) -> np.ndarray:
    """Length of each group's mean 2D displacement (GROUP_NAMES order), px at 640 px face width."""
    d = displacement[:, :2]
    return np.array([np.hypot(*d[g].mean(axis=0)) for g in _GROUP_IDX])


@dataclass(frozen=True, slots=True)
class RegionSample:
    """One frame's features for one face.

    ``magnitude``: per group (GROUP_NAMES), the mean displacement from the neutral baseline, in px
    at 640 px face width. ``openness``: eye openness (left, right). ``displacement``: the aligned
    (478, 3) displacement field. ``aligned``: the (478, 3) aligned, lightly smoothed landmarks;
    ``positions``: their group means (G, 2), which the spotter compares with a recent reference.
    """

    timestamp: float
    magnitude: np.ndarray
    openness: np.ndarray
    displacement: np.ndarray
    aligned: np.ndarray
    positions: np.ndarray


class LandmarkBaseline:
    """Rolling neutral shape of one face: an exponential average of aligned landmarks.

    ``tau``: seconds of the average (long enough that a 0.5 s expression barely moves it);
    ``update(..., frozen=True)`` measures without learning, used while an event is open.
    """

    def __init__(self, reference: np.ndarray, tau: float = 1.5) -> None:
        self.reference = reference
        self.tau = tau
        self.neutral: np.ndarray | None = None
        self.fast: np.ndarray | None = None
        self.last_t: float | None = None
        self.seconds = 0.0  # how much neutral time the baseline has seen

    def update(self, face: FaceObservation, t: float, frozen: bool, fast_tau: float = 0.02) -> RegionSample:
        pts = face.landmarks_px
        aligned = align(pts, self.reference)
        dt = 0.0 if self.last_t is None else max(t - self.last_t, 0.0)
        self.last_t = t
        if self.fast is None:
            self.fast = aligned
        else:  # fixed-latency light smoothing, time based so 30 and 200 fps behave alike
            a = 1.0 - np.exp(-dt / fast_tau) if fast_tau > 0 else 1.0
            self.fast = self.fast + a * (aligned - self.fast)
        if self.neutral is None:
            self.neutral = self.fast.copy()
        elif not frozen:
            # A running mean while young, then an exponential average.
            self.seconds += dt
            a = max(
                1.0 - np.exp(-dt / self.tau), dt / max(self.seconds, 1e-6) if self.seconds < self.tau else 0.0
            )
            self.neutral = self.neutral + min(a, 1.0) * (self.fast - self.neutral)
        disp = self.fast - self.neutral
        fast = self.fast
        return RegionSample(t, group_magnitudes(disp), eye_openness(pts), disp, fast, group_positions(fast))

    def rebase(self) -> None:
        """Take the current shape as the new neutral (after a held expression)."""
        if self.fast is not None:
            self.neutral = self.fast.copy()
