"""Virtual camera and preview sinks, through a pyvirtualcam test backend and real video files."""

from __future__ import annotations

import platform

import cv2
import numpy as np
import pytest
import pyvirtualcam

from avatar_bridge.errors import BackendUnavailableError, ConfigError
from avatar_bridge.records import FrameOutput
from avatar_bridge.retarget import Retargeter
from avatar_bridge.sinks.vcam import PreviewSink, VirtualCameraSink, missing_device_message


@pytest.fixture()
def recorder():
    """A pyvirtualcam backend (registered under a unique name) that keeps what it receives."""

    class Recorder:
        frames: list[np.ndarray] = []
        opened: dict = {}
        closed = 0

        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            Recorder.opened = {"width": width, "height": height, "fps": fps, "fourcc": fourcc}

        def send(self, frame):
            Recorder.frames.append(frame.copy())

        def close(self):
            Recorder.closed += 1

        def device(self):
            return "avatar-bridge-test"

        def native_fourcc(self):
            return None

    pyvirtualcam.register_backend("ab_test", Recorder)
    yield Recorder
    pyvirtualcam.camera.BACKENDS.pop("ab_test", None)


def outputs(recording, profile: str) -> list[FrameOutput]:
    """The real tracked frames retargeted to ``profile`` (FACS left out: blendshapes only)."""
    rt = Retargeter(profile)
    out = []
    for r in recording:
        face = r.faces[0] if r.faces else None
        w = rt.update(face, None, r.timestamp, r.index)
        out.append(FrameOutput(r.index, r.timestamp, weights=(w,), faces=r.faces))
    return out


def test_frames_reach_the_camera_with_size_format_and_count(recorder, single_face_recording):
    sink = VirtualCameraSink("vcam://?backend=ab_test&size=320x240&fps=60&pace=0")
    assert sink.profile == "arkit52"
    frames = outputs(single_face_recording, sink.profile)
    with sink:
        for out in frames:
            sink.send(out)
    assert recorder.opened == {
        "width": 320,
        "height": 240,
        "fps": 60.0,
        "fourcc": pyvirtualcam.camera.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value),
    }
    assert len(recorder.frames) == len(frames) == sink.frames_sent == 72
    assert all(f.dtype == np.uint8 and f.size == 320 * 240 * 3 for f in recorder.frames)
    assert recorder.closed == 1
    images = [f.reshape(240, 320, 3) for f in recorder.frames]
    # neutral -> smile -> neutral: the smiling middle differs from the first frame, the mouth most
    smile = max(range(72), key=lambda i: single_face_recording[i].faces[0].blendshape("mouthSmileLeft"))
    diff = np.abs(images[smile].astype(int) - images[0]).max(axis=2) > 12
    assert diff.sum() > 200
    assert (images[0][0, 0] == (0, 255, 0)).all()


def test_ict_avatar_through_its_own_profile(recorder, shared_data, single_face_recording):
    sink = VirtualCameraSink("vcam://", backend="ab_test", size="320x240", avatar="ict", pace=False)
    assert sink.profile == "ict_facekit"
    frames = outputs(single_face_recording[:10], sink.profile)
    assert "eyeBlink_L" in frames[0].weights[0].names
    with sink:
        for out in frames:
            sink.send(out)
    assert len(recorder.frames) == 10
    image = recorder.frames[0].reshape(240, 320, 3)
    assert ((image != (0, 255, 0)).any(axis=2)).mean() > 0.1


def test_missing_device_says_what_is_missing():
    if platform.system() != "Linux":
        pytest.skip("the v4l2loopback message is Linux's")
    sink = VirtualCameraSink("vcam://?backend=v4l2loopback")
    try:
        sink.open()
    except BackendUnavailableError as e:
        message = str(e)
    else:  # pragma: no cover - a machine with a loaded v4l2loopback device
        sink.close()
        pytest.skip("this machine has a v4l2loopback device, so nothing is missing")
    assert "\n" not in message
    assert "v4l2loopback" in message and "modprobe" in message and "--preview" in message
    with pytest.raises(BackendUnavailableError, match="'obs' is not available"):
        VirtualCameraSink("vcam://?backend=obs").open()


@pytest.mark.parametrize("system, words", [("Windows", "OBS"), ("Darwin", "OBS"), ("Linux", "v4l2loopback")])
def test_missing_device_message_per_os(system, words):
    assert words in missing_device_message(system) and "\n" not in missing_device_message(system)


def test_preview_writes_a_readable_video(tmp_path, single_face_recording):
    path = tmp_path / "out.mp4"
    sink = PreviewSink(f"preview://{path}?size=320x240&fps=30&background=%23203040")
    frames = outputs(single_face_recording[:25], sink.profile)
    with sink:
        for out in frames:
            sink.send(out)
    cap = cv2.VideoCapture(str(path))
    read = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        read.append(image)
    cap.release()
    assert len(read) == 25
    assert read[0].shape == (240, 320, 3)
    assert np.abs(read[0][2, 2].astype(int) - (64, 48, 32)).max() < 12  # BGR of #203040, after encoding
    assert not list(tmp_path.glob(".part-*"))


@pytest.mark.parametrize(
    "url",
    [
        "vcam://?size=big",
        "vcam://?fps=0",
        "vcam://?colour=red",
        "vcam://?size=321x240",
        "osc://x",
        "preview://",
    ],
)
def test_bad_urls_are_config_errors(url):
    cls = PreviewSink if url.startswith("preview") else VirtualCameraSink
    with pytest.raises(ConfigError):
        cls(url)


def test_open_sink_registry_builds_both_sinks(tmp_path):
    from avatar_bridge.sinks import open_sink

    vcam = open_sink("vcam://?backend=ab_test&size=640x360&avatar=ict")
    assert isinstance(vcam, VirtualCameraSink) and vcam.profile == "ict_facekit"
    assert vcam.options.size == (640, 360)
    preview = open_sink(f"preview://{tmp_path / 'x.mp4'}")
    assert isinstance(preview, PreviewSink) and preview.profile == "arkit52"
