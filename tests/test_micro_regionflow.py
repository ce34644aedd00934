"""The issue's dense-flow region features (mean flow and strain per 64 x 64 region) on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro.spotting.channels import load_config
from avatar_bridge.micro.spotting.flowtracks import FlowTracks
from avatar_bridge.micro.spotting.regionflow import REGION_CHANNELS, RegionFlow, strain_magnitude


def _aligned(image: np.ndarray, face) -> np.ndarray:
    cfg = load_config()
    return FlowTracks(cfg.patches, cfg.rigid).align(image, face)


def test_strain_of_a_stretch_and_of_a_shift():
    """A uniform stretch of 1 % has strain 0.01 everywhere; a shift has none."""
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    stretch = np.stack([0.01 * x, np.zeros_like(x)], axis=-1)
    np.testing.assert_allclose(strain_magnitude(stretch), 0.01, atol=1e-6)
    shift = np.full((32, 32, 2), 0.7, dtype=np.float32)
    assert np.abs(strain_magnitude(shift)).max() == 0.0


def test_regions_see_an_injected_corner_pull_in_the_mouth(corner_pull):
    """The generator's AU12 on the subject's left (4 px in a 640 px wide close-up): the mouth region's
    mean flow points up and its strain rises; the eye regions stay well below it."""
    img, moved, face = corner_pull
    regions = RegionFlow(load_config().rigid)
    still = regions.measure(_aligned(img, face), _aligned(img, face))
    assert np.abs(still).max() < 1e-3  # the same image: no flow, no strain
    d = regions.measure(_aligned(img, face), _aligned(moved, face))
    mouth, left, right = (REGION_CHANNELS.index(f"{r}_flow") for r in ("mouth", "left_eye", "right_eye"))
    strain = {r: d[REGION_CHANNELS.index(f"{r}_strain"), 0] for r in ("mouth", "left_eye", "right_eye")}
    assert d[mouth, 1] > 0.05  # up
    assert np.hypot(*d[mouth]) > 3 * max(np.hypot(*d[left]), np.hypot(*d[right]))
    assert strain["mouth"] > 2 * max(strain["left_eye"], strain["right_eye"])


def test_a_rigid_shift_is_removed_and_tracks_chain(samples, single_face_recording):
    """A shift of the whole aligned face leaves under 40 % of itself in any region's flow (the rigid
    box's flow is taken out; DIS ultrafast leaves 33 % in the left eye's region, fast 18 %); the
    reference is refreshed after ``refresh`` seconds unless held, and the tracks carry on from where
    they were instead of jumping back to zero."""
    import cv2

    from avatar_bridge.capture import open_source

    with open_source(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    a = _aligned(frame.image, single_face_recording[0].faces[0])
    move = np.float32([[1, 0, 0.8], [0, 1, 0.4]])
    shifted = cv2.warpAffine(a, move, (128, 128), borderMode=cv2.BORDER_REPLICATE)
    regions = RegionFlow(load_config().rigid)
    assert np.abs(regions.update(a, 0.0)).max() == 0.0
    first = regions.update(shifted, 0.1)
    flows = first[:3]
    rigid = np.hypot(0.8, 0.4) * regions.scale
    assert np.hypot(*flows.T).max() < 0.4 * rigid
    held = regions.update(shifted, 0.6, hold=True)  # held: still measured against the first image
    assert regions._ref is a
    np.testing.assert_allclose(held, first, atol=1e-9)
    after = regions.update(shifted, 0.7)  # refreshed at 0.7 s: the same image adds nothing
    assert regions._ref is shifted
    np.testing.assert_allclose(after, first, atol=1e-9)
    regions.reset()
    assert np.abs(regions.update(a, 1.0)).max() == 0.0


def test_spotter_on_regions_reports_region_channels(samples, single_face_recording):
    """The spotter with ``flow_features="regions"`` runs on real frames and MediaPipe tracking, and
    whatever it reports is named in the three regions."""
    from avatar_bridge.capture import open_source
    from avatar_bridge.micro import MicroSpotter, SpotterOptions

    spotter = MicroSpotter(SpotterOptions(flow_features="regions"))
    events = []
    with open_source(samples / "single_face.mp4") as src:
        for frame, result in zip(src, single_face_recording, strict=True):
            events += spotter.update(result, (), frame)
    events += spotter.flush()
    (face,) = spotter._faces.values()
    assert face.layout.names == REGION_CHANNELS
    assert face.regions is not None and face.regions._ref is not None
    assert events  # the smile in single_face.mp4
    assert all(set(e.regions) <= {"left_eye", "right_eye", "mouth"} and e.regions for e in events)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flow_features": "dense"}, "flow_features must be"),
        ({"dense_preset": "slow"}, "dense_preset must be"),
        ({"flow_features": "regions", "stabilise": True}, "stabilise fits the patch tracks"),
    ],
)
def test_bad_region_options_are_clear_errors(options, message):
    from avatar_bridge.micro import SpotterOptions

    with pytest.raises(InputError, match=message):
        SpotterOptions(**options)
