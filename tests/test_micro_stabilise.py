"""The stabiliser removes the face's rigid jitter from the patch tracks and keeps an expression."""

from __future__ import annotations

import numpy as np

from avatar_bridge.micro.spotting.channels import load_config
from avatar_bridge.micro.spotting.stabilise import Stabiliser, design, rigid_motion


def _similarity(points: np.ndarray, origin: np.ndarray, coef: np.ndarray) -> np.ndarray:
    m = design(points - origin) @ coef
    return np.stack([m[: len(points)], m[len(points) :]], axis=1)


def test_jitter_goes_the_expression_stays():
    """30 fps, each frame a random similarity (0.4 px shifts, 0.1 % scale and rotation: alignment
    jitter) of all 16 patches, and a 2 px raised-cosine twitch of the right mouth corner. In the
    bumps the detector measures (0.1 s scale) the jitter keeps under a sixth of itself on the other
    patches and the twitch 90 % of itself; the two rigid channels carry the jitter (the detector
    puts it back exactly)."""
    layout = load_config().flow
    n = int((~layout.rigid).sum())
    centres, at = layout.centres[:n], layout.centres[n:]
    origin = centres.mean(axis=0)
    corner = layout.names.index("corner_r")
    stab = Stabiliser(centres, at)
    rng = np.random.default_rng(0)
    raw, kept = [], []
    for k in range(120):
        coef = rng.normal(0.0, [0.4, 0.4, 0.001, 0.001])
        rigid = _similarity(centres, origin, coef)
        expression = np.zeros((n, 2))
        phase = (k - 60) / 6.0  # a 0.4 s twitch, apex at frame 60
        expression[corner, 1] = 2.0 * (0.5 + 0.5 * np.cos(np.pi * phase)) if abs(phase) < 1 else 0.0
        residual, moved = stab.fit(rigid + expression, 1 / 30)
        raw.append(rigid + expression)
        kept.append(residual)
        full = np.vstack([residual, moved])
        restored = full + rigid_motion(layout.centres, layout.rigid, moved)
        np.testing.assert_allclose(restored[:n], rigid + expression, atol=1e-9)

    def bumps(tracks: list[np.ndarray]) -> np.ndarray:
        x = np.array(tracks)[30:]  # once the running mean has settled
        return x[3:-3] - 0.5 * (x[:-6] + x[6:])

    b_raw, b_kept = bumps(raw), bumps(kept)
    others = np.arange(n) != corner
    assert np.sqrt((b_kept[:, others] ** 2).mean()) < np.sqrt((b_raw[:, others] ** 2).mean()) / 6
    apex = 60 - 30 - 3
    assert 0.9 * b_raw[apex, corner, 1] < b_kept[apex, corner, 1] < 1.1 * b_raw[apex, corner, 1]


def test_reset_forgets_the_running_mean():
    layout = load_config().flow
    n = int((~layout.rigid).sum())
    stab = Stabiliser(layout.centres[:n], layout.centres[n:])
    for _ in range(20):
        stab.fit(np.full((n, 2), 5.0), 1 / 30)
    stab.reset()
    residual, moved = stab.fit(np.zeros((n, 2)), 1 / 30)
    assert np.abs(residual).max() < 1e-9 and np.abs(moved).max() < 1e-9


def test_stabilised_spotter_finds_the_injected_events():
    """The spotter with ``stabilise`` on a held-still recording (real frame, camera sway, noise,
    JPEG; four 4 px events): three are found at IoU >= 0.5 and the fourth overlaps its event
    (IoU 0.47: timed early), nothing else is called micro, and the rigid channels never show up
    in an event."""
    from avatar_bridge.micro import MicroSpotter, SpotterOptions
    from avatar_bridge.micro.classify.clips import still_plan
    from avatar_bridge.micro.evaluation import match_intervals
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.records import EventKind

    plan = still_plan("single_face.mp4", 2, 4.0, 1)
    prepared, results, truth = tracked_still(plan.source, plan.index, plan.seconds, plan.options, plan.camera)
    spotter = MicroSpotter(SpotterOptions(stabilise=True))
    events = []
    for frame, result in zip(still_frames_of(plan.source, plan.index, plan.seconds, prepared, plan.camera),
                             results, strict=True):  # fmt: skip
        events += spotter.update(result, (), frame)
    events += spotter.flush()
    micro = [e for e in events if e.kind == EventKind.MICRO]
    gt = [(g["onset"], g["offset"]) for g in truth["events"]]
    assert len(gt) >= 3
    assert len(gt) == len(micro)
    assert len(match_intervals(gt, [(e.onset, e.offset) for e in micro])) >= len(gt) - 1
    assert len(match_intervals(gt, [(e.onset, e.offset) for e in micro], 0.3)) == len(gt)
    assert all(set(e.regions) <= {"left_eye", "right_eye", "mouth"} for e in events)


def test_a_cutoff_that_is_not_positive_is_a_clear_error():
    import pytest

    from avatar_bridge.errors import InputError
    from avatar_bridge.micro import SpotterOptions

    with pytest.raises(InputError, match="stabilise_cutoff must be positive"):
        SpotterOptions(stabilise=True, stabilise_cutoff=0.0)
