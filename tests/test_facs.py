"""FACS stage: geometry on constructed landmarks, mapping/calibration validation, and real MediaPipe data."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avatar_bridge.capture import CaptureOptions, open_source
from avatar_bridge.channels import AU_INTENSITY, AU_PRESENCE
from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.facs import (
    GEOMETRIC_FEATURES,
    AUEstimator,
    Calibration,
    FACSOptions,
    default_mapping_path,
    face_frame,
    geometric_features,
    load_mapping,
)
from avatar_bridge.facs.appearance import APPEARANCE_FEATURES, appearance_features
from avatar_bridge.facs.estimator import presence_with_hysteresis
from avatar_bridge.facs.geometry import _CANONICAL_STABLE, CANONICAL_IOD, STABLE_POINTS, rigid_fit
from avatar_bridge.records import TrackingResult

SIZE = (640, 480)


# ---------------------------------------------------------------- constructed faces (pure geometry)


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = (math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw),
                              math.cos(roll), math.sin(roll))  # fmt: skip
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _canonical_face() -> np.ndarray:
    """A constructed face in its own frame (cm, +y up): random points, the canonical stable points the
    rigid fit uses, and the ones the tested features read."""
    rng = np.random.default_rng(7)
    p = rng.uniform(-5, 5, (478, 3))
    p[:, 2] = rng.uniform(2, 6, 478)
    set_ = {13: (0, -4.0, 5.2), 82: (-0.5, -4.0, 5.1), 312: (0.5, -4.0, 5.1),
            14: (0, -4.5, 5.4), 87: (-0.6, -4.5, 5.3), 317: (0.6, -4.5, 5.3),
            61: (-2.5, -4.3, 4.3), 291: (2.5, -4.3, 4.3),
            78: (-2.2, -4.3, 4.0), 308: (2.2, -4.3, 4.0)}  # fmt: skip
    for i, xyz in set_.items():
        p[i] = xyz
    p[list(STABLE_POINTS)] = _CANONICAL_STABLE
    return p


def _observe(points: np.ndarray, rot: np.ndarray, scale: float = 20.0, shift=(320.0, 240.0, 0.0)):
    """Project face-frame points like MediaPipe: normalised landmarks + a pose matrix."""
    cam = scale * points @ rot.T + np.asarray(shift)  # camera axes: +x right, +y up, +z to the camera
    w, h = SIZE
    landmarks = cam / np.array([w, -h, -w])
    matrix = np.eye(4)
    matrix[:3, :3] = 3.0 * rot  # MediaPipe's matrix may carry a scale: only its rotation is used
    return landmarks, matrix


def _features(points: np.ndarray, rot: np.ndarray, **kw) -> np.ndarray:
    landmarks, _ = _observe(points, rot, **kw)
    return geometric_features(landmarks, SIZE)  # the rigid fit finds the head by itself


def test_face_frame_is_in_units_of_the_interocular_distance():
    lm, _ = _observe(_canonical_face(), _rotation(0.2, -0.3, 0.1), scale=17.0)
    q = face_frame(lm, SIZE)
    assert np.linalg.norm(q[33] - q[263]) == pytest.approx(1.0)
    assert q[263, 0] > q[33, 0]  # +x is the subject's left
    assert q[33, 1] > q[13, 1]  # +y is up: the eyes sit above the mouth
    # The older pose-matrix frame is still available and agrees on a rigid face.
    lm, mat = _observe(_canonical_face(), np.eye(3))
    q_matrix = face_frame(lm, SIZE, mat)
    assert np.linalg.norm(q_matrix[33] - q_matrix[263]) == pytest.approx(1.0)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.3), (0.2, 0.0, 0.0), (0.0, 0.5, 0.0), (-0.25, 0.4, -0.2)])
def test_rigid_fit_recovers_rotation_and_scale(angles):
    rot = _rotation(*angles)
    observed = 13.0 * _CANONICAL_STABLE @ rot.T + np.array([250.0, 200.0, -40.0])
    r, s, shift = rigid_fit(observed)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    assert s == pytest.approx(13.0)
    np.testing.assert_allclose(s * _CANONICAL_STABLE @ r.T + shift, observed, atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.3), (0.2, 0.0, 0.0), (0.0, 0.5, 0.0), (-0.25, 0.4, -0.2)])
def test_features_do_not_change_with_head_pose_scale_or_position(angles):
    face = _canonical_face()
    ref = _features(face, np.eye(3))
    moved = _features(face, _rotation(*angles), scale=13.0, shift=(250.0, 200.0, -40.0))
    np.testing.assert_allclose(moved, ref, atol=1e-9)


def test_lip_gap_measures_the_inner_lip_opening():
    face = _canonical_face()
    base = _features(face, np.eye(3))
    opened = face.copy()
    opened[[14, 87, 317], 1] -= 0.1 * CANONICAL_IOD  # lower inner lip down by a tenth of the eye distance
    feats = _features(opened, _rotation(0.1, 0.3, 0.0))
    k = GEOMETRIC_FEATURES.index("lip_gap")
    assert feats[k] - base[k] == pytest.approx(0.1)
    others = [
        i for i, n in enumerate(GEOMETRIC_FEATURES) if n not in ("lip_gap", "lip_thickness", "corner_height")
    ]
    np.testing.assert_allclose(feats[others], base[others], atol=1e-9)


def test_an_opening_jaw_does_not_tilt_the_head_frame():
    """The jaw, chin and lips are not fit points: dropping them moves no brow or eye feature."""
    face = _canonical_face()
    base = _features(face, _rotation(0.1, 0.2, 0.0))
    dropped = face.copy()
    jaw = [14, 87, 317, 17, 84, 314, 152, 175, 171, 396, 61, 291, 78, 308]
    dropped[jaw, 1] -= 0.2 * CANONICAL_IOD
    dropped[jaw, 2] -= 0.05 * CANONICAL_IOD  # the chin swings back as the jaw rotates open
    feats = _features(dropped, _rotation(0.1, 0.2, 0.0))
    k = GEOMETRIC_FEATURES.index("jaw_drop")
    assert feats[k] - base[k] == pytest.approx(0.2)
    upper = [GEOMETRIC_FEATURES.index(n) for n in GEOMETRIC_FEATURES if "brow" in n or "lid" in n]
    upper.append(GEOMETRIC_FEATURES.index("eye_aperture"))
    np.testing.assert_allclose(feats[upper], base[upper], atol=1e-9)


def test_mouth_width_and_corner_height_follow_the_corners():
    face = _canonical_face()
    base = _features(face, np.eye(3))
    smile = face.copy()
    step = 0.05 * CANONICAL_IOD
    smile[[61, 78], 0] -= step
    smile[[291, 308], 0] += step
    smile[[61, 78, 291, 308], 1] += step
    feats = _features(smile, _rotation(0.0, -0.4, 0.1))
    assert feats[GEOMETRIC_FEATURES.index("mouth_width")] - base[GEOMETRIC_FEATURES.index("mouth_width")] == (
        pytest.approx(0.1)
    )
    k = GEOMETRIC_FEATURES.index("corner_height")
    assert feats[k] - base[k] == pytest.approx(0.05)


def test_degenerate_landmarks_are_an_input_error():
    face = _canonical_face()
    face[STABLE_POINTS[3]] = np.nan
    with pytest.raises(InputError, match="stable face points"):
        _features(face, np.eye(3))
    face = _canonical_face()
    face[list(STABLE_POINTS)] = face[STABLE_POINTS[0]]
    with pytest.raises(InputError, match="stable face points"):
        _features(face, np.eye(3))
    face = _canonical_face()
    face[263] = face[33]
    lm, mat = _observe(face, np.eye(3))
    with pytest.raises(InputError, match="eye corners"):
        geometric_features(lm, SIZE, mat)


def test_presence_has_hysteresis():
    on, off = np.array([1.0]), np.array([0.6])
    states, prev = [], np.array([False])
    for value in (0.8, 1.1, 0.8, 0.61, 0.5, 0.9):
        prev = presence_with_hysteresis(np.array([value]), prev, on, off)
        states.append(bool(prev[0]))
    assert states == [False, True, True, True, False, False]


# ---------------------------------------------------------------- mapping file validation


def test_packaged_mapping_loads_and_covers_every_au():
    m = load_mapping()
    assert m.path == default_mapping_path()
    assert set(m.term_au.tolist()) == set(range(len(AU_PRESENCE)))
    assert np.all(m.threshold_off <= m.threshold_on)


_GOOD = default_mapping_path().read_text(encoding="utf-8")
_AU25 = '{ source = "lip_gap", span = 0.25, weight = 0.7 }'
BAD_MAPPINGS = [
    ("unknown channel", _GOOD.replace(_AU25, '{ source = "lipGapp", span = 0.25, weight = 0.7 }'),
     "AU.AU25.inputs[0].source: unknown channel 'lipGapp'"),
    ("untracked channel", _GOOD.replace(_AU25, '{ source = "tongueOut", span = 0.25, weight = 0.7 }'),
     "MediaPipe does not track it"),
    ("span not a number", _GOOD.replace(_AU25, '{ source = "lip_gap", span = "wide", weight = 0.7 }'),
     "AU.AU25.inputs[0].span must be a finite number"),
    ("zero span", _GOOD.replace(_AU25, '{ source = "lip_gap", span = 0.0, weight = 0.7 }'),
     "AU.AU25.inputs[0].span must not be zero"),
    ("unknown input key", _GOOD.replace(_AU25, '{ source = "lip_gap", span = 0.25, wieght = 0.7 }'),
     "unknown key AU.AU25.inputs[0].wieght"),
    ("unknown AU", _GOOD.replace("[AU.AU45]", "[AU.AU99]"), "unknown action unit AU.AU99"),
    ("missing AU", _GOOD[: _GOOD.index("[AU.AU45]")], "missing action unit AU.AU45"),
    ("wrong version", _GOOD.replace("version = 1", "version = 7"), "version must be 1"),
    ("invalid TOML", _GOOD + "\n[AU.AU01\n", "is not valid TOML"),
    ("bad percentile", _GOOD.replace("baseline_percentile = 10.0", "baseline_percentile = 150"),
     "defaults.baseline_percentile must be between 0 and 100"),
    ("typical outside range", _GOOD.replace("typical = 0.005", "typical = 0.5"),
     "sources.lip_gap.typical (0.5) lies outside its neutral range"),
    ("unknown source table", _GOOD + "\n[sources.chinDimple]\nbaseline = 10\n",
     "sources.chinDimple: unknown channel"),
    ("appearance share above 1",
     _GOOD.replace('source = "glabella_furrows", span = 1.2, weight = 0.5',
                   'source = "glabella_furrows", span = 1.2, weight = 1.5'),
     "AU.AU04: appearance weights add up to 1.5, more than 1"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "message"), BAD_MAPPINGS, ids=[c[0] for c in BAD_MAPPINGS])
def test_bad_mapping_files_name_file_and_key(tmp_path, case, text, message):
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    assert text != _GOOD
    with pytest.raises(ConfigError) as err:
        AUEstimator(FACSOptions(mapping_path=path))
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_mapping_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.toml")


def test_mapping_path_overrides_the_packaged_mapping(tmp_path, single_face_recording):
    path = tmp_path / "half_gain.toml"
    # Double every AU12 span: the same smile reads about half as strong.
    text = _GOOD.replace(
        'source = "mouthSmileLeft", span = 1.0, weight = 0.25',
        'source = "mouthSmileLeft", span = 2.0, weight = 0.25',
    )
    text = text.replace(
        'source = "mouthSmileRight", span = 1.0, weight = 0.25',
        'source = "mouthSmileRight", span = 2.0, weight = 0.25',
    )
    text = text.replace('source = "corner_height", span = 0.12', 'source = "corner_height", span = 0.24')
    text = text.replace(
        'source = "mouth_width", span = 0.25, weight = 0.25',
        'source = "mouth_width", span = 0.50, weight = 0.25',
    )
    path.write_text(text, encoding="utf-8")
    k = AU_INTENSITY.index("AU12")
    default = _intensities(AUEstimator(), single_face_recording)[:, k]
    halved = _intensities(AUEstimator(FACSOptions(mapping_path=path)), single_face_recording)[:, k]
    assert halved.max() < 0.6 * default.max()


# ---------------------------------------------------------------- real MediaPipe output


def _intensities(estimator: AUEstimator, results: list[TrackingResult]) -> np.ndarray:
    return np.array([estimator.update(r)[0].intensity for r in results])


def test_au12_at_the_smile_is_clearly_above_the_neutral_start(single_face_recording):
    aus = [AUEstimator().update(r) for r in single_face_recording[:1]]
    assert len(aus[0]) == 1 and aus[0][0].calibrated is False
    values = _intensities(AUEstimator(), single_face_recording)
    assert values.shape == (len(single_face_recording), len(AU_INTENSITY))
    assert np.all((values >= 0) & (values <= 5))
    au12 = values[:, AU_INTENSITY.index("AU12")]
    neutral, smile = au12[:12].mean(), au12[25:60].mean()
    assert neutral < 0.5
    assert smile > 2.5 and smile > neutral + 2.0


def test_presence_follows_intensity_on_real_data(single_face_recording):
    est = AUEstimator()
    out = [est.update(r)[0] for r in single_face_recording]
    au12_c = np.array([a["AU12_c"] for a in out])
    assert au12_c[:12].max() == 0 and au12_c[25:60].min() == 1
    assert all(
        a.presence.shape == (len(AU_PRESENCE),) and set(np.unique(a.presence)) <= {0.0, 1.0} for a in out
    )


def test_calibrated_neutral_segment_reads_near_zero(single_face_recording):
    neutral = single_face_recording[:15]  # single_face.mp4 opens neutral; the smile starts near frame 18
    est = AUEstimator()
    cal = est.calibrate(neutral)
    assert cal.frames == 15
    out = [est.update(r)[0] for r in single_face_recording]
    assert all(a.calibrated for a in out)
    values = np.array([a.intensity for a in out])
    assert values[:15].mean() < 0.1
    assert np.percentile(values[:15], 95) < 0.5
    assert np.array([a.presence for a in out[:15]]).max() == 0
    assert values[25:60, AU_INTENSITY.index("AU12")].mean() > 2.5


def test_calibration_json_round_trip(tmp_path, single_face_recording):
    cal = Calibration.from_results(single_face_recording[:15])
    path = cal.save(tmp_path / "me.json")
    again = Calibration.load(path)
    assert again == cal
    assert not list(tmp_path.glob("*.part"))
    # The saved file drives an estimator through FACSOptions, identically to the in-memory one.
    a, b = AUEstimator(FACSOptions(calibration_path=path)), AUEstimator()
    b.set_calibration(cal)
    for r in single_face_recording[::7]:
        np.testing.assert_array_equal(a.update(r)[0].intensity, b.update(r)[0].intensity)


def test_calibration_needs_neutral_frames_with_a_face(single_face_recording):
    empty = [TrackingResult(r.index, r.timestamp, r.image_size, ()) for r in single_face_recording[:20]]
    with pytest.raises(InputError, match="at least 3 neutral frames"):
        Calibration.from_results(empty)
    with pytest.raises(InputError, match="face 5"):
        Calibration.from_results(single_face_recording[:20], face_id=5)


def _calibration_json() -> dict:
    from avatar_bridge.facs import SOURCES

    return {"format": "avatar-bridge/facs-calibration", "version": 2, "frames": 10, "face_id": None,
            "neutral": {s: 0.0 for s in SOURCES}, "spread": {s: 0.0 for s in SOURCES}}  # fmt: skip


def _with(**changes) -> str:
    data = _calibration_json()
    for key, value in changes.items():
        if key == "neutral_extra":
            data["neutral"].update(value)
        elif key == "drop_neutral":
            del data["neutral"][value]
        else:
            data[key] = value
    return json.dumps(data)


BAD_CALIBRATIONS = [
    ("not json", "{neutral: 1", "is not valid JSON (line 1"),
    ("not an object", "[1, 2]", "must be a JSON object"),
    ("wrong format", _with(format="openface"), "field 'format' must be"),
    ("wrong version", _with(version=3), "field 'version' must be 2"),
    ("older version", _with(version=1), "made by an older avatar-bridge: calibrate again"),
    ("zero frames", _with(frames=0), "field 'frames' must be a positive integer"),
    ("unknown input", _with(neutral_extra={"mouthSmile": 0.1}),
     "field 'neutral.mouthSmile': unknown input name"),
    ("not a number", _with(neutral_extra={"jawOpen": "open"}),
     "field 'neutral.jawOpen' must be a finite number"),
    ("missing input", _with(drop_neutral="lip_gap"), "field 'neutral' lacks 'lip_gap'"),
    ("neutral not a table", _with(neutral=[0.1]), "field 'neutral' must be an object"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "message"), BAD_CALIBRATIONS, ids=[c[0] for c in BAD_CALIBRATIONS])
def test_bad_calibration_files_name_file_and_field(tmp_path, case, text, message):
    path = tmp_path / "calibration.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Calibration.load(path)
    assert str(path) in str(err.value) and message in str(err.value)
    with pytest.raises(ConfigError):
        AUEstimator(FACSOptions(calibration_path=path))


def test_good_calibration_json_loads():
    cal = Calibration.from_json(json.loads(_with()), "x.json")
    assert cal.frames == 10 and cal.neutral["lip_gap"] == 0.0


def test_missing_calibration_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="calibration file not found"):
        Calibration.load(tmp_path / "none.json")


def test_face_ids_keep_separate_baselines(single_face_recording, wolfgang_recording):
    """Two people in one stream read exactly as each alone: no baseline or presence state is shared."""
    n = len(single_face_recording)
    merged = []
    for a, b in zip(single_face_recording, wolfgang_recording[:n], strict=True):
        face_b = replace(b.faces[0], face_id=1, image_size=a.image_size) if b.faces else None
        merged.append(
            TrackingResult(a.index, a.timestamp, a.image_size, (*a.faces, *(face_b,) * bool(face_b)))
        )
    both, alone_a, alone_b = AUEstimator(), AUEstimator(), AUEstimator()
    for m in merged:
        out = both.update(m)
        assert [x.face_id for x in out] == [f.face_id for f in m.faces]
        ref_a = alone_a.update(TrackingResult(m.index, m.timestamp, m.image_size, m.faces[:1]))[0]
        np.testing.assert_array_equal(out[0].intensity, ref_a.intensity)
        np.testing.assert_array_equal(out[0].presence, ref_a.presence)
        if len(m.faces) > 1:
            ref_b = alone_b.update(TrackingResult(m.index, m.timestamp, m.image_size, m.faces[1:]))[0]
            np.testing.assert_array_equal(out[1].intensity, ref_b.intensity)
    # The two people really do differ, so sharing a baseline would have shown.
    assert not np.allclose(out[0].intensity, out[1].intensity)


def test_a_calibration_for_one_face_leaves_the_other_on_its_running_baseline(single_face_recording):
    est = AUEstimator()
    est.calibrate(single_face_recording[:15], face_id=0)
    r = single_face_recording[30]
    other = replace(r.faces[0], face_id=3)
    out = est.update(TrackingResult(r.index, r.timestamp, r.image_size, (r.faces[0], other)))
    assert out[0].calibrated and not out[1].calibrated


def test_reset_forgets_running_state(wolfgang_recording):
    est = AUEstimator()
    for r in wolfgang_recording[:200]:
        est.update(r)
    est.reset()
    fresh = AUEstimator()
    for r in wolfgang_recording[200:260]:
        if r.faces:
            np.testing.assert_array_equal(est.update(r)[0].intensity, fresh.update(r)[0].intensity)


def test_no_face_gives_no_action_units():
    assert AUEstimator().update(TrackingResult(0, 0.0, SIZE, ())) == ()


@pytest.mark.parametrize(
    "bad",
    [{"baseline_window": 0.0}, {"baseline_interval": -1.0}, {"max_faces": 0}, {"calibration_deadband": -1}],
)
def test_bad_options_are_config_errors(bad):
    with pytest.raises(ConfigError):
        FACSOptions(**bad)


def test_mapping_doc_describes_every_au():
    doc = (Path(default_mapping_path()).parent / "FACS_MAPPING.md").read_text(encoding="utf-8")
    for au in AU_PRESENCE:
        assert f"### {au}" in doc


# ---------------------------------------------------------------- appearance cues


def _glabella_face(roll: float, scale: float = 12.0) -> np.ndarray:
    """Normalised landmarks of a constructed face seen frontally with a head roll, centred in SIZE."""
    rot = _rotation(0.0, 0.0, roll)
    cam = scale * _canonical_face() @ rot.T
    w, h = SIZE
    centre = np.array([w / 2, h / 2])
    px = np.column_stack((cam[:, 0] + centre[0], -cam[:, 1] + centre[1]))  # image rows grow downwards
    return np.column_stack((px / np.array([w, h]), -cam[:, 2] / w))


def _skin_with_creases(roll: float, direction: str, depth: float, gain: float = 1.0, scale: float = 12.0):
    """An RGB skin-grey image whose glabella (face x in +-0.6 cm, y 3.8-5.1 cm) carries four dark
    creases 1 mm wide, vertical or horizontal in the face's own frame, under a head roll."""
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (xx - w / 2) / scale, -(yy - h / 2) / scale  # camera-plane cm, +v up
    c, s_ = math.cos(roll), math.sin(roll)
    fx, fy = c * u + s_ * v, -s_ * u + c * v  # back into the face frame (inverse roll)
    rng = np.random.default_rng(3)
    grey = 150.0 + rng.normal(0.0, 1.5, (h, w))
    across, along = (fx, fy) if direction == "vertical" else (fy - 4.45, fx)
    inside = (np.abs(across) < 0.6) & (np.abs(along - (4.45 if direction == "vertical" else 0.0)) < 0.65)
    for pos in (-0.45, -0.15, 0.15, 0.45):
        grey -= depth * inside * np.exp(-((across - pos) ** 2) / (2 * 0.05**2))
    return np.repeat(np.clip(gain * grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _glabella(image: np.ndarray, landmarks: np.ndarray) -> float:
    return float(appearance_features(image, landmarks)[APPEARANCE_FEATURES.index("glabella_furrows")])


def test_glabella_cue_sees_vertical_furrows_not_horizontal_ones_and_ignores_light_and_roll():
    lm = _glabella_face(0.0)
    smooth = _glabella(_skin_with_creases(0.0, "vertical", 0.0), lm)
    furrows = _glabella(_skin_with_creases(0.0, "vertical", 40.0), lm)
    across = _glabella(_skin_with_creases(0.0, "horizontal", 40.0), lm)
    assert furrows > smooth + 1.0  # corrugator furrows: several times the resting crease contrast
    assert furrows > across + 0.7  # the cue is oriented: horizontal lines barely move it
    # Weber contrast: half the light, same cue; a rolled head, the same furrows, the same cue.
    dim = _glabella(_skin_with_creases(0.0, "vertical", 40.0, gain=0.5), lm)
    rolled = _glabella(_skin_with_creases(0.4, "vertical", 40.0), _glabella_face(0.4))
    assert dim == pytest.approx(furrows, abs=0.1)
    assert rolled == pytest.approx(furrows, abs=0.15)
    # A larger face is averaged down to the same physical resolution.
    big = _glabella(_skin_with_creases(0.0, "vertical", 40.0, scale=30.0), _glabella_face(0.0, scale=30.0))
    assert big == pytest.approx(furrows, abs=0.3)


def test_a_patch_outside_the_image_gives_nan_not_an_error():
    lm = _glabella_face(0.0)
    lm[:, 1] -= 0.45  # the face slides up: the forehead leaves the image
    f = appearance_features(_skin_with_creases(0.0, "vertical", 40.0), lm)
    assert np.isnan(f[APPEARANCE_FEATURES.index("glabella_furrows")])


@pytest.fixture(scope="module")
def wolfgang_with_frames(samples, wolfgang_recording):
    """Per real decoded frame of WolfgangLanger_Pexels.mp4 with a face: the frame index, the
    appearance features, and the AU intensities with and without the frame (fresh estimators)."""
    results = {r.index: r for r in wolfgang_recording}
    with_frame, without = AUEstimator(), AUEstimator()
    idx, feats, a_with, a_without = [], [], [], []
    with open_source(samples / "WolfgangLanger_Pexels.mp4") as source:
        for frame in source:
            r = results[frame.index]
            a_with.append(with_frame.update(r, frame))
            a_without.append(without.update(r))
            if r.faces:
                idx.append(frame.index)
                feats.append(appearance_features(frame.image, r.faces[0].landmarks))
    return np.array(idx), np.array(feats), a_with, a_without


def test_glabella_furrows_rise_when_she_cries_not_when_she_laughs(wolfgang_with_frames):
    idx, feats, _, _ = wolfgang_with_frames
    g = feats[:, APPEARANCE_FEATURES.index("glabella_furrows")]
    crying = np.median(g[(idx >= 20) & (idx < 130)])  # knitted brows, eyes squeezed (frames 20-130)
    laughing = np.median(g[(idx >= 300) & (idx < 440)])  # broad laugh, smooth forehead
    assert crying > laughing + 0.7  # about twice the crease contrast and more


def test_au04_with_the_frame_follows_the_knitted_brow(wolfgang_with_frames):
    idx, _, a_with, a_without = wolfgang_with_frames
    k = AU_INTENSITY.index("AU04")
    au04 = np.array([a[0].intensity[k] for a in a_with if a])
    assert np.median(au04[(idx >= 20) & (idx < 130)]) > 1.0
    assert np.median(au04[(idx >= 300) & (idx < 440)]) < 0.3
    # Without the frame the appearance share is simply absent: AU04 reads its landmark estimate.
    au04_landmarks = np.array([a[0].intensity[k] for a in a_without if a])
    assert not np.allclose(au04, au04_landmarks)


def test_without_a_frame_the_estimate_equals_the_landmark_only_mapping(tmp_path, wolfgang_recording):
    lines = [ln for ln in _GOOD.splitlines() if "appearance: needs the frame" not in ln]
    lines = [ln for ln in lines if not ln.startswith("[sources.glabella_furrows]")]
    text = "\n".join(lines).replace("[sources.crows_feet]\nbaseline = 10\n", "")
    text = text.replace("baseline = 10\n[sources.crows_feet]", "")
    path = tmp_path / "landmarks_only.toml"
    path.write_text(text, encoding="utf-8")
    assert not load_mapping(path).term_appearance.any()
    ours, plain = AUEstimator(), AUEstimator(FACSOptions(mapping_path=path))
    for r in wolfgang_recording[:240]:
        for a, b in zip(ours.update(r), plain.update(r), strict=True):
            np.testing.assert_array_equal(a.intensity, b.intensity)
            np.testing.assert_array_equal(a.presence, b.presence)


def test_appearance_works_under_a_calibration(samples, wolfgang_recording):
    est = AUEstimator()
    est.calibrate(wolfgang_recording[300:330])
    k = AU_INTENSITY.index("AU04")
    results = {r.index: r for r in wolfgang_recording}
    out = []
    with open_source(samples / "WolfgangLanger_Pexels.mp4", CaptureOptions(end=5.0)) as source:
        for frame in source:
            aus = est.update(results[frame.index], frame)
            if aus:
                assert aus[0].calibrated
                out.append(aus[0].intensity[k])
    assert max(out) > 1.0  # the crying opening: the knitted brow reads through the calibration


def test_partial_baseline_takes_each_input_over_its_own_measured_samples():
    from avatar_bridge.facs.baseline import RunningBaseline

    b = RunningBaseline(2, capacity=10, interval=0.1, partial=True)
    for t, row in enumerate([(1.0, np.nan), (2.0, 10.0), (3.0, np.nan), (4.0, 20.0), (np.nan, np.nan)]):
        b.add(np.array(row), 0.1 * t)
    assert b.samples == 4  # the all-NaN sample is not taken
    np.testing.assert_array_equal(b.percentiles(np.array([0, 1, 0, 1]), np.array([0, 0, 100, 100])),
                                  [1.0, 10.0, 4.0, 20.0])  # fmt: skip


def test_running_baseline_percentiles_are_those_of_the_last_capacity_samples():
    """The sorted window is kept up to date sample by sample (old ones replaced once the ring is
    full): its percentiles equal those of the last ``capacity`` samples, ties included."""
    from avatar_bridge.facs.baseline import RunningBaseline

    rng = np.random.default_rng(5)
    b = RunningBaseline(4, capacity=25, interval=0.1)
    q = np.array([0.0, 10.0, 50.0, 100.0])
    history = []
    for t in range(120):
        x = np.round(rng.normal(size=4), 1)  # coarse values: many ties
        assert b.add(x, 0.25 * t)
        history.append(x)
        if t < 40 and t % 3:
            continue  # percentiles are not asked for every sample
        window = np.sort(np.array(history[-25:]), axis=0)
        want = [window[round(q[i] * (len(window) - 1) / 100), i] for i in range(4)]
        np.testing.assert_array_equal(b.percentiles(np.arange(4), q), want)
    assert not b.add(np.full(4, np.nan), 40.0)  # a sample with a NaN is not taken


def test_au02_rises_with_the_raised_brows_not_with_the_laugh(wolfgang_recording):
    """WolfgangLanger raises her brows, eyes wide, at frames 150-205 (OpenFace: AU02 1.5-2.4) and
    laughs with resting brows at 300-380 (OpenFace: AU02 0)."""
    est, k = AUEstimator(), AU_INTENSITY.index("AU02")
    rows = [(r.index, a[0].intensity[k]) for r in wolfgang_recording for a in [est.update(r)] if a]
    idx, au02 = np.array(rows).T
    assert np.median(au02[(idx >= 150) & (idx < 205)]) > 1.0
    assert np.median(au02[(idx >= 300) & (idx < 380)]) < 0.5
