"""Live pipeline end to end on real sample videos (real MediaPipe, real UDP on 127.0.0.1), and the
bad-input table of the CLI (one-line errors, non-zero exit)."""

from __future__ import annotations

import json
import socket
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest
from pythonosc.osc_packet import OscPacket

from avatar_bridge.cli import main
from avatar_bridge.errors import InputError, SinkError
from avatar_bridge.pipeline.live import LiveOptions, LivePipeline
from avatar_bridge.records import FrameOutput
from avatar_bridge.tracking import FaceTracker


class Collect:
    """An in-process sink that keeps what it was sent."""

    name = "collect"
    profile = None

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self.outputs: list[FrameOutput] = []
        self.opened = self.closed = 0

    def open(self) -> None:
        self.opened += 1

    def send(self, out: FrameOutput) -> None:
        self.outputs.append(out)

    def close(self) -> None:
        self.closed += 1


class Failing(Collect):
    name = "failing"

    def send(self, out: FrameOutput) -> None:
        raise SinkError("failing: the receiver exploded")


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def drain(s) -> list[bytes]:
    out = []
    try:
        while True:
            out.append(s.recvfrom(65536)[0])
    except TimeoutError:
        return out


@pytest.mark.slow
def test_live_cli_end_to_end_on_real_video(samples, capsys):
    osc, vmc = udp_socket(), udp_socket()
    try:
        code = main(
            [
                "live",
                "--source",
                str(samples / "single_face.mp4"),
                "--fast",
                "--max-frames",
                "30",
                "--profile",
                "arkit52",
                "--sink",
                f"osc://127.0.0.1:{osc.getsockname()[1]}",
                "--sink",
                f"vmc://127.0.0.1:{vmc.getsockname()[1]}?profile=vrm0",
                "--quiet",
            ]
        )
        assert code == 0
        native, vmc_dgrams = drain(osc), drain(vmc)
    finally:
        osc.close()
        vmc.close()
    ends = [
        m.message.params[0] for d in native for m in OscPacket(d).messages if m.message.address == "/ab/end"
    ]
    assert ends == list(range(30))
    blends = {
        m.message.params[0] for d in native for m in OscPacket(d).messages if m.message.address == "/ab/blend"
    }
    assert len(blends) == 52
    vmc_names = {m.message.params[0] for d in vmc_dgrams for m in OscPacket(d).messages
                 if m.message.address == "/VMC/Ext/Blend/Val"}  # fmt: skip
    assert vmc_names == {
        "Joy",
        "Angry",
        "Sorrow",
        "Fun",
        "A",
        "I",
        "U",
        "E",
        "O",
        "Blink",
        "Blink_L",
        "Blink_R",
    }
    summary = capsys.readouterr().err
    assert "30 frames" in summary and "latency" in summary


@pytest.mark.slow
def test_one_failing_sink_is_reported_and_others_keep_running(samples):
    good, bad, vrm = Collect(), Failing(), Collect(profile="vrm1")
    opts = LiveOptions(
        source=str(samples / "single_face.mp4"), sinks=("osc://127.0.0.1:9",), fast=True, max_frames=12
    )
    stats = LivePipeline(opts, extra_sinks=[good, bad, vrm]).run()
    assert stats.frames == 12 and len(good.outputs) == 12 and len(vrm.outputs) == 12
    assert stats.sink_errors == {"failing": 12}
    assert "exploded" in stats.sink_first_error["failing"]
    assert good.closed == bad.closed == 1
    assert good.outputs[5].weights[0].names[0] == "eyeBlinkLeft"  # the session's profile
    assert vrm.outputs[5].weights[0].names[0] == "happy"  # the sink's own profile
    assert stats.datagrams["osc://127.0.0.1:9"] == 24  # nobody listens on port 9: still sent, no error


@pytest.mark.slow
def test_face_lost_eases_to_neutral_on_real_video(samples):
    sink = Collect()
    opts = LiveOptions(source=str(samples / "face_noface.mov"), sinks=("osc://127.0.0.1:9",), fast=True)
    stats = LivePipeline(opts, extra_sinks=[sink]).run()
    found = [o.weights[0].face_found if o.weights else False for o in sink.outputs]
    assert any(found) and not all(found)
    lost_at = found.index(False, found.index(True))
    totals = [float(np.abs(o.weights[0].values).sum()) for o in sink.outputs[lost_at - 1 :]]
    assert totals[0] > 0.5
    assert totals[-1] == pytest.approx(0.0, abs=1e-6)  # back at neutral, not frozen
    assert stats.frames == len(sink.outputs)


@pytest.mark.slow
def test_calibrate_then_live_with_calibration(samples, tmp_path, capsys):
    cal = tmp_path / "me.json"
    video = str(samples / "single_face.mp4")
    assert main(["calibrate", "--source", video, "--out", str(cal), "--neutral-seconds", "0.5",
                 "--expression-seconds", "1.5"]) == 0  # fmt: skip
    data = json.loads(cal.read_text())
    assert data["format"] == "avatar-bridge/calibration"
    assert data["facs"]["frames"] >= 10 and "mouthSmileLeft" in data["retarget"]["maximum"]
    sink = Collect()
    opts = LiveOptions(source=video, sinks=("osc://127.0.0.1:9",), fast=True, max_frames=72, calibration=cal)
    LivePipeline(opts, extra_sinks=[sink]).run()
    smile = [o.weights[0].as_dict()["mouthSmileLeft"] for o in sink.outputs]
    assert max(smile) > 0.9 and min(smile[3:12]) < 0.1  # neutral -> 0, the user's widest smile -> ~1


BAD_INPUT = [
    (["--profile", "vrm9"], "unknown profile 'vrm9'"),
    (["--sink", "ftp://127.0.0.1:1"], "unknown sink scheme 'ftp'"),
    (["--sink", "osc:/127.0.0.1"], "malformed sink URL"),
    (["--sink", "osc://127.0.0.1:70000"], "malformed sink URL"),
    (["--sink", "osc://127.0.0.1:9100?bind=127.0.0.1:{busy}"], "address already in use"),
    (["--sink", "osc://255.255.255.255:9100"], "not permitted"),
    (["--sink", "vmc://no-such-host.invalid:39539"], "cannot resolve host"),
    (["--sink", "osc://", "--calibration", "{missing}"], "calibration file not found"),
    (["--sink", "osc://", "--profile", "{badprofile}"], "unknown source"),
    (["--sink", "osc://", "--classifier", "tp-ha3dnet", "--classifier-model", "{missing}"],
     "TP-HA3DNet model not found"),  # fmt: skip
    ([], "at least one --sink"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_gives_one_line_error(samples, tmp_path, capsys, args, message):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[target]]\nname = "x"\nsource = "smile"\n')
    fill = {"busy": busy.getsockname()[1], "missing": tmp_path / "nope.json", "badprofile": bad}
    try:
        argv = ["live", "--source", str(samples / "single_face.mp4"), "--fast", "--max-frames", "2"]
        argv += [a.format(**fill) for a in args]
        if not any(a == "--sink" for a in argv) and args:
            argv += ["--sink", "osc://"]
        code = main(argv)
    finally:
        busy.close()
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert message in err


def test_live_runs_opencv_on_one_thread_and_puts_the_setting_back(samples):
    import cv2

    class Threads(Collect):
        def send(self, out: FrameOutput) -> None:
            self.outputs.append(cv2.getNumThreads())

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        sink = Threads()
        opts = LiveOptions(source=str(samples / "single_face.mp4"), sinks=("osc://127.0.0.1:9",), fast=True,
                           max_frames=5)  # fmt: skip
        LivePipeline(opts, extra_sinks=[sink]).run()
        assert sink.outputs == [1] * 5 and cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_live_reports_how_long_the_face_was_calm(samples, capsys):
    """The whole of single_face.mp4 live: the face is watched for most of its 2.4 s and, smiling, is
    calm in its lower half less than in its upper; the summary prints one line for the face."""
    from rich.console import Console

    from avatar_bridge.cli.live import print_live_summary

    opts = LiveOptions(source=str(samples / "single_face.mp4"), sinks=("osc://127.0.0.1:9",), fast=True)
    stats = LivePipeline(opts).run()
    calm = stats.calm[0]
    assert 1.5 < calm["seconds"] <= 2.4 and set(calm) == {"seconds", "upper", "lower"}
    assert 0.0 <= calm["lower"] < calm["upper"] <= calm["seconds"]
    assert stats.summary()["calm_time"] == {0: {k: round(v, 3) for k, v in calm.items()}}
    print_live_summary(stats, Console(width=200))
    out = capsys.readouterr().out.splitlines()
    (line,) = [ln for ln in out if "calm enough" in ln]
    assert line.startswith("face 0 calm enough to look for micro-expressions: upper face")
    # Calm under a tenth of the time in both halves: the summary says why and how to look everywhere.
    assert calm["upper"] < 0.1 * calm["seconds"] and any("--spotter busy_window=0" in ln for ln in out)


class WhereTracked(FaceTracker):
    """Real MediaPipe, noting the thread each frame was tracked on; optionally failing at one frame."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.switch: set[float] = set()  # Python's thread switch interval while tracking
        self.fail_at = fail_at

    def detect(self, frame):
        if frame.index == self.fail_at:
            raise InputError(f"frame {frame.index}: the camera went away")
        self.threads.append(threading.current_thread().name)
        self.switch.add(sys.getswitchinterval())
        return super().detect(frame)


@pytest.mark.slow
def test_overlapped_tracking_gives_the_same_outputs_as_frame_by_frame(samples):
    """With --overlap MediaPipe tracks each next frame in a thread of its own; every frame is still
    analysed in order and the avatar, AUs and events come out exactly as without it."""
    got, before = {}, sys.getswitchinterval()
    for overlap in (False, True):
        sink, tracker = Collect(), WhereTracked()
        opts = LiveOptions(source=str(samples / "WolfgangLanger_Pexels.mp4"), sinks=("osc://127.0.0.1:9",),
                           fast=True, max_frames=160, overlap=overlap)  # fmt: skip
        with tracker:
            stats = LivePipeline(opts, tracker=tracker, extra_sinks=[sink]).run()
        assert stats.frames == len(sink.outputs) == 160 and 160 <= len(tracker.threads) <= 162
        assert set(tracker.threads) == {"avatar-bridge-track" if overlap else threading.current_thread().name}
        assert tracker.switch == {opts.switch_interval if overlap else before}  # the GIL handed over sooner
        assert sys.getswitchinterval() == before  # and put back
        got[overlap] = sink.outputs
    serial, overlapped = got[False], got[True]
    assert [o.index for o in overlapped] == list(range(160))
    events = [[(e.kind, e.onset, e.apex, e.offset) for o in run for e in o.events]
              for run in (serial, overlapped)]  # fmt: skip
    assert len(events[0]) >= 4 and events[0] == events[1]  # her first expressions, as macro events
    for a, b in zip(serial, overlapped, strict=True):
        np.testing.assert_array_equal(a.weights[0].values, b.weights[0].values)
        np.testing.assert_array_equal(a.aus[0].intensity, b.aus[0].intensity)
    assert not [t for t in threading.enumerate() if t.name == "avatar-bridge-track"]  # stopped with the run


@pytest.mark.slow
def test_overlapped_tracking_stops_cleanly_on_max_frames_and_hands_errors_over(samples):
    sink = Collect()
    opts = LiveOptions(source=str(samples / "single_face.mp4"), sinks=("osc://127.0.0.1:9",), fast=True,
                       overlap=True, max_frames=10)  # fmt: skip
    with WhereTracked() as tracker:
        stats = LivePipeline(opts, tracker=tracker, extra_sinks=[sink]).run()
    assert stats.frames == len(sink.outputs) == 10 and sink.closed == 1
    assert len(tracker.threads) <= 12  # at most the queued frame and the one in MediaPipe beyond the tenth
    # An error while tracking frame 7 reaches the caller after frames 0-6 went out; sinks are closed.
    sink = Collect()
    opts = replace(opts, max_frames=None)
    with WhereTracked(fail_at=7) as tracker, pytest.raises(InputError, match="camera went away"):
        LivePipeline(opts, tracker=tracker, extra_sinks=[sink]).run()
    assert [o.index for o in sink.outputs] == list(range(7)) and sink.closed == 1
    assert not [t for t in threading.enumerate() if t.name == "avatar-bridge-track"]
