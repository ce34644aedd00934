"""Micro-expression features and region crops on real MediaPipe output (single_face.mp4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro import features as F
from avatar_bridge.micro.flow import CROP_SIZE, FlowOptions, RegionFlow, region_crops
from avatar_bridge.records import Frame


def _rotate(points: np.ndarray, angle: float, scale: float, shift: np.ndarray) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return scale * points @ rot.T + shift


def test_umeyama_recovers_a_similarity(single_face_recording):
    src = single_face_recording[0].faces[0].landmarks_px.astype(np.float64)
    dst = _rotate(src, 0.3, 1.7, np.array([5.0, -3.0, 2.0]))
    scale, rot, trans = F.umeyama(src, dst)
    assert scale == pytest.approx(1.7, rel=1e-6)
    np.testing.assert_allclose(scale * src @ rot.T + trans, dst, atol=1e-6)


def test_alignment_removes_head_pose(single_face_recording):
    """A rolled, scaled, shifted copy of a real face aligns onto the same coordinates."""
    face = single_face_recording[10].faces[0]
    ref = F.reference_shape(single_face_recording[0].faces[0])
    pts = face.landmarks_px.astype(np.float64)
    moved = _rotate(pts - pts.mean(axis=0), 0.25, 1.3, pts.mean(axis=0) + 12.0)
    np.testing.assert_allclose(F.align(moved, ref), F.align(pts, ref), atol=1e-6)


def test_reference_is_at_640_px_face_width(single_face_recording):
    ref = F.reference_shape(single_face_recording[0].faces[0])
    assert np.hypot(*(ref[454, :2] - ref[234, :2])) == pytest.approx(F.FACE_WIDTH_UNITS, rel=1e-3)
    assert ref[10, 1] > ref[152, 1]  # forehead above chin: y is up in face axes


def test_baseline_sees_the_real_smile(single_face_recording):
    """Neutral start: small mouth displacement; the real smile (frames 20-60) moves the mouth far more."""
    base = F.LandmarkBaseline(F.reference_shape(single_face_recording[0].faces[0]))
    mouth = [i for i, (region, _) in enumerate(F.GROUPS.values()) if region == "mouth"]
    mags = []
    for r in single_face_recording:
        sample = base.update(r.faces[0], r.timestamp, frozen=r.index >= 15)
        mags.append(sample.magnitude[mouth].max())
    assert max(mags[:15]) < 3.0
    assert min(mags[25:60]) > 10.0


def test_au_cues_name_the_moved_corner(single_face_recording):
    disp = np.zeros((478, 3))
    disp[291, 1] = 3.0  # subject's left mouth corner up by 3 px at 640 px face width
    cues = F.au_cues(disp)
    assert cues["AU12"][0] == pytest.approx(3.0) and cues["AU12"][1] == 0.0
    assert cues["AU15"] == (0.0, 0.0)


def test_region_crops_are_pure_and_sized(samples, single_face_recording):
    from avatar_bridge.capture import open_source

    with open_source(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    face = single_face_recording[0].faces[0]
    crops = region_crops(frame, face)
    assert set(crops) == {"left_eye", "right_eye", "mouth"}
    for crop in crops.values():
        assert crop.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.dtype == np.uint8
        assert crop.std() > 5  # real face texture, not padding
    again = region_crops(frame.image, face)
    for name in crops:
        np.testing.assert_array_equal(crops[name], again[name])
    grey = region_crops(frame.image[..., 0].copy(), face)
    assert grey["mouth"].shape == (CROP_SIZE, CROP_SIZE)
    with pytest.raises(InputError, match="uint8"):
        region_crops(frame.image.astype(np.float32), face)


def test_region_flow_is_zero_on_a_still_image(samples, single_face_recording):
    from avatar_bridge.capture import open_source

    with open_source(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    face = single_face_recording[0].faces[0]
    flow = RegionFlow(FlowOptions())
    assert flow.update(frame, face, 0.0, False).shape == (6,)
    same = flow.update(Frame(1, 0.033, frame.image), face, 0.033, False)
    assert np.abs(same).max() < 0.05
    with pytest.raises(InputError, match="flow method"):
        FlowOptions(method="lk")
