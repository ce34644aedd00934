"""Micro-expression features and region crops on real MediaPipe output (single_face.mp4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro import features as F
from avatar_bridge.micro.flow import CROP_SIZE, region_crops
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


def test_group_positions_see_the_real_smile(single_face_recording):
    """Aligned landmark groups: the mouth moves little before the real smile and far more during it."""
    ref = F.reference_shape(single_face_recording[0].faces[0])
    mouth = [i for i, (region, _) in enumerate(F.GROUPS.values()) if region == "mouth"]
    pos = np.array([F.group_positions(F.align(r.faces[0].landmarks_px, ref)) for r in single_face_recording])
    moved = np.hypot(*(pos[:, mouth] - pos[:15, mouth].mean(axis=0)).transpose(2, 0, 1)).max(axis=1)
    assert np.median(moved[:15]) < 3.0  # MediaPipe's own jitter
    assert moved[30:].min() > 10.0


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


def _tracks():
    from avatar_bridge.micro.spotting.channels import load_config
    from avatar_bridge.micro.spotting.flowtracks import FlowTracks

    cfg = load_config()
    return cfg, FlowTracks(cfg.patches, cfg.rigid)


def test_flow_tracks_still_and_shifted(samples, single_face_recording):
    """A still image gives no motion; a rigid shift of the whole image is removed (nose box)."""
    import cv2

    from avatar_bridge.capture import open_source

    with open_source(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    face = single_face_recording[0].faces[0]
    _, tracks = _tracks()
    assert np.abs(tracks.update(frame, face, 0.0)).max() == 0.0
    assert np.abs(tracks.update(Frame(1, 0.033, frame.image), face, 0.033)).max() < 0.05
    shifted = cv2.warpAffine(frame.image, np.float32([[1, 0, 1.0], [0, 1, 0.5]]), frame.image.shape[1::-1],
                             borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    # The landmarks stay where they were (alignment unchanged): all the motion is rigid, and
    # subtracting the nose box's flow leaves under a third of it.
    shift = np.hypot(1.0, 0.5) * 640.0 / F.face_width_px(face)
    assert np.hypot(*tracks.update(Frame(2, 0.066, shifted), face, 0.066).T).max() < 0.33 * shift


def test_flow_tracks_measure_an_injected_corner_pull(corner_pull):
    """The generator's AU12 on the subject's left (4 px in a 640 px wide close-up) moves the left
    mouth-corner patch up by most of it, and the right corner patch hardly."""
    img, moved, face = corner_pull
    cfg, tracks = _tracks()
    tracks.update(img, face, 0.0)
    d = tracks.update(moved, face, 0.01)
    names = cfg.flow.names
    left, right = d[names.index("corner_l")], d[names.index("corner_r")]
    assert left[1] > 1.2 and left[0] > 0.3  # up and outwards (towards the subject's left)
    assert np.hypot(*right) < 0.3 * np.hypot(*left)


@pytest.mark.parametrize("blur", [0.0, 1.0, 1.5])
def test_flow_image_is_the_aligned_face_blurred(samples, single_face_recording, blur):
    """The flow's image is the grey aligned face, converted to float and Gaussian-blurred, exactly
    (one separable filter does both); blur 0 leaves it as it is."""
    import cv2

    from avatar_bridge.capture import open_source
    from avatar_bridge.micro.spotting.channels import load_config
    from avatar_bridge.micro.spotting.flowtracks import FlowTrackOptions, FlowTracks

    with open_source(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    cfg = load_config()
    tracks = FlowTracks(cfg.patches, cfg.rigid, FlowTrackOptions(blur=blur))
    img = tracks.image(frame, single_face_recording[0].faces[0])
    plain = tracks.align(frame, single_face_recording[0].faces[0]).astype(np.float32)
    expected = cv2.GaussianBlur(plain, (0, 0), blur) if blur > 0 else plain
    assert img.dtype == np.float32 and img.shape == (128, 128)
    np.testing.assert_array_equal(img, expected)
    assert blur == 0 or np.abs(img - plain).max() > 1.0  # it did blur


def test_a_large_face_is_averaged_before_the_warp_same_place_less_noise():
    """A face held still and filmed at 640 px width (5.6 camera pixels per aligned pixel): with
    ``antialias`` the box is greyed and halved twice by pixel averages before the warp. The aligned
    face lands in the same place (under 0.05 aligned px from the plain warp's), and the patch
    tracks of the untouched recording jitter less from frame to frame (the plain warp's bilinear
    sample reads 4 camera pixels per aligned pixel and lets their noise and aliasing through)."""
    import cv2

    from avatar_bridge.micro.spotting.channels import load_config
    from avatar_bridge.micro.spotting.flowtracks import FlowTrackOptions, FlowTracks
    from avatar_bridge.micro.synth import SynthOptions
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_camera

    cam, opts = lab_camera(0, 5), SynthOptions(events=0, macro=0, jitter=0)
    prepared, results, _ = tracked_still("single_face.mp4", 5, 4.0, opts, cam)
    frames = list(still_frames_of("single_face.mp4", 5, 4.0, prepared, cam))
    cfg = load_config()
    jitter, faces = {}, {}
    for antialias in (True, False):
        tracks = FlowTracks(cfg.patches, cfg.rigid, FlowTrackOptions(antialias=antialias))
        pos = [tracks.update(f, r.faces[0], f.timestamp) for f, r in zip(frames, results, strict=True)]
        jitter[antialias] = float(np.sqrt((np.diff(np.array(pos), axis=0) ** 2).mean()))
        faces[antialias] = tracks.align(frames[-1], results[-1].faces[0]).astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(*(cv2.GaussianBlur(faces[a], (0, 0), 1.5) for a in (True, False)))
    assert math.hypot(dx, dy) < 0.05
    assert np.abs(faces[True] - faces[False]).mean() < 3.0  # the same face, in grey levels
    assert jitter[True] < 0.85 * jitter[False], jitter
