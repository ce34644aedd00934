"""Real MediaPipe on real video: detection rates, record shapes, ARKit order, face ids, misuse."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_bridge.capture import ImageFolderSource, open_source
from avatar_bridge.channels import ARKIT_NAMES, BLENDSHAPE_TRACKED
from avatar_bridge.errors import InputError
from avatar_bridge.records import Frame
from avatar_bridge.tracking import FaceTracker, TrackerMode, TrackerOptions, _FaceIds


def test_face_found_in_single_face_video(single_face_recording):
    found = sum(r.success for r in single_face_recording)
    assert len(single_face_recording) == 72
    assert found / 72 >= 0.99


def test_no_face_found_in_no_face_video(samples):
    with open_source(samples / "no_face.mp4") as src, FaceTracker() as tracker:
        results = [tracker.update(f) for f in src]
    assert len(results) >= 90
    assert not any(r.success for r in results)


def test_observation_content(single_face_recording):
    face = single_face_recording[10].faces[0]
    assert face.landmarks.shape == (478, 3) and face.blendshapes.shape == (52,)
    assert face.face_id == 0
    # tongueOut is not tracked by MediaPipe: NaN, never invented; everything else is a score in 0..1.
    assert np.isnan(face.blendshapes[ARKIT_NAMES.index("tongueOut")])
    tracked = face.blendshapes[BLENDSHAPE_TRACKED]
    assert np.all((tracked >= 0) & (tracked <= 1))
    px = face.landmarks_px
    assert 0 < px[:, 0].min() < px[:, 0].max() < 640 and 0 < px[:, 1].min() < px[:, 1].max() < 360
    pitch, yaw, roll = face.pose.euler
    assert abs(pitch) < 0.5 and abs(yaw) < 0.5 and abs(roll) < 0.5  # a frontal talking head
    assert face.pose.translation[2] < 0  # in front of the camera (MediaPipe: +z towards the viewer)
    q = face.pose.quaternion
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-4)


def test_arkit_order_matches_names(single_face_recording):
    """The smile frames have high mouthSmile L/R at their ARKit indices, not somewhere else."""
    smile = max(
        single_face_recording, key=lambda r: r.faces[0].blendshape("mouthSmileLeft") if r.faces else 0
    )
    face = smile.faces[0]
    assert face.blendshape("mouthSmileLeft") > 0.5 and face.blendshape("mouthSmileRight") > 0.5
    assert face.blendshape("eyeBlinkLeft") < 0.5


def test_face_leaves_and_returns_keeps_its_id(samples):
    with open_source(samples / "face_noface.mov") as src, FaceTracker() as tracker:
        results = [tracker.update(f) for f in src]
    found = [r.success for r in results]
    assert any(found) and not all(found)
    assert {f.face_id for r in results for f in r.faces} == {0}


def test_several_faces_get_distinct_ids(samples, tmp_path):
    (tmp_path / "multi_face.jpg").write_bytes((samples / "multi_face.jpg").read_bytes())
    opts = TrackerOptions(mode=TrackerMode.IMAGE, num_faces=6)
    with ImageFolderSource(tmp_path) as src, FaceTracker(opts) as tracker:
        (result,) = [tracker.update(f) for f in src]
    ids = [f.face_id for f in result.faces]
    assert len(ids) >= 2 and ids == sorted(set(ids))


def test_face_ids_follow_positions():
    ids = _FaceIds(match_distance=0.25)
    a, b = np.array([0.2, 0.5]), np.array([0.8, 0.5])
    assert ids.assign([a, b]) == [0, 1]
    assert ids.assign([b + 0.01, a - 0.01]) == [1, 0]  # detection order swapped, ids follow the faces
    assert ids.assign([b]) == [1]  # face 0 left
    assert ids.assign([b, a]) == [1, 0]  # the newcomer takes the lowest free id


def test_video_mode_rejects_time_going_backwards(samples):
    with open_source(samples / "single_face.mp4") as src:
        first, second = list(src)[:2]
    with FaceTracker() as tracker:
        tracker.update(second)
        with pytest.raises(InputError, match="goes backwards"):
            tracker.update(first)
        # A repeated timestamp (or sub-millisecond spacing at >1000 fps) is nudged, not an error.
        tracker.update(Frame(second.index + 1, second.timestamp, second.image))


def test_update_after_close_is_an_error(samples):
    tracker = FaceTracker()
    tracker.close()
    tracker.close()  # idempotent
    with pytest.raises(InputError, match="after close"):
        tracker.update(Frame(0, 0.0, np.zeros((8, 8, 3), np.uint8)))


@pytest.mark.parametrize("kwargs", [{"num_faces": 0}, {"min_tracking_confidence": 1.5}])
def test_bad_tracker_options(kwargs):
    with pytest.raises(InputError):
        TrackerOptions(**kwargs)


def test_detections_converted_later_equal_update(samples):
    """The export converts detections on another thread, frames behind: MediaPipe's results must
    stay valid after later detections, and give what update() gives."""
    with open_source(samples / "single_face.mp4") as src:
        frames = [f for _, f in zip(range(12), src, strict=False)]
    with FaceTracker(TrackerOptions()) as a, FaceTracker(TrackerOptions()) as b:
        direct = [a.update(f) for f in frames]
        pending = [b.detect(f) for f in frames]
        later = [b.convert(d) for d in pending]
    for x, y in zip(direct, later, strict=True):
        assert x.index == y.index and len(x.faces) == len(y.faces) == 1
        np.testing.assert_array_equal(x.faces[0].landmarks, y.faces[0].landmarks)
        np.testing.assert_array_equal(x.faces[0].blendshapes, y.faces[0].blendshapes)
        np.testing.assert_array_equal(x.faces[0].pose.matrix, y.faces[0].pose.matrix)


def test_head_rotation_is_orthonormal_and_solved_once(single_face_recording):
    pose = single_face_recording[30].faces[0].pose
    r = pose.rotation
    assert r is pose.rotation and not r.flags.writeable  # shared by FACS, spotting and export
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-5)


def test_head_rotation_is_the_polar_factor_svd_gives(single_face_recording):
    """The rotation is solved in plain floats, not by SVD; it must be what SVD's U V^T gives: on
    every tracked pose of the sample, and on scaled, noisy, mirrored and singular matrices (the
    last falls back to SVD)."""
    from avatar_bridge.records import HeadPose

    def svd_polar(m: np.ndarray) -> np.ndarray:
        u, _, vt = np.linalg.svd(m.astype(np.float64))
        return u @ vt

    for result in single_face_recording:
        for face in result.faces:
            np.testing.assert_allclose(face.pose.rotation, svd_polar(face.pose.matrix[:3, :3]), atol=1e-6)
    rng = np.random.default_rng(0)
    for k in range(300):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a rotation or a reflection
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = rng.uniform(0.01, 100) * (q + rng.normal(0, (0, 1e-4, 1e-2, 0.3)[k % 4], (3, 3)))
        np.testing.assert_allclose(HeadPose(m).rotation, svd_polar(m[:3, :3]), atol=1e-5)
    flat = np.diag([0.0, 1.0, 1.0, 1.0]).astype(np.float32)
    np.testing.assert_allclose(HeadPose(flat).rotation, svd_polar(flat[:3, :3]), atol=1e-6)
