"""The online spotter on real MediaPipe output: the natural smile, blinks, frame rates, bad input."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from avatar_bridge.errors import ConfigError, InputError
from avatar_bridge.micro import MicroSpotter, SpotterOptions
from avatar_bridge.micro.evaluation import interval_iou
from avatar_bridge.micro.spotting.flowtracks import FlowTrackOptions
from avatar_bridge.micro.synth.generate import natural_blinks
from avatar_bridge.records import EventKind, FaceObservation, HeadPose, TrackingResult

#: The plain warp of the face (no averaging of a large face first), on raw grey levels (no matching
#: of the light), on which some of the cases below were found: the mechanism they test changed the
#: outcome there, and still does.
PLAIN = FlowTrackOptions(antialias=False, light=False)
#: The averaged face on raw grey levels: the default flow before the light was matched (twentieth
#: session), on which other cases were found.
RAW = FlowTrackOptions(light=False)


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
    """Landmarks only (no frames): the smile is held to the end of the clip, so it is a truncated
    macro-expression; the brief, large lip movement at its start is macro too (max_peak)."""
    events, spotter = run(single_face_recording)
    assert not [e for e in events if e.kind == EventKind.MICRO]
    held = [e for e in events if e.kind == EventKind.MACRO and e.offset > 2.0]
    assert len(held) == 1
    smile = held[0]
    assert smile.onset < 1.2 and smile.truncated  # the smile runs from about 0.6 s to the end
    assert "mouth" in smile.regions and smile.emitted_at >= smile.offset
    assert all(e.emitted_at >= e.offset for e in events)


def test_wolfgang_blinks_are_not_micro_expressions(wolfgang_recording):
    blinks = natural_blinks(wolfgang_recording)
    assert len(blinks) >= 3  # real blinks are there to be rejected
    events, _ = run(wolfgang_recording)
    for e in events:
        if e.kind == EventKind.MICRO:
            assert not any(a - 0.05 < e.apex < b + 0.05 for a, b in blinks), e


def held_smile(events):
    """The macro-expression held to the end of the clip (the smile)."""
    return [e for e in events if e.kind == EventKind.MACRO and e.offset > 2.0]


@pytest.mark.parametrize("fps", [120.0, 200.0])
def test_timing_follows_timestamps_at_high_frame_rates(single_face_recording, fps):
    """The same real movement re-timed to 120/200 fps gives the same event times in seconds."""
    (base,) = held_smile(run(single_face_recording)[0])
    events = run(resample(single_face_recording, fps))[0]
    (fast,) = held_smile(events)
    assert not [e for e in events if e.kind == EventKind.MICRO]
    assert fast.onset == pytest.approx(base.onset, abs=0.1)
    assert fast.apex > fast.onset


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
    assert spotter.stats.get("time_jump") == 1 and spotter.stats.get("dropped_gap", 0) >= 1  # per open layer
    assert not [e for e in events if e.onset < 5.0]  # nothing is timed across the jump


def test_missing_face_mid_expression(single_face_recording):
    rs = list(single_face_recording)
    gap = [TrackingResult(r.index, r.timestamp, r.image_size, ()) for r in rs[40:50]]  # 0.33 s without face
    spotter = MicroSpotter()
    for r in rs[:40] + gap + rs[50:]:
        spotter.update(r, ())
    assert spotter.stats.get("dropped_missing_face") == 1  # the smile was open: dropped, not timed
    short = rs[:40] + [TrackingResult(rs[40].index, rs[40].timestamp, rs[40].image_size, ())] + rs[41:]
    events, spotter = run(short)  # one lost frame is bridged
    assert "dropped_missing_face" not in spotter.stats
    assert held_smile(events)


def test_too_few_frames(single_face_recording):
    events, spotter = run(single_face_recording[:3])
    assert events == [] and spotter.flush() == []
    assert MicroSpotter().update(TrackingResult(0, 0.0, (640, 360), ()), ()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"z_on": 1.0, "z_off": 2.0}, "z_off"), ({"hold": 0.0}, "hold"), ({"scales": ()}, "scales"),
     ({"max_event": 0.4}, "max_event"), ({"pool": 0}, "pool"), ({"tail_cut": -0.1}, "tail_cut"),
     ({"crest": -1.0}, "crest"), ({"back_share": 1.5}, "back_share"), ({"back_share": -0.1}, "back_share")],
)  # fmt: skip
def test_option_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        SpotterOptions(**kwargs)


def test_pooled_groups_are_read_and_checked(tmp_path):
    """The brow patches form one group (AU1, AU2, AU4 move them together); a group naming an
    unknown patch is a configuration error."""
    from avatar_bridge.micro.spotting.channels import SPOTTING_FILE, load_config
    from avatar_bridge.resources import data_dir

    layout = load_config().flow
    names = [{layout.names[i] for i in g} for g in layout.groups]
    assert {"brow_inner_r", "brow_inner_l", "glabella"} <= names[0]
    text = (data_dir("blendshapes") / SPOTTING_FILE).read_text()
    bad = tmp_path / SPOTTING_FILE
    bad.write_text(text.replace('["brow_outer_r",', '["no_such_patch", "brow_outer_r",', 1))
    with pytest.raises(ConfigError, match="groups"):
        load_config(bad)


def test_au_templates_are_read_and_checked(tmp_path):
    """AU15+17's template: both lip corners down, the lower lip and the chin up; a template of one
    patch, or of a patch that does not exist, is a configuration error."""
    from avatar_bridge.micro.spotting.channels import SPOTTING_FILE, load_config
    from avatar_bridge.resources import data_dir

    layout = load_config().flow
    ((idx, dirs),) = layout.templates
    moves = {layout.names[i]: tuple(np.sign(d).astype(int)) for i, d in zip(idx, dirs, strict=True)}
    assert moves == {"corner_r": (-1, -1), "corner_l": (1, -1), "lip_lower": (0, 1), "chin": (0, 1)}
    text = (data_dir("blendshapes") / SPOTTING_FILE).read_text()
    bad = tmp_path / SPOTTING_FILE
    line = next(x for x in text.splitlines() if x.startswith("AU15_17 = {"))
    for wrong in ("AU15_17 = { chin = [0.0, 1.0] }", "AU15_17 = { chin = [0.0, 1.0], no_such = [0.0, 1.0] }"):
        bad.write_text(text.replace(line, wrong, 1))
        with pytest.raises(ConfigError, match="templates.AU15_17"):
            load_config(bad)


def test_template_scores_share_the_channels_false_alarm_rate():
    """A template's score is one signed direction, a channel's the length of a 2-D movement: in pure
    Gaussian noise, each standardised as the spotter learns it (mean and deviation), the template's
    score mapped by ``as_channel_z`` passes a threshold as often as a channel's does."""
    from avatar_bridge.micro.spotting.detector import as_channel_z

    rng = np.random.default_rng(5)
    channel = np.hypot(*rng.normal(size=(2, 2_000_000)))
    template = rng.normal(size=2_000_000)
    z_channel = (channel - channel.mean()) / channel.std()
    z_template = as_channel_z((template - template.mean()) / template.std())
    for threshold in (2.0, 3.0, 4.0):
        rate_c, rate_t = (np.mean(z > threshold) for z in (z_channel, z_template))
        assert rate_t == pytest.approx(rate_c, rel=0.12), threshold
    plain = (template - template.mean()) / template.std()
    assert np.mean(plain > 4.0) < np.mean(z_channel > 4.0) / 3  # unmapped, it would pass far more rarely


def test_two_faces_are_kept_apart(single_face_recording):
    rs = []
    for r in single_face_recording:
        f = r.faces[0]
        other = FaceObservation(1, f.landmarks, f.blendshapes, HeadPose(f.pose.matrix), f.image_size)
        rs.append(TrackingResult(r.index, r.timestamp, r.image_size, (f, other)))
    events, _ = run(rs)
    assert sorted(e.face_id for e in held_smile(events)) == [0, 1]
    one = [(e.kind, e.onset, e.offset) for e in events if e.face_id == 0]
    assert one == [(e.kind, e.onset, e.offset) for e in events if e.face_id == 1]


def replace_t(r: TrackingResult, t: float) -> TrackingResult:
    return replace(r, timestamp=t)


# ----------------------------------------------------------------------------- with frames (flow)


@pytest.fixture(scope="module")
def held_face_video(samples, wolfgang_recording):
    """Micro-expressions of 2 px injected into a real face held still (frame 380 of WolfgangLanger,
    as in a lab recording), framed as a 640 px wide close-up; every frame tracked by real MediaPipe."""
    from avatar_bridge.micro.synth import SynthOptions, prepare, stream
    from avatar_bridge.micro.synth.generate import read_frames
    from avatar_bridge.records import Frame
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    frames, fps = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    still = [Frame(i, i / fps, frames[380].image) for i in range(130)]
    results = [replace(wolfgang_recording[380], index=i, timestamp=i / fps) for i in range(130)]
    opts = SynthOptions(patterns=("AU12_L", "AU4"), amplitudes=(2.0,), macro=0, jitter=0, seed=6,
                        spacing=0.8, lead_in=1.5)  # fmt: skip
    prepared = prepare(results, opts)
    out = []
    with FaceTracker(TrackerOptions()) as tracker:
        for f in stream(still, prepared):
            out.append((f, tracker.update(f)))
    return prepared.items, out


def test_injected_micro_expressions_are_found_timed_and_labelled(held_face_video):
    items, video = held_face_video
    assert {it.pattern for it in items} == {"AU12_L", "AU4"}
    spotter = MicroSpotter()
    events = []
    for frame, result in video:
        events += spotter.update(result, (), frame)
    events += spotter.flush()
    micro = [e for e in events if e.kind == EventKind.MICRO]
    assert len(micro) == len(items), (micro, items)  # every one found, nothing else
    for it, e in zip(items, micro, strict=True):
        # Within a couple of frames (24 fps): far inside the field's IoU >= 0.5.
        assert e.onset == pytest.approx(it.onset, abs=0.1) and e.offset == pytest.approx(it.offset, abs=0.1)
        assert interval_iou((e.onset, e.offset), (it.onset, it.offset)) >= 0.6
        assert e.emitted_at >= e.offset and e.emitted_at - it.offset <= 0.25  # decided within 250 ms
        if it.pattern == "AU12_L":
            assert e.side == "left" and e.regions == ("mouth",) and "AU12" in e.aus
            assert (e.label, e.emotion) == ("positive", "happiness")
        else:
            assert e.regions == ("left_eye", "right_eye") and e.side == "both" and "AU04" in e.aus
            assert e.label == "negative"


def test_labels_can_be_left_out(held_face_video):
    _, video = held_face_video
    spotter = MicroSpotter(SpotterOptions(label=False))
    events = [e for f, r in video for e in spotter.update(r, (), f)]
    assert events and all(e.label == "" and e.emotion == "" for e in events)


def test_untouched_real_videos_with_flow(samples, single_face_recording, wolfgang_recording):
    """Flow on the original frames: the smile is not micro, and no micro-expression sits on a blink."""
    from avatar_bridge.micro.synth.generate import read_frames

    for name, recording in (("single_face.mp4", single_face_recording),
                            ("WolfgangLanger_Pexels.mp4", wolfgang_recording)):  # fmt: skip
        frames, _ = read_frames(samples / name)
        spotter = MicroSpotter()
        events = []
        for f, r in zip(frames, recording, strict=True):
            events += spotter.update(r, (), f)
        events += spotter.flush()
        micro = [e for e in events if e.kind == EventKind.MICRO]
        blinks = natural_blinks(recording)
        assert not any(a - 0.05 < e.apex < b + 0.05 for e in micro for a, b in blinks)
        assert not micro  # crying, talking, smiling: all macro or ongoing activity, never micro
        if name == "single_face.mp4":
            assert held_smile(events)


def test_movements_inside_ongoing_activity_are_not_micro(samples, wolfgang_recording):
    """WolfgangLanger cries and talks: with a lower threshold, brief bumps between her big movements
    pass as micro-expressions unless the context rule (busy_window) is on."""
    from avatar_bridge.micro.synth.generate import read_frames

    frames, _ = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    found = {}
    for window in (0.0, SpotterOptions().busy_window):
        spotter = MicroSpotter(SpotterOptions(z_on=6.0, busy_window=window))
        events = [
            e for f, r in zip(frames, wolfgang_recording, strict=True) for e in spotter.update(r, (), f)
        ]
        found[window] = [e for e in events + spotter.flush() if e.kind == EventKind.MICRO]
        if window:
            context = spotter.stats.get("rejected_busy", 0) + spotter.stats.get("rejected_unseen_context", 0)
            assert context >= len(found[0.0])
    assert found[0.0] and not found[SpotterOptions().busy_window]


@pytest.fixture(scope="module")
def filmed_still(samples, single_face_recording):
    """single_face held still and filmed (sway, flicker, noise, JPEG), one micro-expression of 3 px
    and one rigid head jitter injected; tracked by real MediaPipe."""
    from avatar_bridge.micro.synth import SynthOptions, prepare, stream
    from avatar_bridge.micro.synth.generate import read_frames
    from avatar_bridge.micro.synth.still import CameraOptions, film, held_still
    from avatar_bridge.records import Frame
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    frames, fps = read_frames(samples / "single_face.mp4")
    still, results = held_still(frames, single_face_recording, 17, 4.5, fps)
    opts = SynthOptions(events=1, amplitudes=(3.0,), patterns=("AU12_L",), macro=0, jitter=1,
                        jitter_amplitude=(3.0, 3.0), seed=5, spacing=0.8, lead_in=1.5)  # fmt: skip
    prepared = prepare(results, opts)
    images = film(
        (f.image for f in stream(still, prepared)), [f.timestamp for f in still], CameraOptions(seed=5)
    )
    out = []
    with FaceTracker(TrackerOptions()) as tracker:
        for f, img in zip(still, images, strict=True):
            frame = Frame(f.index, f.timestamp, img)
            out.append((frame, tracker.update(frame)))
    return prepared.items, out


def test_a_head_jitter_is_head_motion_not_a_micro_expression(filmed_still):
    items, video = filmed_still
    micro_item = next(it for it in items if it.kind == "micro")
    jitter = next(it for it in items if it.kind == "jitter")
    found = {}
    for rigid_fit in (SpotterOptions().rigid_fit, 1.0):
        spotter = MicroSpotter(SpotterOptions(rigid_fit=rigid_fit))
        events = [e for f, r in video for e in spotter.update(r, (), f)] + spotter.flush()
        found[rigid_fit] = [e for e in events if e.kind == EventKind.MICRO]
        if rigid_fit < 1:
            assert spotter.stats.get("rejected_head_motion", 0) >= 1
    (e,) = found[SpotterOptions().rigid_fit]  # the micro-expression alone
    assert interval_iou((e.onset, e.offset), (micro_item.onset, micro_item.offset)) >= 0.5
    assert e.side == "left" and "AU12" in e.aus
    # Without the rule, the jitter (whole-face shift the alignment does not quite follow) is micro.
    assert any(interval_iou((m.onset, m.offset), (jitter.onset, jitter.offset)) > 0.3 for m in found[1.0])


def test_calm_time_says_where_micro_expressions_can_be_seen(filmed_still, samples, wolfgang_recording):
    """Held still (a 3 px twitch, a head jitter) the face is calm most of the time it is watched
    (0.87 of it in the upper face, which the jitter moves; all of it in the lower); WolfgangLanger,
    who cries and talks throughout, almost never (under 1 %); with the context rule off the whole
    face is calm; every share is between 0 and 1 and the zones are named."""
    from avatar_bridge.micro.synth.generate import read_frames

    def calm_shares(pairs, **options) -> dict[str, float]:
        spotter = MicroSpotter(SpotterOptions(**options))
        for f, r in pairs:
            spotter.update(r, (), f)
        (calm,) = spotter.calm_time().values()
        seconds = calm.pop("seconds")
        assert seconds > 0 and all(0.0 <= v <= seconds + 1e-9 for v in calm.values())
        # When: spans in time order, apart, inside the input, adding up to the calm time.
        (spans,) = spotter.calm_spans().values()
        t = [r.timestamp for _, r in pairs]
        for zone, zone_spans in spans.items():
            edges = [x for span in zone_spans for x in span]
            assert edges == sorted(edges) and all(t[0] <= x <= t[-1] for x in edges)
            assert all(nxt[0] > prev[1] for prev, nxt in itertools.pairwise(zone_spans))
            assert sum(b - a for a, b in zone_spans) == pytest.approx(calm[zone], abs=1e-9)
        return {zone: v / seconds for zone, v in calm.items()}

    _, video = filmed_still
    held = calm_shares(video)
    assert set(held) == {"upper", "lower"} and min(held.values()) > 0.8
    frames, _ = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    crying = calm_shares(list(zip(frames, wolfgang_recording, strict=True)))
    assert max(crying.values()) < 0.05
    assert calm_shares(video, busy_window=0.0, zones=False) == {"face": 1.0}


def test_calm_time_of_a_face_that_leaves_and_comes_back(filmed_still):
    """A face gone for longer than 10 x max_event is forgotten, but its calm time is kept: when the
    same face id comes back, both visits count, the first visit's spans before the second's."""
    from avatar_bridge.records import Frame

    _, video = filmed_still
    spotter = MicroSpotter(SpotterOptions())
    for f, r in video:
        spotter.update(r, (), f)
    first, (first_spans,) = spotter.calm_time()[0], spotter.calm_spans().values()
    assert first["seconds"] > 3 and first["upper"] > 0 and first["lower"] > 0
    end, size = video[-1][1].timestamp, video[0][1].image_size
    away = 10 * SpotterOptions().max_event + 1.0
    for k in range(1, round(away / 0.1) + 1):  # nobody in front of the camera
        spotter.update(TrackingResult(10_000 + k, end + 0.1 * k, size), ())
    assert spotter.calm_time()[0] == first  # forgotten, not lost
    shift = end + away + 1.0
    for f, r in video:  # the same person again
        later = Frame(f.index, f.timestamp + shift, f.image)
        spotter.update(replace(r, timestamp=later.timestamp), (), later)
    both, spans = spotter.calm_time()[0], spotter.calm_spans()[0]
    for zone in ("seconds", "upper", "lower"):
        assert both[zone] == pytest.approx(2 * first[zone], abs=1e-6)
    for zone, zone_spans in spans.items():
        n = len(first_spans[zone])
        assert zone_spans[:n] == first_spans[zone] and len(zone_spans) == 2 * n
        assert np.allclose(np.array(zone_spans[n:]) - shift, first_spans[zone], atol=1e-6)


@pytest.fixture(scope="module")
def light_changes(samples, single_face_recording):
    """single_face held still and filmed (sway, flicker, noise, JPEG) while the light changes, and
    nothing else does: a 0.3 s flash of 25 % (a lamp, a passing reflection) at 2 s, then the room
    25 % darker from 3.5 s on (over 0.1 s, and it stays); tracked by real MediaPipe."""
    from avatar_bridge.micro.synth.generate import read_frames
    from avatar_bridge.micro.synth.still import CameraOptions, film, held_still
    from avatar_bridge.records import Frame
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    frames, fps = read_frames(samples / "single_face.mp4")
    still, _ = held_still(frames, single_face_recording, 17, 6.0, fps)
    camera = CameraOptions(seed=1, light=((2.0, 0.15, 0.25, 0.0), (3.5, 0.1, -0.25, float("inf"))))
    images = film((f.image for f in still), [f.timestamp for f in still], camera)
    out = []
    with FaceTracker(TrackerOptions()) as tracker:
        for f, img in zip(still, images, strict=True):
            frame = Frame(f.index, f.timestamp, img)
            out.append((frame, tracker.update(frame)))
    return out


def test_a_change_of_light_is_no_expression(light_changes):
    """Each frame's light is matched to the flow reference's (one gain for the face, ``flow.light``),
    and in the darker room the detector scales the noise it learnt up by the loss of light (without
    that, a false micro-expression came 1.4 s later): neither the flash nor the darker room is an
    expression. On raw grey levels the same recording reads as a face that moves."""
    found = {}
    for light in (True, False):
        spotter = MicroSpotter(SpotterOptions(flow=FlowTrackOptions(light=light)))
        found[light] = [e for f, r in light_changes for e in spotter.update(r, (), f)] + spotter.flush()
    assert found[True] == []
    assert any(e.onset < 2.3 and e.offset > 2.0 for e in found[False])  # the flash
    assert any(e.offset > 3.6 for e in found[False])  # the darker room


@pytest.fixture(scope="module")
def mouth_then_brows(samples, wolfgang_recording):
    """A real face held still (WolfgangLanger frame 380, close-up): a 0.8 s lower-face movement of
    10 px (AU15+17 coming and going, like a word) and, 0.3 s after it, a 3 px AU4 micro-expression
    of the brows; every frame tracked by real MediaPipe."""
    from avatar_bridge.micro.synth import SynthOptions, prepare, stream
    from avatar_bridge.micro.synth.generate import Injected, read_frames
    from avatar_bridge.records import Frame
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    frames, fps = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    still = [Frame(i, i / fps, frames[380].image) for i in range(100)]
    results = [replace(wolfgang_recording[380], index=i, timestamp=i / fps) for i in range(100)]
    prepared = prepare(results, SynthOptions(events=0, macro=0, jitter=0))
    items = [Injected("macro", 1.4, 1.7, 2.2, 10.0, pattern="AU15+17"),
             Injected("micro", 2.5, 2.62, 2.8, 3.0, pattern="AU4", side="both")]  # fmt: skip
    prepared = replace(prepared, items=items)
    out = []
    with FaceTracker(TrackerOptions()) as tracker:
        for f in stream(still, prepared):
            out.append((f, tracker.update(f)))
    return items, out


def test_mouth_activity_does_not_veto_a_brow_micro_expression(mouth_then_brows):
    """With the face's halves watched apart (zones), the brow event after the mouth movement is a
    micro-expression of the brows alone; watched as one, the mouth's activity vetoes it."""
    items, video = mouth_then_brows
    brow = items[1]
    found = {}
    for zones in (True, False):
        spotter = MicroSpotter(SpotterOptions(zones=zones))
        events = [e for f, r in video for e in spotter.update(r, (), f)] + spotter.flush()
        found[zones] = [e for e in events if e.kind == EventKind.MICRO]
        if not zones:
            assert spotter.stats.get("rejected_busy", 0) >= 1
    (e,) = [m for m in found[True] if m.onset > items[0].offset]
    assert interval_iou((e.onset, e.offset), (brow.onset, brow.offset)) >= 0.5
    assert e.regions == ("left_eye", "right_eye") and "AU04" in e.aus
    assert not any(interval_iou((m.onset, m.offset), (brow.onset, brow.offset)) >= 0.5 for m in found[False])


def test_the_crest_of_a_word_is_not_a_micro_expression(mouth_then_brows):
    """The 10 px, 0.8 s mouth movement (a word) is a macro event and no micro-expression overlaps
    it: at the smallest scale its top alone looks brief, but that scale's earlier probe already
    stands raised over the level before it (``crest``). With the rule off, the top is reported as
    a micro-expression of the mouth (on the averaged face, the default)."""
    items, video = mouth_then_brows
    word = (items[0].onset, items[0].offset)
    over = {}
    for crest in (SpotterOptions().crest, 0.0):
        spotter = MicroSpotter(SpotterOptions(crest=crest))
        events = [e for f, r in video for e in spotter.update(r, (), f)] + spotter.flush()
        over[crest] = {k: [e for e in events if e.kind == k and interval_iou((e.onset, e.offset), word) > 0]
                       for k in (EventKind.MICRO, EventKind.MACRO)}  # fmt: skip
        if crest:
            assert spotter.stats.get("rejected_crest", 0) >= 1
    assert not over[SpotterOptions().crest][EventKind.MICRO]
    assert over[SpotterOptions().crest][EventKind.MACRO][0].regions == ("mouth",)
    assert [e.regions for e in over[0.0][EventKind.MICRO]] == [("mouth",)]


def test_history_probe_means():
    """The detector's probes (every window at once) against a plain per-window mean: windows of
    several samples, of none (the nearest sample), too far from any (None), after the storage grew
    and compacted, at 240, 30 and 11 fps."""
    from avatar_bridge.micro.spotting.history import History

    rng = np.random.default_rng(3)
    h = History(5, capacity=8)
    ts = np.cumsum(rng.choice([1 / 240, 1 / 30, 0.09], size=300, p=[0.6, 0.35, 0.05]))
    kept_t, kept_p, outcomes = [], [], {"none": 0, "nearest": 0, "window": 0}
    for tk in ts:
        pos = rng.normal(size=(5, 2))
        h.append(float(tk), pos, False, 0.0, 0.0)
        h.trim(float(tk) - 0.7)
        kept_t.append(float(tk))
        kept_p.append(pos)
        t, p = np.array(kept_t), np.array(kept_p)
        inside = t >= tk - 0.7
        t, p = t[inside], p[inside]
        taus = tk - np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.6])
        for probe in (0.0, 0.01, 0.02):
            want = []
            for tau in taus:
                win = (t >= tau - probe) & (t <= tau + probe)
                if win.any():
                    want.append(p[win].mean(axis=0))
                    outcomes["window"] += 1
                else:
                    d = np.abs(t - tau)
                    k = int(np.flatnonzero(d == d.min())[-1])  # a tie goes to the later sample
                    want.append(p[k] if abs(t[k] - tau) <= 2 * probe + 0.05 else None)
                    outcomes["nearest" if want[-1] is not None else "none"] += 1
            got = h.means(taus, probe)
            if any(w is None for w in want):
                assert got is None
            else:
                np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(h.at(float(taus[2]), probe), want[2], rtol=1e-12, atol=1e-12)
    assert min(outcomes.values()) > 20, outcomes  # every case was exercised


def test_head_jitters_are_neither_micro_nor_macro_expressions():
    """Four 3-4 px head jitters on a face held still and filmed (lab camera). The rigid-motion rule
    rejects them whichever layer times them: before it applied to held expressions too, two of them
    came out as three macro events here. Without the rule they come out as both kinds."""
    from avatar_bridge.micro.synth import SynthOptions
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_camera

    cam = lab_camera(5, 30)
    opts = SynthOptions(
        events=0, macro=0, jitter=4, jitter_amplitude=(3.0, 4.0), spacing=1.2, lead_in=1.5, seed=5
    )
    prepared, results, truth = tracked_still("single_face.mp4", 30, 8.0, opts, cam)
    frames = list(still_frames_of("single_face.mp4", 30, 8.0, prepared, cam))
    jitters = [(n["onset"], n["offset"]) for n in truth["negatives"] if n["kind"] == "jitter"]
    assert len(jitters) == 4
    kinds = {}
    for rigid_fit in (SpotterOptions().rigid_fit, 1.0):
        spotter = MicroSpotter(SpotterOptions(rigid_fit=rigid_fit))
        events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
        events += spotter.flush()
        kinds[rigid_fit] = {
            e.kind for e in events if any(a - 0.2 < e.offset and e.onset < b + 0.2 for a, b in jitters)
        }
        if rigid_fit < 1:
            assert spotter.stats["rejected_head_motion"] >= 4
    assert kinds[SpotterOptions().rigid_fit] == set()
    assert kinds[1.0] == {EventKind.MICRO, EventKind.MACRO}


def test_a_micro_expression_seen_again_at_a_larger_scale_is_not_also_a_macro_expression():
    """A 2 px AU12 (0.30 s) on a face held still and filmed: reported once, as a micro-expression.
    Before, its 0.3 s scale saw it again after the decision as a 0.79 s bump, reported as a second,
    macro event over the same movement (on the plain warp; the averaged face does not see it again)."""
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_recording

    options, cam = lab_recording(2.0, 100, 5)
    prepared, results, truth = tracked_still("single_face.mp4", 5, 8.0, options, cam)
    frames = still_frames_of("single_face.mp4", 5, 8.0, prepared, cam)
    frames = list(frames)
    smile = next(g for g in truth["events"] if g["pattern"] == "AU12_L")
    for options in (SpotterOptions(), SpotterOptions(flow=PLAIN)):
        spotter = MicroSpotter(options)
        events = [
            e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)
        ] + spotter.flush()
        over = [
            e for e in events if interval_iou((e.onset, e.offset), (smile["onset"], smile["offset"])) > 0.3
        ]
        assert [e.kind for e in over] == [EventKind.MICRO]
    assert spotter.stats["duplicate"] >= 1  # the plain warp's: the rule that keeps it to one


def test_a_quick_rise_with_a_slow_return_is_timed_to_its_end():
    """A 2 px AU1+2 that rises in 41 ms and returns over 368 ms, on a face held still and filmed: it
    scores highest at the 0.1 s scale, whose line between probes ends inside the slow return and
    cut it short (6.87-7.09 s against the truth's 6.90-7.31: IoU 0.43, a miss and a false event).
    Timed against the level before it, it matches. (On the plain warp; with the averaged face, the
    default, it matches either way.)"""
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_recording

    options, cam = lab_recording(2.0, 105, 5)
    prepared, results, truth = tracked_still("single_face.mp4", 5, 8.0, options, cam)
    frames = list(still_frames_of("single_face.mp4", 5, 8.0, prepared, cam))
    brows = next(g for g in truth["events"] if g["pattern"] == "AU1+2" and 6.8 < g["onset"] < 7.0)
    true = (brows["onset"], brows["offset"])
    assert brows["apex"] - brows["onset"] < 0.06 and brows["offset"] - brows["apex"] > 0.3
    cut, best = SpotterOptions().tail_cut, {}
    for tail_cut, flow in ((cut, PLAIN), (1.0, PLAIN), (cut, FlowTrackOptions())):
        spotter = MicroSpotter(SpotterOptions(tail_cut=tail_cut, flow=flow))
        events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
        micro = [e for e in events + spotter.flush() if e.kind is EventKind.MICRO]
        best[tail_cut, flow.antialias] = max(interval_iou((e.onset, e.offset), true) for e in micro)
    assert best[cut, False] >= 0.5 > best[1.0, False] > 0.3
    assert best[cut, True] >= 0.5


def test_a_faint_au15_17_is_found_by_its_template():
    """A 2 px AU15+17 (lip corners down, chin up) on a face held still and filmed: no patch of it
    moves far enough to score alone, so without the AU template nothing is found there; the
    template adds the four patches' movements along the directions AU15+17 moves them. On the
    averaged face (the default), a lip corner also drifts aside with the camera's sway: judged by
    that patch alone the movement does not come back, and without the template it opens a held
    expression that drifting patches keep open (one 1.2 s macro event, 4.87-6.07 s). The template
    judges whether its own movement came back. (Both on raw grey levels, where the case was found;
    with the light matched, the default, the lip corner's patch scores alone too.)"""
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_recording

    options, cam = lab_recording(2.0, 108, 30)
    prepared, results, truth = tracked_still("single_face.mp4", 30, 8.0, options, cam)
    frames = list(still_frames_of("single_face.mp4", 30, 8.0, prepared, cam))
    (lips,) = [g for g in truth["events"] if g["pattern"] == "AU15+17"]
    true = (lips["onset"], lips["offset"])
    best = {}
    for templates in (True, False):
        for flow in (RAW, PLAIN, FlowTrackOptions()):
            spotter = MicroSpotter(SpotterOptions(templates=templates, flow=flow))
            events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
            micro = [e for e in events + spotter.flush() if e.kind is EventKind.MICRO]
            best[templates, flow] = max((interval_iou((e.onset, e.offset), true) for e in micro), default=0.0)
    assert min(best[True, RAW], best[True, PLAIN], best[True, FlowTrackOptions()]) >= 0.5, best
    assert max(best[False, RAW], best[False, PLAIN]) < 0.3, best


def test_a_crying_face_in_close_up_makes_no_micro_expression():
    """The untouched WolfgangLanger close-up (her face about 640 px wide; real MediaPipe on the
    rendered frames): she cries and talks, and none of it is a micro-expression. Around 16.6 s the
    AU15+17 template's own movement comes back while its patches move up to 9-13 px between the
    ends: a face in motion, whose step opens a held expression. (Judged by the template alone it was
    a bump, decided as head motion, and a chin bump right after it passed as a 0.17 s
    micro-expression.)"""
    from avatar_bridge.micro.synth import SynthOptions
    from avatar_bridge.micro.synth.cache import frames_of, tracked

    source = "WolfgangLanger_Pexels.mp4"
    prepared, results, _ = tracked(source, SynthOptions(events=0, macro=0, jitter=0))
    spotter = MicroSpotter(SpotterOptions())
    frames = frames_of(source, prepared)
    events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
    events += spotter.flush()
    assert not [e for e in events if e.kind is EventKind.MICRO]
    assert any(e.kind is EventKind.MACRO and e.onset < 16.6 < e.offset for e in events)


def lab_micro_events(source: str, index: int, amplitude: float, seed: int) -> tuple[list, dict]:
    """(micro events found by the default spotter, truth) on an 8 s lab-like recording of ``source``
    frame ``index`` (``lab_recording``: micro-expressions at ``amplitude`` px and one head jitter)."""
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_recording

    options, cam = lab_recording(amplitude, seed, index)
    prepared, results, truth = tracked_still(source, index, 8.0, options, cam)
    spotter = MicroSpotter(SpotterOptions())
    frames = still_frames_of(source, index, 8.0, prepared, cam)
    events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
    return [e for e in events + spotter.flush() if e.kind is EventKind.MICRO], truth


def test_a_brief_movement_timed_by_the_held_layer_ends_where_its_fall_ends():
    """A micro-expression whose patch does not look back at the decision opens a held expression,
    which turns out brief. Its channels are back under half their peak half-way down the fall:
    that is no offset. The held layer waits for the fall to end (twice the time from the apex to
    the half-way point, as the micro layer times a fall) and times it there. A 2 px AU4 on
    WolfgangLanger frame 300 (seed 104), true 1.96-2.41 s: 2.00-2.21 s before (IoU 0.47, a miss
    and a false event), 1.94-2.34 s now."""
    micro, truth = lab_micro_events("WolfgangLanger_Pexels.mp4", 300, 2.0, 104)
    assert len(micro) == len(truth["events"]) == 3
    for g in truth["events"]:
        (e,) = [e for e in micro if interval_iou((e.onset, e.offset), (g["onset"], g["offset"])) >= 0.6]
        assert e.offset <= e.emitted_at <= g["offset"] + 0.25


def test_a_brief_held_expression_is_timed_from_its_rise_not_an_earlier_drift():
    """A 3 px AU15+17 on WolfgangLanger frame 245 (development seed 106, true 1.75-1.90 s)
    first looks held and is timed by the held layer. Walking back from its rise's half-way point
    while the signal stayed over a tenth of its peak ran into the drift before it: onset 1.63 s,
    IoU 0.53, a hair from a miss. Its onset is now timed as the micro layer times a rise (less a
    probe's half-width) whenever the walk went further back than that."""
    micro, truth = lab_micro_events("WolfgangLanger_Pexels.mp4", 245, 3.0, 106)
    g = min(truth["events"], key=lambda g: g["onset"])
    assert abs(g["onset"] - 1.75) < 0.01
    best = max(micro, key=lambda e: interval_iou((e.onset, e.offset), (g["onset"], g["offset"])))
    assert interval_iou((best.onset, best.offset), (g["onset"], g["offset"])) >= 0.8
    assert best.onset >= g["onset"] - 2 * SpotterOptions().probe


def test_three_macro_expressions_are_three_macro_events_timed_whole():
    """Three macro-expressions (AU4 1.7 s, AU1+2 0.9 s, AU4 1.9 s; 4-10 px) on WolfgangLanger frame
    245, held still and filmed. Before, the first one's held expression stayed open past its end
    (patches drifting by a pixel against the held reference, or barely following, kept it open)
    and ran into the second: one event of 4.3-8.2 s, and the second twice. Now only the channels
    that carry it (``back_share``) say when it is back, a macro bump the micro layer finds inside
    an open held expression is left to it, and a macro-expression's falling edge opens no new one:
    each macro-expression is one macro event, and no micro-expression is reported. With
    ``back_share=0`` (every involved channel) the first one runs into the second again."""
    from avatar_bridge.micro.synth import SynthOptions
    from avatar_bridge.micro.synth.cache import still_frames_of, tracked_still
    from avatar_bridge.micro.synth.still import lab_camera

    source, index, seconds = "WolfgangLanger_Pexels.mp4", 245, 12.0
    plan = SynthOptions(events=0, macro=3, jitter=0, macro_duration=(0.8, 2.0), macro_amplitude=(4.0, 10.0),
                        seed=100 * 1000 + index, spacing=0.8, lead_in=1.5)  # fmt: skip
    cam = lab_camera(100, index)
    prepared, results, truth = tracked_still(source, index, seconds, plan, cam)
    macros = [(n["onset"], n["offset"]) for n in truth["negatives"] if n["kind"] == "macro"]
    assert len(macros) == 3
    found = {}
    for share in (SpotterOptions().back_share, 0.0):
        spotter = MicroSpotter(SpotterOptions(back_share=share))
        frames = still_frames_of(source, index, seconds, prepared, cam)
        events = [e for f, r in zip(frames, results, strict=True) for e in spotter.update(r, (), f)]
        found[share] = events + spotter.flush()
    events = found[SpotterOptions().back_share]
    assert not [e for e in events if e.kind is EventKind.MICRO]
    spans = [(e.onset, e.offset) for e in events if e.kind is EventKind.MACRO]
    assert len(spans) == 3
    for truth_span in macros:
        assert max(interval_iou(s, truth_span) for s in spans) >= 0.7
    first = macros[0]
    assert any(s[0] < first[1] and s[1] > macros[1][0] for s in
               [(e.onset, e.offset) for e in found[0.0] if e.kind is EventKind.MACRO])  # fmt: skip


def test_macro_bumps_inside_a_held_expression_are_reported_once(samples, wolfgang_recording):
    """WolfgangLanger's sample (she cries and talks; flow on her frames): a macro-sized bump the
    micro layer finds while a held expression is open over it waits for that one. When the held
    expression is reported it covers the bump, which is not reported again (before, 2.53-3.21 s
    and 2.54-3.29 s were one movement reported twice); when it turns out to be none (here one open
    from about 0.5 s is rejected as head motion at 3.96 s), the bumps are reported then, with that
    decision time, not lost (dropping them left nothing before 2.5 s)."""
    from avatar_bridge.micro.synth.generate import read_frames

    frames, _ = read_frames(samples / "WolfgangLanger_Pexels.mp4")
    spotter = MicroSpotter(SpotterOptions())
    events = [e for f, r in zip(frames, wolfgang_recording, strict=True) for e in spotter.update(r, (), f)]
    macro = [e for e in events + spotter.flush() if e.kind is EventKind.MACRO]
    assert spotter.stats.get("macro_in_held", 0) > 0
    assert all(e.offset <= e.emitted_at for e in macro)
    assert any(e.offset < 2.5 for e in macro)
    for a, b in itertools.combinations(macro, 2):
        assert interval_iou((a.onset, a.offset), (b.onset, b.offset)) < 0.5, (a, b)
