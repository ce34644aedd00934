"""The online spotter on real MediaPipe output: the natural smile, blinks, frame rates, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro import MicroSpotter, SpotterOptions
from avatar_bridge.micro.synth.generate import natural_blinks
from avatar_bridge.records import EventKind, FaceObservation, HeadPose, TrackingResult


def run(results, options=None):
    spotter = MicroSpotter(options or SpotterOptions())
    events = []
    for r in results:
        events += spotter.update(r, ())
    return events + spotter.flush(), spotter


def resample(results: list[TrackingResult], fps: float) -> list[TrackingResult]:
    """Real tracking re-timed to ``fps`` by linear interpolation between tracked frames."""
    ts = np.array([r.timestamp for r in results])
    lms = np.array([r.faces[0].landmarks for r in results])
    bss = np.array([r.faces[0].blendshapes for r in results])
    mats = np.array([r.faces[0].pose.matrix for r in results])
    out = []
    for i, t in enumerate(np.arange(ts[0], ts[-1], 1.0 / fps)):
        j = min(int(np.searchsorted(ts, t, side="right")) - 1, len(ts) - 2)
        w = (t - ts[j]) / (ts[j + 1] - ts[j])
        f0 = results[j].faces[0]
        pose = HeadPose(
            ((1 - w) * mats[j] + w * mats[j + 1]).astype(np.float32)
        )  # small steps: linear is fine
        lm = ((1 - w) * lms[j] + w * lms[j + 1]).astype(np.float32)
        bs = ((1 - w) * bss[j] + w * bss[j + 1]).astype(np.float32)
        face = FaceObservation(0, lm, bs, pose, f0.image_size)
        out.append(TrackingResult(i, float(t), f0.image_size, (face,)))
    return out


def test_natural_smile_is_macro_not_micro(single_face_recording):
    events, spotter = run(single_face_recording)
    macro = [e for e in events if e.kind == EventKind.MACRO]
    assert not [e for e in events if e.kind == EventKind.MICRO]
    assert len(macro) == 1
    smile = macro[0]
    assert smile.onset < 0.8 and smile.offset > 2.0  # the smile runs from about 0.6 s to the end
    assert "mouth" in smile.regions and smile.emitted_at >= smile.offset
    assert smile.aus.get("AU12", 0) > 1.0  # geometric cue: lip corners pulled up


def test_wolfgang_blinks_are_not_micro_expressions(wolfgang_recording):
    blinks = natural_blinks(wolfgang_recording)
    assert len(blinks) >= 3  # real blinks are there to be rejected
    events, _ = run(wolfgang_recording)
    for e in events:
        if e.kind == EventKind.MICRO:
            assert not any(a - 0.05 < e.apex < b + 0.05 for a, b in blinks), e


@pytest.mark.parametrize("fps", [120.0, 200.0])
def test_timing_follows_timestamps_at_high_frame_rates(single_face_recording, fps):
    """The same real movement re-timed to 120/200 fps gives the same event times in seconds."""
    base = [e for e in run(single_face_recording)[0] if e.kind == EventKind.MACRO][0]
    fast = [e for e in run(resample(single_face_recording, fps))[0] if e.kind == EventKind.MACRO]
    assert len(fast) == 1
    assert fast[0].onset == pytest.approx(base.onset, abs=0.1)
    assert fast[0].apex > fast[0].onset and fast[0].offset > 2.0


def test_repeated_and_backwards_timestamps_are_skipped(single_face_recording):
    spotter = MicroSpotter()
    rs = single_face_recording
    spotter.update(rs[0], ())
    spotter.update(rs[1], ())
    assert spotter.update(rs[1], ()) == []
    assert spotter.update(rs[0], ()) == []
    bad = TrackingResult(99, float("nan"), rs[0].image_size, rs[0].faces)
    assert spotter.update(bad, ()) == []
    assert spotter.stats == {"repeated_timestamp": 2, "bad_timestamp": 1}


def test_a_time_jump_drops_the_open_expression(single_face_recording):
    spotter = MicroSpotter()
    for r in single_face_recording[:45]:  # the smile is open (held) at 1.5 s
        spotter.update(r, ())
    late = [replace_t(r, r.timestamp + 5.0) for r in single_face_recording[45:]]
    events = []
    for r in late:
        events += spotter.update(r, ())
    assert spotter.stats.get("time_jump") == 1 and spotter.stats.get("dropped_gap") == 1
    assert not [e for e in events if e.onset < 5.0]  # nothing is timed across the jump


def test_missing_face_mid_expression(single_face_recording):
    rs = list(single_face_recording)
    gap = [TrackingResult(r.index, r.timestamp, r.image_size, ()) for r in rs[40:50]]  # 0.33 s without face
    spotter = MicroSpotter()
    for r in rs[:40] + gap + rs[50:]:
        spotter.update(r, ())
    assert spotter.stats.get("dropped_missing_face") == 1
    short = rs[:40] + [TrackingResult(rs[40].index, rs[40].timestamp, rs[40].image_size, ())] + rs[41:]
    events, spotter = run(short)  # one lost frame is bridged
    assert "dropped_missing_face" not in spotter.stats
    assert [e for e in events if e.kind == EventKind.MACRO]


def test_too_few_frames(single_face_recording):
    events, spotter = run(single_face_recording[:3])
    assert events == [] and spotter.flush() == []
    assert MicroSpotter().update(TrackingResult(0, 0.0, (640, 360), ()), ()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"z_on": 1.0, "z_off": 2.0}, "z_off"), ({"hold": 0.0}, "hold"), ({"scales": ()}, "scales"),
     ({"max_event": 0.4}, "max_event")],
)  # fmt: skip
def test_option_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        SpotterOptions(**kwargs)


def test_two_faces_are_kept_apart(single_face_recording):
    rs = []
    for r in single_face_recording:
        f = r.faces[0]
        other = FaceObservation(1, f.landmarks, f.blendshapes, HeadPose(f.pose.matrix), f.image_size)
        rs.append(TrackingResult(r.index, r.timestamp, r.image_size, (f, other)))
    events, _ = run(rs)
    assert sorted(e.face_id for e in events if e.kind == EventKind.MACRO) == [0, 1]


def replace_t(r: TrackingResult, t: float) -> TrackingResult:
    return replace(r, timestamp=t)
