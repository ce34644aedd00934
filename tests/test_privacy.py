"""Privacy by default: loopback unless a sink names a destination, derived signals only, --anonymize.

Network behaviour is observed with Python's audit hooks (every socket connect/sendto/bind of the
process is recorded) in a fresh subprocess, on real video with real MediaPipe and real UDP.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avatar_bridge.cli import main
from avatar_bridge.errors import ConfigError
from avatar_bridge.pipeline.live import LiveOptions
from avatar_bridge.sinks import SINKS, SinkURL, open_sink

NETWORK_SCHEMES = ("osc", "vmc", "vrchat", "livelink")
LOOPBACK = "127.0.0.1"

# Runs a snippet with an audit hook that prints every socket event as JSON on the last line.
AUDITED = textwrap.dedent(
    """
    import json, sys
    events = []
    def hook(name, args):
        if name in ("socket.connect", "socket.sendto", "socket.bind", "socket.sendmsg"):
            addr = args[-1] if name != "socket.sendmsg" else args[1]
            events.append([name, repr(addr)])
    sys.addaudithook(hook)
    try:
        exec(compile(sys.argv[1], "<snippet>", "exec"))
    finally:
        print(json.dumps(events))
    """
)


def _audited(snippet: str, timeout: float = 300) -> list[list[str]]:
    proc = subprocess.run([sys.executable, "-c", AUDITED, textwrap.dedent(snippet)], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_network_sink_defaults_to_loopback():
    assert set(NETWORK_SCHEMES) <= set(SINKS)
    for scheme in NETWORK_SCHEMES:
        sink = open_sink(f"{scheme}://")
        assert sink.host == LOOPBACK, scheme
        sink.open()
        try:
            assert sink._addr[0] == LOOPBACK
        finally:
            sink.close()


def test_live_defaults_name_only_loopback_and_need_an_explicit_sink():
    assert all(SinkURL.parse(u).host in (LOOPBACK, None) for u in LiveOptions().sinks)
    with pytest.raises(ConfigError, match="at least one sink"):
        LiveOptions(sinks=())


def test_live_cli_without_a_sink_sends_nothing(capsys):
    assert main(["live", "--source", "nothing.mp4"]) == 1
    err = capsys.readouterr().err
    assert "at least one --sink" in err and "Traceback" not in err


def test_blender_addon_listens_on_loopback_by_default():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from blender_addon.receiver import UDPReceiver
        from blender_addon.session import SessionOptions
    finally:
        sys.path.pop(0)
    assert SessionOptions().host == LOOPBACK
    receiver = UDPReceiver(port=0)
    receiver.start()
    try:
        assert receiver.address[0] == LOOPBACK
    finally:
        receiver.stop()


def test_export_opens_no_socket_at_all(samples, tmp_path):
    events = _audited(f"""
        from avatar_bridge.cli import main
        assert main(["export", {str(samples / "single_face.mp4")!r}, "-o", {str(tmp_path)!r}, "-q"]) == 0
    """)
    assert events == []
    assert (tmp_path / "single_face.csv").exists()


def test_live_sends_only_to_the_named_loopback_receivers(samples):
    receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in NETWORK_SCHEMES]
    for r in receivers:
        r.bind((LOOPBACK, 0))
        r.settimeout(5.0)
    urls = [f"{s}://:{r.getsockname()[1]}" for s, r in zip(NETWORK_SCHEMES, receivers, strict=True)]
    video = str(samples / "single_face.mp4")
    try:
        events = _audited(f"""
            from avatar_bridge.pipeline.live import LiveOptions, LivePipeline
            options = LiveOptions(source={video!r}, sinks={tuple(urls)!r}, fast=True, max_frames=10,
                                  micro=False)
            stats = LivePipeline(options).run()
            assert stats.frames == 10 and not stats.sink_errors, stats.summary()
        """)
        for r in receivers:
            assert r.recv(65536)  # every sink really sent, to where its URL pointed
    finally:
        for r in receivers:
            r.close()
    sends = [e for e in events if e[0] in ("socket.sendto", "socket.sendmsg")]
    ports = {r_url.rsplit(":", 1)[1] for r_url in urls}
    assert sends, events
    for _, addr in sends:
        assert addr.startswith(f"('{LOOPBACK}',") and addr.rstrip(")").rsplit(", ", 1)[1] in ports, addr
    assert not [e for e in events if e[0] == "socket.bind"]  # a sender listens on nothing


def test_preview_sink_does_not_include_the_camera_image_unless_asked(tmp_path):
    sink = open_sink(f"preview://{tmp_path / 'avatar.mp4'}")
    assert sink.options.debug is False  # debug=1 is the explicit opt-in to camera pixels


@pytest.fixture(scope="module")
def both_exports(samples, tmp_path_factory):
    full, anon = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("anon")
    video = str(samples / "single_face.mp4")
    assert main(["export", video, "-o", str(full), "-q", "--no-plot"]) == 0
    assert main(["export", video, "-o", str(anon), "-q", "--no-plot", "--anonymize"]) == 0
    return full, anon


def test_export_writes_derived_signals_only(both_exports, samples):
    full, _ = both_exports
    names = sorted(p.name for p in full.iterdir())
    assert names == ["single_face.blendshapes.csv", "single_face.csv", "single_face.events.json",
                     "single_face.json", "single_face.landmarks.npz"]  # fmt: skip
    lm = np.load(full / "single_face.landmarks.npz")
    assert lm["landmarks"].shape == (72, 478, 3) and lm["landmarks"].dtype == np.float32
    assert lm["frame"].tolist() == list(range(72)) and tuple(lm["image_size"]) == (640, 360)
    xy = lm["landmarks"][..., :2]
    assert xy.min() > 0.0 and xy.max() < 1.0  # normalised coordinates, not pixels
    assert not any(k.endswith(("image", "pixels")) for k in lm.files)


def test_anonymize_drops_landmarks_and_keeps_the_curves(both_exports):
    full, anon = both_exports
    expected = [f"single_face{k}" for k in (".blendshapes.csv", ".csv", ".events.json", ".json")]
    assert sorted(p.name for p in anon.iterdir()) == expected
    meta = json.loads((anon / "single_face.json").read_text())
    assert meta["settings"]["landmarks"] is False
    assert not [n for n in meta["outputs"] if "landmark" in n]
    for name in ("single_face.csv", "single_face.blendshapes.csv"):
        a = pd.read_csv(anon / name, skipinitialspace=True)
        f = pd.read_csv(full / name, skipinitialspace=True)
        assert list(a.columns) == list(f.columns)
        assert not [c for c in a.columns if c[:2] in ("x_", "y_", "X_", "Y_", "Z_")]
        pd.testing.assert_frame_equal(a, f, atol=0.011)


def test_anonymized_batch_is_not_mistaken_for_a_full_one(samples, tmp_path):
    video = str(samples / "single_face.mp4")
    assert main(["export", video, video.replace("single_face", "no_face"), "-o", str(tmp_path), "-q",
                 "--no-plot", "--anonymize"]) == 0  # fmt: skip
    assert not list(tmp_path.glob("*.landmarks.npz"))
    # Without --anonymize the same folder is redone (settings changed) and gains the landmarks.
    assert main(["export", video, video.replace("single_face", "no_face"), "-o", str(tmp_path), "-q",
                 "--no-plot"]) == 0  # fmt: skip
    assert len(list(tmp_path.glob("*.landmarks.npz"))) == 2


def test_record_video_writes_camera_frames_only_when_asked(samples, tmp_path):
    """--record-video keeps the camera frames; without it the same run leaves no video behind."""
    import cv2

    from avatar_bridge.cli import main

    video = samples / "single_face.mp4"
    take = tmp_path / "take.avi"
    run = ["live", "--source", str(video), "--fast", "--max-frames", "20", "-q", "--sink", "osc://127.0.0.1:9"]
    assert main([*run, "--record-video", str(take)]) == 0
    cap = cv2.VideoCapture(str(take))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    cap.release()
    take.unlink()
    assert main(run) == 0
    assert list(tmp_path.iterdir()) == []
