"""The retarget stage on real MediaPipe output: weights, face lost/regained, event replay, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avatar_bridge.channels import AU_INTENSITY, AU_PRESENCE
from avatar_bridge.errors import ConfigError
from avatar_bridge.records import ActionUnits, EventKind, ExpressionEvent
from avatar_bridge.retarget import (
    CalibrationFile,
    RetargetCalibration,
    Retargeter,
    RetargetOptions,
    SmoothingOptions,
    event_envelope,
    source_vector,
)


def test_smile_drives_vrm_joy_on_real_video(single_face_recording):
    rt = Retargeter("vrm0")
    values = []
    for r in single_face_recording:
        w = rt.update(r.faces[0], None, r.timestamp, r.index)
        assert w.names[0] == "Joy" and np.all(np.isfinite(w.values))
        assert np.all((w.values >= 0) & (w.values <= 1))
        values.append(w.as_dict())
    joy = np.array([v["Joy"] + v["Fun"] for v in values])
    # single_face.mp4 goes neutral -> smile -> neutral
    assert joy[25:50].max() > joy[:8].mean() + 0.3


def test_nan_tongue_out_is_untracked_not_propagated(single_face_recording):
    rt = Retargeter("arkit52")
    face = single_face_recording[10].faces[0]
    assert np.isnan(face.blendshape("tongueOut"))
    w = rt.update(face, None, 0.0)
    assert np.all(np.isfinite(w.values)) and w.as_dict()["tongueOut"] == 0.0


def test_face_lost_eases_to_neutral_then_regains(single_face_recording):
    opts = RetargetOptions(lost_ease=0.5, regain_ease=0.1)
    rt = Retargeter("arkit52", opts)
    for r in single_face_recording[:40]:
        last = rt.update(r.faces[0], None, r.timestamp)
    t0 = single_face_recording[39].timestamp
    assert last.values.max() > 0.3
    norms = []
    for k in range(1, 25):
        w = rt.update(None, None, t0 + k / 30)
        assert not w.face_found
        norms.append(np.abs(w.values).sum())
    assert all(b <= a + 1e-6 for a, b in zip(norms, norms[1:], strict=False))  # monotone, never frozen
    assert norms[3] < norms[0]  # moving already
    assert norms[-1] == pytest.approx(0.0, abs=1e-6)  # at neutral once lost_ease has passed
    assert np.allclose(w.pose.quaternion, [0, 0, 0, 1], atol=1e-5)
    r = single_face_recording[40]
    back = rt.update(r.faces[0], None, t0 + 1.0)
    assert back.face_found and np.abs(back.values).sum() < 1e-5  # blends in from neutral...
    back = rt.update(r.faces[0], None, t0 + 1.2)
    assert np.abs(back.values).sum() > 1.0  # ...and is live after regain_ease


def test_play_event_keeps_timing_and_gain(single_face_recording):
    face = single_face_recording[2].faces[0]
    opts = RetargetOptions(smoothing=SmoothingOptions(kind="none"), regain_ease=0.0)
    event = ExpressionEvent(EventKind.MICRO, 0, onset=2.0, apex=2.1, offset=2.3, emitted_at=2.4,
                            aus={"AU12": 2.5}, side="left")  # fmt: skip
    rt = Retargeter("arkit52", opts)
    base = rt.update(face, None, 10.0).as_dict()["mouthSmileLeft"]
    rt.play_event(event, gain=1.6)
    t = 10.0 + np.arange(0, 0.4, 1 / 100)
    left = np.array([rt.update(face, None, ti).as_dict()["mouthSmileLeft"] for ti in t])
    assert t[np.argmax(left)] - 10.0 == pytest.approx(0.1, abs=0.011)  # onset->apex intact
    assert left.max() == pytest.approx(max(base, 1.6 * 2.5 / 5), abs=1e-3)  # AU intensity/5 * gain
    assert left[t - 10.0 > 0.31] == pytest.approx(base, abs=1e-6)  # over after offset-onset
    rt2 = Retargeter("arkit52", opts)
    rt2.update(face, None, 10.0)
    rt2.play_event(event, gain=1.6)
    right = [rt2.update(face, None, ti).as_dict()["mouthSmileRight"] for ti in t]
    assert max(right) == pytest.approx(face.blendshape("mouthSmileRight"), abs=1e-6)  # one-sided event


def test_event_envelope_shape():
    assert event_envelope(0.0, 0.1, 0.2) == 0.0
    assert event_envelope(0.1, 0.1, 0.2) == pytest.approx(1.0)
    assert event_envelope(0.2, 0.1, 0.2) == pytest.approx(0.5)
    assert event_envelope(0.31, 0.1, 0.2) == 0.0


def test_calibration_maps_neutral_to_zero_and_max_to_one(single_face_recording):
    rows = [source_vector(r.faces[0].blendshapes, None) for r in single_face_recording[:10]]
    expr = [source_vector(r.faces[0].blendshapes, None) for r in single_face_recording[10:]]
    cal = RetargetCalibration.from_samples(rows, expr)
    assert "tongueOut" not in cal.neutral and "mouthSmileLeft" in cal.maximum
    opts = RetargetOptions(smoothing=SmoothingOptions(kind="none"), regain_ease=0.0, calibration=cal)
    rt = Retargeter("arkit52", opts)
    first = rt.update(single_face_recording[0].faces[0], None, 0.0).as_dict()
    assert first["mouthSmileLeft"] < 0.1
    peak = max(
        rt.update(r.faces[0], None, r.timestamp).as_dict()["mouthSmileLeft"] for r in single_face_recording
    )
    assert peak > 0.9


def test_calibration_file_round_trip_with_facs(single_face_recording, tmp_path):
    from avatar_bridge.facs import Calibration

    facs = Calibration.from_results(single_face_recording[:10])
    rows = [source_vector(r.faces[0].blendshapes, np.zeros(17)) for r in single_face_recording[:10]]
    cal = CalibrationFile(facs, RetargetCalibration.from_samples(rows, rows[:5] + [np.ones(69)]))
    path = cal.save(tmp_path / "cal.json")
    back = CalibrationFile.load(path)
    assert back.retarget == cal.retarget
    assert back.facs.neutral == pytest.approx(facs.neutral)
    data = json.loads(path.read_text())
    data["retarget"]["neutral"]["jawOpenn"] = 0.1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="retarget.neutral.jawOpenn': unknown channel"):
        CalibrationFile.load(path)
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        CalibrationFile.load(path)


def test_aus_feed_the_facs_profile(single_face_recording):
    rt = Retargeter("facs", RetargetOptions(smoothing=SmoothingOptions(kind="none"), regain_ease=0.0))
    intensity = np.linspace(0, 5, len(AU_INTENSITY))
    aus = ActionUnits(0, 0.0, 0, intensity, np.zeros(len(AU_PRESENCE)))
    w = rt.update(single_face_recording[0].faces[0], aus, 0.0)
    assert w.names == AU_INTENSITY
    np.testing.assert_allclose(w.values, intensity / 5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "msg"), [({"lost_ease": -1.0}, "lost_ease"), ({"event_gain": -2.0}, "event_gain")]
)
def test_bad_options(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        RetargetOptions(**kwargs)


def test_face_retargeter_serves_every_profile_as_separate_retargeters_would(single_face_recording):
    """One filter per face shared by several profiles gives each profile exactly what a Retargeter
    of its own gives, through face lost (easing) and regained, with a replayed event."""
    from avatar_bridge.retarget import FaceRetargeter

    names = ("arkit52", "vrm0", "vrcft_unified", "facs")
    event = ExpressionEvent(EventKind.MICRO, 0, onset=0.0, apex=0.1, offset=0.3, emitted_at=0.4,
                            aus={"AU12": 2.5, "AU06": 1.0})  # fmt: skip
    together = FaceRetargeter(names)
    alone = {n: Retargeter(n) for n in names}
    frames = [(r.faces[0], r.timestamp) for r in single_face_recording[:40]]
    t_end = frames[-1][1]
    frames += [(None, t_end + k / 30) for k in range(1, 10)]  # face lost: ease to neutral
    frames += [(r.faces[0], t_end + 0.4 + k / 30) for k, r in enumerate(single_face_recording[40:])]
    aus = ActionUnits(0, 0.0, 0, np.linspace(0, 5, len(AU_INTENSITY)), np.zeros(len(AU_PRESENCE)))
    for k, (face, t) in enumerate(frames):
        if k == 20:
            together.play_event(event)
            for rt in alone.values():
                rt.play_event(event)
        got = together.update(face, aus, t, k)
        for n in names:
            want = alone[n].update(face, aus, t, k)
            assert got[n].names == want.names and got[n].face_found == want.face_found
            np.testing.assert_allclose(got[n].values, want.values, atol=1e-6)
            np.testing.assert_allclose(got[n].pose.matrix, want.pose.matrix, atol=1e-6)
    assert not np.allclose(got["vrm0"].values, 0.0)  # live again, not stuck at neutral
