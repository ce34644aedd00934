"""The generator on real video: ground truth, and the warp checked by re-tracking with real MediaPipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro.features import face_width_px
from avatar_bridge.micro.synth import GENERATOR_VERSION, SynthOptions, generate, load_truth
from avatar_bridge.micro.synth.patterns import PATTERNS, temporal_profile


@pytest.fixture(scope="module")
def made(tmp_path_factory, samples, single_face_recording):
    """One AU12 (subject's left) of 4 px injected into a 640 px wide close-up of single_face.mp4,
    and the same close-up untouched; both written losslessly and tracked by real MediaPipe."""
    from avatar_bridge.capture import open_source
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    out = tmp_path_factory.mktemp("synth")
    opts = SynthOptions(events=1, amplitudes=(4.0,), patterns=("AU12_L",), macro=0, jitter=0, seed=1)
    video, truth = generate(samples / "single_face.mp4", out, single_face_recording, opts)
    plain, _ = generate(samples / "single_face.mp4", out, single_face_recording,
                        SynthOptions(events=0, macro=0, jitter=0), name="plain")  # fmt: skip
    tracked = []
    for v in (video, plain):
        with open_source(v) as src, FaceTracker(TrackerOptions()) as tracker:
            tracked.append([tracker.update(f) for f in src])
    return video, load_truth(truth), tracked[0], tracked[1]


def test_ground_truth_is_consistent(made, single_face_recording):
    video, truth, retracked, _ = made
    assert truth["video"] == video.name and truth["frame_count"] == len(single_face_recording)
    assert truth["generator_version"] == GENERATOR_VERSION
    assert (truth["width"], truth["height"]) == (800, 800) and truth["closeup"]["size"] == 800
    assert truth["face_width_px"] == pytest.approx(640.0, rel=0.05)  # the close-up's own face width
    assert "pixels of this video" in truth["amplitude_unit"]
    (ev,) = truth["events"]
    assert ev["pattern"] == "AU12_L" and ev["aus"] == ["AU12"] and ev["side"] == "left"
    assert ev["label"] == "positive" and ev["emotion"] == "happiness"
    assert 0.04 <= ev["apex"] - ev["onset"] <= 0.26 and 0.15 <= ev["duration"] <= 0.5
    assert ev["amplitude_px"] == pytest.approx(4.0)
    ts = np.array(truth["timestamps"])
    inside = {int(i) for i in np.flatnonzero((ts > ev["onset"]) & (ts < ev["offset"]))}
    assert set(ev["frames"]) == {
        i for i in inside if temporal_profile(ts[i], ev["onset"], ev["apex"], ev["offset"]) > 0
    }
    blinks = [n for n in truth["negatives"] if n["kind"] == "blink"]
    assert all(not (b["onset"] < ev["offset"] and ev["onset"] < b["offset"]) for b in blinks)
    widths = [face_width_px(r.faces[0]) for r in retracked]
    assert np.median(widths) == pytest.approx(640.0, rel=0.05)  # MediaPipe agrees: a 640 px face


def test_warp_moves_the_intended_landmarks(made):
    """Re-tracking finds the left mouth corner moved up by about the amplitude in real pixels."""
    _, truth, retracked, plain = made
    (ev,) = truth["events"]
    moved = []
    for r0, r1 in zip(plain, retracked, strict=True):
        d = r1.faces[0].landmarks_px[:, :2] - r0.faces[0].landmarks_px[:, :2]
        if r0.timestamp < ev["onset"]:
            assert np.abs(d).max() == 0.0  # untouched frames are bit-identical, so is their tracking
        if abs(r0.timestamp - ev["apex"]) < 0.05:
            moved.append(d)
    d = np.mean(moved, axis=0)
    corner, other = d[291], d[61]
    assert 0.4 * ev["amplitude_px"] < np.hypot(*corner) < 1.3 * ev["amplitude_px"]
    assert corner[1] < -0.3 * ev["amplitude_px"]  # up in the image
    assert np.hypot(*other) < 0.35 * np.hypot(*corner)  # the subject's right corner barely moves


def test_frames_without_a_face_never_hold_an_event(samples):
    """face_noface.mov loses the face after 2.4 s: planning works (no NaN) and keeps events on the face."""
    from avatar_bridge.micro.synth import plan
    from avatar_bridge.recording import load_recording
    from avatar_bridge.sample_media import sample_recording

    results = load_recording(sample_recording("face_noface.mov"))
    items = plan(results, SynthOptions(closeup=None, spacing=0.3, seed=2))
    assert items
    with_face = {round(r.timestamp, 6) for r in results if r.faces}
    for it in items:
        window = [r for r in results if it.onset - 0.4 <= r.timestamp <= it.offset + 0.4]
        assert all(round(r.timestamp, 6) in with_face for r in window)


def test_hard_negatives_are_written(tmp_path, samples, wolfgang_recording):
    opts = SynthOptions(events=2, macro=1, jitter=1, seed=3, closeup=None)
    _, truth_path = generate(
        samples / "WolfgangLanger_Pexels.mp4", tmp_path, wolfgang_recording, opts, name="w"
    )
    truth = json.loads(truth_path.read_text())
    kinds = sorted(n["kind"] for n in truth["negatives"] if n["kind"] != "blink")
    assert kinds == ["jitter", "macro"] and len(truth["events"]) == 2
    macro = next(n for n in truth["negatives"] if n["kind"] == "macro")
    assert 1.0 <= macro["duration"] <= 3.0
    spans = sorted(
        (e["onset"], e["offset"]) for e in truth["events"] + truth["negatives"] if e["kind"] != "blink"
    )
    assert all(b[0] - a[1] >= opts.spacing - 1e-9 for a, b in zip(spans, spans[1:], strict=False))


def test_bad_input(tmp_path, samples, single_face_recording):
    with pytest.raises(InputError, match="unknown pattern"):
        SynthOptions(patterns=("AU99",))
    with pytest.raises(InputError, match="amplitudes"):
        SynthOptions(amplitudes=(0.0,))
    with pytest.raises(InputError, match="frames"):
        generate(samples / "single_face.mp4", tmp_path, single_face_recording[:10], SynthOptions(events=1))
    bad = tmp_path / "bad.truth.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not avatar-bridge synth"):
        load_truth(bad)
    assert not list(tmp_path.glob("*.mkv"))  # nothing half-written


def test_pattern_file_errors(tmp_path):
    from avatar_bridge.errors import ConfigError
    from avatar_bridge.micro.synth.patterns import load_patterns

    bad = tmp_path / "p.toml"
    bad.write_text(
        '[patterns.X]\naus = ["AU12"]\nside = "up"\nlabel = "positive"\nemotion = "e"\n'
        "keys = [[1, 0, 1, 1]]\n"
    )
    with pytest.raises(ConfigError, match="side"):
        load_patterns(bad)
    bad.write_text("patterns = 3")
    with pytest.raises(ConfigError):
        load_patterns(bad)


def test_patterns_have_unit_peaks(single_face_recording):
    from avatar_bridge.micro.features import reference_shape
    from avatar_bridge.micro.synth.patterns import landmark_displacements

    ref = reference_shape(single_face_recording[0].faces[0])
    for p in PATTERNS.values():
        u = landmark_displacements(p, ref)
        assert np.hypot(*u.T).max() == pytest.approx(1.0)


def test_cli_synth(tmp_path, capsys):
    from avatar_bridge.cli import main

    code = main(["synth", "single_face.mp4", "--out", str(tmp_path), "--events", "1", "--macro", "0",
                 "--jitter", "0", "--amplitude", "2"])  # fmt: skip
    assert code == 0
    truth = load_truth(next(tmp_path.glob("*.truth.json")))
    assert truth["events"][0]["amplitude"] == 2.0 and (tmp_path / truth["video"]).is_file()
    assert main(["synth", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 1
    assert main(["synth", "single_face.mp4", "--still", "900", "--out", str(tmp_path)]) == 1
    assert "frame 900 is not in the video (frames 0 to 71)" in capsys.readouterr().err
    assert len(list(tmp_path.glob("*.mkv"))) == 1  # nothing written for the bad ones


# ----------------------------------------------------------------------------- held still, filmed


def _held_closeup(samples, recording, index: int, seconds: float):
    """Frame ``index`` of single_face held still as a 640 px wide close-up (no events), and its fps."""
    from avatar_bridge.micro.synth import prepare, stream
    from avatar_bridge.micro.synth.generate import read_frames
    from avatar_bridge.micro.synth.still import held_still

    frames, fps = read_frames(samples / "single_face.mp4")
    still, results = held_still(frames, recording, index, seconds, fps)
    prepared = prepare(results, SynthOptions(events=0, macro=0, jitter=0))
    return [f.image for f in stream(still, prepared)], np.array([f.timestamp for f in still])


def test_camera_sways_flickers_adds_noise_and_compresses(samples, single_face_recording):
    """Each effect of the held-still camera measured on a real face: the shift between frames
    (phase correlation), the brightness, the noise left after undoing the sway, and JPEG loss."""
    from avatar_bridge.micro.synth.still import CameraOptions, film

    images, times = _held_closeup(samples, single_face_recording, 17, 3.0)
    assert all(img is images[0] for img in images)  # held still: one close-up, made once
    src = images[0].astype(np.float64).mean(axis=2)
    sway = CameraOptions(sway_px=2.0, sway_deg=0.0, sway_scale=0.0, flicker=0.0, noise=0.0, codec="none")
    shifts = np.array([cv2_shift(src, f) for f in film(images, times, sway)])
    rms = shifts.std(axis=0)
    assert rms == pytest.approx([2.0, 2.0], rel=0.25)  # the configured sway, per axis
    assert np.abs(np.diff(shifts, axis=0)).mean() < 0.3  # smooth (white noise of 2 px: about 2.3)
    flick = CameraOptions(sway_px=0.0, sway_deg=0.0, sway_scale=0.0, flicker=0.01, noise=0.0, codec="none")
    gain = np.array([f.mean() for f in film(images, times, flick)]) / images[0].mean()
    assert gain.std() == pytest.approx(0.01, rel=0.3) and abs(gain.mean() - 1) < 0.01
    noisy = CameraOptions(sway_px=0.0, sway_deg=0.0, sway_scale=0.0, flicker=0.0, noise=3.0, codec="none")
    first, second = list(film(images[:2], times[:2], noisy))
    diff = first.astype(np.float64) - second.astype(np.float64)
    assert diff.std() / np.sqrt(2) == pytest.approx(3.0, rel=0.1)  # independent noise in each frame
    jpeg = CameraOptions(sway_px=0.0, sway_deg=0.0, sway_scale=0.0, flicker=0.0, noise=0.0, quality=50)
    out = next(iter(film(images[:1], times[:1], jpeg)))
    loss = np.abs(out.astype(np.float64) - images[0]).mean()
    assert 0.3 < loss < 5  # JPEG loses detail, and keeps the picture
    once, twice = (list(film(images[:5], times[:5], CameraOptions(seed=4))) for _ in range(2))
    assert all((a == b).all() for a, b in zip(once, twice, strict=True))  # deterministic for a seed
    # The room's light: a flash of 20 % at 1 s (0.1 s up, 0.1 s down), darker by 20 % from 2 s on.
    still = CameraOptions(sway_px=0.0, sway_deg=0.0, sway_scale=0.0, flicker=0.0, noise=0.0, codec="none",
                          light=((1.0, 0.1, 0.2, 0.0), (2.0, 0.1, -0.2, np.inf)))  # fmt: skip
    level = np.array([f.mean() for f in film(images, times, still)]) / images[0].mean()
    t = np.asarray(times)
    assert level[t < 0.95] == pytest.approx(1.0, abs=0.002) and level.max() == pytest.approx(1.2, abs=0.02)
    assert t[np.argmax(level)] == pytest.approx(1.1, abs=0.04)
    assert level[(t > 1.25) & (t < 1.95)] == pytest.approx(1.0, abs=0.002)
    assert level[t > 2.15] == pytest.approx(0.8, abs=0.005)  # and it stays


def cv2_shift(reference: np.ndarray, image: np.ndarray) -> np.ndarray:
    import cv2

    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(reference, image.astype(np.float64).mean(axis=2), window)
    return np.array([dx, dy])


def test_camera_option_errors():
    from avatar_bridge.micro.synth.still import CameraOptions, held_still

    with pytest.raises(InputError, match="codec"):
        CameraOptions(codec="h265")
    with pytest.raises(InputError, match="quality"):
        CameraOptions(quality=0)
    with pytest.raises(InputError, match="noise"):
        CameraOptions(noise=-1.0)
    with pytest.raises(InputError, match="no frames to hold still"):
        held_still([], [], 3, 1.0, 30.0)
    with pytest.raises(InputError, match="light change"):
        CameraOptions(light=((1.0, 0.0, 0.2, 0.0),))  # no ramp
    with pytest.raises(InputError, match="light change"):
        CameraOptions(light=((1.0, 0.1, -1.0, 0.0),))  # no light at all


def test_micro_expressions_go_where_the_whole_video_is_calmest(samples, wolfgang_recording):
    """WolfgangLanger cries, talks and laughs: events sit only in the quietest quarter of the whole
    video's moments (by optical flow on the close-up), however many more would fit by spacing."""
    from avatar_bridge.micro.synth import prepare
    from avatar_bridge.micro.synth.generate import read_frames

    frames, _ = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    opts = SynthOptions(seed=2, macro=0, jitter=0)
    prepared = prepare(wolfgang_recording, opts, frames)
    ts = np.array([r.timestamp for r in prepared.results])
    m, margin = prepared.motion, opts.calm_margin
    micro = [it for it in prepared.items if it.kind == "micro"]
    dur = float(np.median([it.offset - it.onset for it in micro]))
    starts = ts[(ts >= opts.lead_in) & (ts + dur <= ts[-1] - 0.3)]
    every = np.array([m[(ts >= t - margin) & (ts <= t + dur + margin)].max() for t in starts])
    limit = np.quantile(every[np.isfinite(every)], opts.quiet)
    around = [m[(ts >= it.onset - margin) & (ts <= it.offset + margin)].max() for it in micro]
    assert micro and max(around) <= 1.5 * limit  # (durations differ a little from the median's)
    assert len(micro) < (ts[-1] - opts.lead_in) / (opts.spacing + 0.5)  # far fewer than would fit
