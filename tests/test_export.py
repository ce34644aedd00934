"""`avatar-bridge export` end to end on real video with real MediaPipe, and every bad input of issue 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from avatar_bridge.channels import ARKIT_NAMES, AU_INTENSITY, AU_PRESENCE
from avatar_bridge.cli import main
from avatar_bridge.export import OPENFACE_COLUMNS, read_openface_csv
from avatar_bridge.recording import load_recording


@pytest.fixture(scope="module")
def single_export(samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert main(["export", str(samples / "single_face.mp4"), "-o", str(out), "--quiet"]) == 0
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_export_writes_all_files(single_export):
    names = sorted(p.name for p in single_export.iterdir())
    assert names == ["single_face.blendshapes.csv", "single_face.csv", "single_face.events.json",
                     "single_face.json", "single_face.landmarks.npz", "single_face.png"]  # fmt: skip
    png = single_export / "single_face.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imread(str(png)).shape[1] > 1000


def test_au_csv_has_openface_columns_and_reads_with_pandas(single_export, samples):
    df = pd.read_csv(single_export / "single_face.csv", skipinitialspace=True)
    reference = pd.read_csv(samples / "OpenFace_Test.csv", skipinitialspace=True)
    ours_au = [c for c in df.columns if c.startswith("AU")]
    theirs_au = [c for c in reference.columns if c.startswith("AU")]
    assert ours_au == theirs_au
    assert tuple(df.columns) == OPENFACE_COLUMNS
    assert len(df) == 72 and df["frame"].tolist() == list(range(1, 73))
    assert df["timestamp"].to_numpy() == pytest.approx(np.arange(72) / 30, abs=1e-3)
    assert df["success"].mean() >= 0.99
    r = df[[f"{au}_r" for au in AU_INTENSITY]].to_numpy()
    c = df[[f"{au}_c" for au in AU_PRESENCE]].to_numpy()
    assert r.min() >= 0 and r.max() <= 5 and set(np.unique(c)) <= {0.0, 1.0}
    # The raw text uses OpenFace's comma-space separator.
    header = (single_export / "single_face.csv").read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp, confidence, success, pose_Tx")
    # Our own reader agrees with pandas.
    cols = read_openface_csv(single_export / "single_face.csv")
    assert cols["AU12_r"] == pytest.approx(df["AU12_r"].to_numpy())
    # Pose in OpenFace's convention: millimetres in front of the camera along +z.
    assert df["pose_Tz"].median() > 100


def test_au12_rises_with_the_smile(single_export):
    df = pd.read_csv(single_export / "single_face.csv", skipinitialspace=True)
    bs = pd.read_csv(single_export / "single_face.blendshapes.csv", skipinitialspace=True)
    smile_frame = int(bs["mouthSmileLeft"].idxmax())
    assert df["AU12_r"].iloc[smile_frame] > df["AU12_r"].iloc[:5].mean() + 1.0


def test_blendshape_csv(single_export):
    text = (single_export / "single_face.blendshapes.csv").read_text().splitlines()
    assert text[0] == ", ".join(("frame", "face_id", "timestamp", "success", *ARKIT_NAMES))
    bs = pd.read_csv(single_export / "single_face.blendshapes.csv", skipinitialspace=True)
    assert bs["tongueOut"].isna().all()  # untracked: empty, never invented
    tracked = bs[[n for n in ARKIT_NAMES if n != "tongueOut"]][bs["success"] == 1]
    assert tracked.notna().all().all() and tracked.to_numpy().max() <= 1.0


def test_json_metadata(single_export):
    meta = json.loads((single_export / "single_face.json").read_text())
    assert meta["frame_count"] == 72 and meta["fps"] == pytest.approx(30.0)
    assert meta["model"]["sha256"].startswith("64184e22")
    assert meta["faces"][0]["face_id"] == 0 and meta["faces"][0]["frames"] >= 71
    assert meta["settings"]["tracker"]["num_faces"] == 1
    assert set(meta["outputs"]) == {"single_face.csv", "single_face.blendshapes.csv", "single_face.json",
                                    "single_face.landmarks.npz", "single_face.png",
                                    "single_face.events.json"}  # fmt: skip


def test_analysis_in_batches_writes_what_frame_by_frame_analysis_writes(single_export, samples, tmp_path):
    """The analysis runs stage by stage over batches of frames (``analysis_batch``, 16): frame by
    frame (1) and in batches that leave a short last one (5 of 72 frames), every output is the same."""
    from avatar_bridge.pipeline.export import ExportOptions, export_video

    for batch in (1, 5):
        out = tmp_path / str(batch)
        export_video(samples / "single_face.mp4", out, ExportOptions(analysis_batch=batch, plot=False))
        for name in ("single_face.csv", "single_face.blendshapes.csv", "single_face.events.json"):
            assert (out / name).read_bytes() == (single_export / name).read_bytes(), (batch, name)
        name = "single_face.landmarks.npz"
        with np.load(out / name) as a, np.load(single_export / name) as b:
            assert sorted(a.files) == sorted(b.files)
            assert all(np.array_equal(a[k], b[k]) for k in a.files)
    assert len(json.loads((out / "single_face.events.json").read_text())["events"]) > 0


def test_time_range_and_stride(samples, tmp_path):
    assert main(["export", str(samples / "single_face.mp4"), "-o", str(tmp_path), "-q",
                 "--start", "1", "--end", "2", "--stride", "2", "--no-plot"]) == 0  # fmt: skip
    df = pd.read_csv(tmp_path / "single_face.csv", skipinitialspace=True)
    assert df["frame"].tolist() == list(range(31, 61, 2))
    assert not (tmp_path / "single_face.png").exists()


def test_no_face_video_gives_success_zero_rows_and_a_warning(samples, tmp_path, capsys):
    assert main(["export", str(samples / "no_face.mp4"), "-o", str(tmp_path), "-q"]) == 0
    assert "no face found" in capsys.readouterr().err
    df = pd.read_csv(tmp_path / "no_face.csv", skipinitialspace=True)
    assert len(df) >= 90 and (df["success"] == 0).all()


@pytest.mark.parametrize("name", ["face_noface.mov", "noface_face.mov"])
def test_face_that_leaves_and_returns(samples, tmp_path, name):
    assert main(["export", str(samples / name), "-o", str(tmp_path), "-q", "--no-plot"]) == 0
    df = pd.read_csv(tmp_path / name.replace(".mov", ".csv"), skipinitialspace=True)
    assert 0 < df["success"].sum() < len(df)
    assert set(df.loc[df["success"] == 1, "face_id"]) == {0}
    assert (df.loc[df["success"] == 0, [f"{au}_r" for au in AU_INTENSITY]] == 0).all().all()


def test_4k_video_is_downscaled(samples, tmp_path):
    big = tmp_path / "big.avi"
    cap = cv2.VideoCapture(str(samples / "single_face.mp4"))
    writer = cv2.VideoWriter(str(big), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (3840, 2160))
    for _ in range(6):
        ok, bgr = cap.read()
        writer.write(cv2.resize(bgr, (3840, 2160), interpolation=cv2.INTER_CUBIC))
    writer.release()
    cap.release()
    assert main(["export", str(big), "-o", str(tmp_path / "o"), "-q", "--max-size", "1280", "--no-plot"]) == 0
    meta = json.loads((tmp_path / "o" / "big.json").read_text())
    assert meta["source"]["width"] == 3840 and meta["settings"]["capture"]["max_size"] == 1280
    df = pd.read_csv(tmp_path / "o" / "big.csv", skipinitialspace=True)
    assert df["success"].sum() == 6


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.mp4", "video not found"),
        (lambda p: (p / "notes.mp4").write_text("not a video") and p / "notes.mp4", "cannot open"),
        (lambda p: (p / "zero.mp4").write_bytes(b"") or p / "zero.mp4", "cannot open"),
    ],
)
def test_bad_video_is_one_line_error(tmp_path, capsys, make, message):
    out = tmp_path / "out"
    assert main(["export", str(make(tmp_path)), "-o", str(out), "-q"]) == 1
    assert message in _one_line_error(capsys)
    assert not out.exists() or not any(out.iterdir())


def test_zero_frames_in_range_is_an_error_and_leaves_nothing(samples, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(samples / "single_face.mp4"), "-o", str(out), "-q", "--start", "60"]) == 1
    assert "no frame could be decoded" in _one_line_error(capsys)
    assert list(out.iterdir()) == []  # no partial file, not even a temporary one


def test_truncated_video(samples, tmp_path, capsys):
    data = (samples / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code = main(["export", str(cut), "-o", str(tmp_path / "o"), "-q", "--no-plot"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 0:  # decodable part kept, flagged in the JSON and on stderr
        meta = json.loads((tmp_path / "o" / "cut.json").read_text())
        assert meta["decode_complete"] is False and "truncated" in err
    else:
        assert code == 1 and err.count("error:") == 1


def test_unwritable_output_folder(samples, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["export", str(samples / "single_face.mp4"), "-o", str(blocker / "out"), "-q"]) == 1
    assert "output folder" in _one_line_error(capsys)


def test_console_script_reports_errors_without_traceback(tmp_path):
    exe = Path(sys.executable).parent / "avatar-bridge"
    proc = subprocess.run([str(exe), "export", str(tmp_path / "nope.mp4")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: video not found: {tmp_path / 'nope.mp4'}"]


def test_help_teaches():
    proc = subprocess.run([str(Path(sys.executable).parent / "avatar-bridge"), "export", "--help"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0
    assert "OpenFace" in proc.stdout and "--start" in proc.stdout and "skipinitialspace" in proc.stdout


def test_events_file_reads_back_and_the_smile_is_not_a_micro_expression(single_export):
    """single_face.mp4's smile lasts about a second: a macro-expression, never a micro one."""
    from avatar_bridge.export.events_json import read_events
    from avatar_bridge.records import EventKind

    doc = json.loads((single_export / "single_face.events.json").read_text())
    assert doc["format"] == "avatar-bridge-events" and isinstance(doc["spotter_stats"], dict)
    # When the face was calm enough, per zone: the spans add up to the calm time written beside them.
    calm, spans = doc["calm_time"]["0"], doc["calm_spans"]["0"]
    assert set(spans) == {"upper", "lower"} and calm["seconds"] > 1.5
    for zone, zone_spans in spans.items():
        assert sum(b - a for a, b in zone_spans) == pytest.approx(calm[zone], abs=2e-3)
    events = read_events(single_export / "single_face.events.json")
    assert len(events) == len(doc["events"])
    assert not [e for e in events if e.kind is EventKind.MICRO]
    for e in events:
        assert e.onset <= e.apex <= e.offset <= e.emitted_at


def test_events_file_bad_input(tmp_path):
    from avatar_bridge.errors import InputError
    from avatar_bridge.export.events_json import read_events

    bad = tmp_path / "bad.events.json"
    bad.write_text('{"format": "avatar-bridge-events", "events": [{"kind": "giant"}]}')
    with pytest.raises(InputError, match="event 0 is malformed"):
        read_events(bad)
    bad.write_text("[1, 2")
    with pytest.raises(InputError, match="is not valid JSON"):
        read_events(bad)


def test_plot_built_in_another_thread_draws_the_same_picture(single_export, tmp_path):
    """The export builds the plot's fixed parts while frames are tracked, in a thread of its own."""
    from concurrent.futures import ThreadPoolExecutor

    from avatar_bridge.errors import InputError
    from avatar_bridge.export.events_json import read_events
    from avatar_bridge.export.plot import AUPlot

    df = pd.read_csv(single_export / "single_face.csv", skipinitialspace=True)
    times = df["timestamp"].to_numpy()
    intensity = df[[f"{au}_r" for au in AU_INTENSITY]].to_numpy(np.float32)
    events = read_events(single_export / "single_face.events.json")
    with ThreadPoolExecutor(1) as pool:
        elsewhere = pool.submit(AUPlot).result()
    here = AUPlot()
    a = elsewhere.save(tmp_path / "a.png", times, intensity, "single_face", events)
    b = here.save(tmp_path / "b.png", times, intensity, "single_face", events)
    img_a, img_b = cv2.imread(str(a)), cv2.imread(str(b))
    assert img_a.shape == (880, 1320, 3) and img_a.std() > 10  # a picture, not a blank page
    assert np.array_equal(img_a, img_b)
    with pytest.raises(InputError, match="one picture"):
        here.save(tmp_path / "c.png", times, intensity, "single_face", events)


def test_landmarks_file_holds_every_tracked_frame(single_export):
    df = pd.read_csv(single_export / "single_face.csv", skipinitialspace=True)
    with np.load(single_export / "single_face.landmarks.npz") as npz:
        assert npz["landmarks"].shape == (int(df["success"].sum()), 478, 3)
        assert npz["landmarks"].dtype == np.float32
        assert np.array_equal(npz["frame"] + 1, df.loc[df["success"] == 1, "frame"].to_numpy())
        xy = npz["landmarks"][:, :, :2]
        assert xy.min() > 0.0 and xy.max() < 1.0  # normalised image coordinates of a face in view


def test_stage_threads_end_with_the_export(samples, tmp_path):
    """Decode and tracking threads are joined when the export returns or fails, before the source
    and the tracker they use are closed."""
    import threading

    from avatar_bridge.capture import CaptureOptions
    from avatar_bridge.errors import InputError
    from avatar_bridge.pipeline.export import ExportOptions, export_video

    def stages() -> list[str]:
        names = ("avatar-bridge-decode", "avatar-bridge-track", "avatar-bridge-analyse")
        return [t.name for t in threading.enumerate() if t.name in names]

    summary = export_video(samples / "single_face.mp4", tmp_path / "ok", ExportOptions(plot=False))
    assert summary.frames == 72 and stages() == []
    with pytest.raises(InputError, match="no frame could be decoded"):
        export_video(samples / "single_face.mp4", tmp_path / "empty",
                     ExportOptions(capture=CaptureOptions(start=60.0), plot=False))  # fmt: skip
    assert stages() == []


@pytest.mark.parametrize("shift", [(0.0, 0.0), (-0.3, 0.0), (0.45, 0.2), (0.0, -0.6), (2.0, 2.0)])
def test_flow_face_image_is_the_plain_warp(samples, shift):
    """FlowTracks copies only the pixels its warp reads (for speed): same image as warping the whole
    frame, also for a face half out of the frame or beyond it (edge pixels replicated); its
    brightness is that warp's mean grey level."""
    from dataclasses import replace

    from avatar_bridge.capture import VideoFileSource
    from avatar_bridge.micro.flow import ALIGNED_SIZE, alignment_matrix, grey
    from avatar_bridge.micro.spotting.channels import load_config
    from avatar_bridge.micro.spotting.flowtracks import FlowTracks
    from avatar_bridge.sample_media import sample_recording

    frames = [f for _, f in zip(range(3), VideoFileSource(samples / "single_face.mp4"), strict=False)]
    results = load_recording(sample_recording("single_face.mp4"))
    cfg = load_config()
    tracks = FlowTracks(cfg.patches, cfg.rigid)
    for frame, result in zip(frames, results, strict=False):
        face = result.faces[0]
        face = replace(face, landmarks=face.landmarks + np.array([*shift, 0.0], np.float32))
        m = alignment_matrix(face, ALIGNED_SIZE)
        plain = grey(cv2.warpAffine(frame.image, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE))  # fmt: skip
        expected = cv2.GaussianBlur(plain.astype(np.float32), (0, 0), tracks.options.blur)
        assert np.array_equal(tracks.image(frame, face), expected)
        assert tracks.brightness == pytest.approx(plain.mean(), abs=1e-6)


def _plot_inputs(export_dir: Path, stem: str = "single_face"):
    """The curves an export plotted (NaN where no face) and its events, read back from its files."""
    from avatar_bridge.export.events_json import read_events

    df = pd.read_csv(export_dir / f"{stem}.csv", skipinitialspace=True)
    intensity = df[[f"{au}_r" for au in AU_INTENSITY]].to_numpy(np.float32)
    intensity[df["success"].to_numpy() == 0] = np.nan
    return df["timestamp"].to_numpy(), intensity, read_events(export_dir / f"{stem}.events.json")


def test_plot_heat_map_is_what_imshow_draws(single_export, tmp_path):
    """save() paints the heat map itself (cheaper than matplotlib's resampler): inside the map's
    frame its pixels are those of a full draw with imshow(interpolation="nearest"), grey where a
    frame has no face."""
    from avatar_bridge.export.plot import AUPlot

    times, intensity, events = _plot_inputs(single_export)
    intensity[10:14] = np.nan  # frames without a face
    plot = AUPlot()
    ours = cv2.imread(str(plot.save(tmp_path / "ours.png", times, intensity, "single_face", events)))
    reference = AUPlot()
    ax = reference.ax_map
    ax.imshow(np.ma.masked_invalid(intensity.T), aspect="auto", interpolation="nearest", cmap=reference.cmap,
              norm=reference.norm, extent=(times[0], times[-1], len(AU_INTENSITY) - 0.5, -0.5))  # fmt: skip
    ax.set_xlim(times[0], times[-1])
    reference.fig.canvas.draw()
    theirs = cv2.cvtColor(np.asarray(reference.fig.canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)
    x0, y0, x1, y1 = ax.bbox.extents  # display pixels, origin at the bottom
    h = theirs.shape[0]
    inside = (slice(int(h - y1) + 2, int(h - y0) - 2), slice(int(x0) + 2, int(x1) - 2))
    assert np.array_equal(ours[inside], theirs[inside])
    grey = np.array([0xBB, 0xBB, 0xBB])
    column = (x0 + (11.5 / len(times)) * (x1 - x0), x0 + (40.5 / len(times)) * (x1 - x0))
    assert (ours[inside[0], int(column[0])] == grey).all()  # the faceless frames, every AU row
    assert not (ours[inside[0], int(column[1])] == grey).all(axis=1).any()


def test_plot_shows_when_the_face_was_calm_enough_to_look_for_micro_expressions(single_export, tmp_path):
    """One olive bar per zone along the bottom of the curves (upper face above lower face), olive
    over the calm spans given and nowhere else; the export's own plot draws the calm spans it wrote."""
    from matplotlib.colors import to_rgb

    from avatar_bridge.export.plot import AUPlot

    times, intensity, events = _plot_inputs(single_export)
    calm = {"upper": [(0.2, 0.8), (1.5, 1.9)], "lower": [(1.0, 1.4)]}
    plain, barred = AUPlot(), AUPlot()
    a = cv2.imread(str(plain.save(tmp_path / "a.png", times, intensity, "single_face", events)))
    b = cv2.imread(str(barred.save(tmp_path / "b.png", times, intensity, "single_face", events, calm=calm)))
    ax = barred.ax_lines
    olive = np.array(to_rgb("tab:olive"))[::-1] * 255  # BGR
    upper, lower = 1.3 * 0.03 + 0.015, 0.015  # the bars' centres, fractions of the axes' height

    def olive_at(img: np.ndarray, t: float, y: float) -> bool:
        """The pixel at time t, height y is olive at alpha 0.6 over what the plain plot has there."""
        row = img.shape[0] - int(ax.transAxes.transform((0.0, y))[1])
        col = int(ax.transData.transform((t, 0.0))[0])
        return bool(np.abs(img[row, col] - (0.6 * olive + 0.4 * a[row, col])).max() < 30)

    for t in (0.3, 0.7, 1.7):
        assert olive_at(b, t, upper) and not olive_at(b, t, lower)
    assert olive_at(b, 1.2, lower) and not olive_at(b, 1.2, upper)
    for t in (0.1, 1.1, 2.2):  # outside every upper span
        assert not olive_at(b, t, upper)
    assert not olive_at(a, 0.3, upper)  # no bars without calm spans

    doc = json.loads((single_export / "single_face.events.json").read_text())
    ((start, end),) = doc["calm_spans"]["0"]["upper"]  # single_face: one short calm moment, upper face
    assert not doc["calm_spans"]["0"]["lower"]
    exported = cv2.imread(str(single_export / "single_face.png"))
    assert olive_at(exported, (start + end) / 2, upper) and not olive_at(exported, (start + end) / 2, lower)


def test_plot_time_axes_drawn_early_only_for_the_span_the_data_have(single_export, tmp_path):
    """A span known up front puts the time axes into the fixed layer: the same picture as time axes
    drawn at the end (up to antialiasing where grid and event shading overlap). Data that do not fill
    the span (a truncated video) get time axes of their own: exactly the picture without a span."""
    from avatar_bridge.errors import InputError
    from avatar_bridge.export.plot import AUPlot
    from avatar_bridge.records import EventKind, ExpressionEvent

    times, intensity, events = _plot_inputs(single_export)
    apex = float(times[int(np.nanargmax(intensity[:, AU_INTENSITY.index("AU12")]))])
    events = [*events, ExpressionEvent(EventKind.MICRO, 0, apex - 0.1, apex, apex + 0.1, apex + 0.2,
                                       label="positive")]  # fmt: skip

    def picture(plot: AUPlot, name: str, n: int = len(times)) -> np.ndarray:
        return cv2.imread(str(plot.save(tmp_path / name, times[:n], intensity[:n], "single_face", events)))

    span = (float(times[0]), float(times[-1]))
    plain, early = picture(AUPlot(), "plain.png"), picture(AUPlot(span=span), "early.png")
    differ = np.abs(plain.astype(int) - early.astype(int)).max(axis=2)
    assert differ.max() <= 32 and (differ > 0).mean() < 0.01
    half = len(times) // 2
    cut = picture(AUPlot(span=span), "cut.png", half)
    assert np.array_equal(cut, picture(AUPlot(), "cut_plain.png", half))
    assert not np.array_equal(cut[:, :, :], plain)
    with pytest.raises(InputError, match="end after it starts"):
        AUPlot(span=(2.0, 2.0))


def test_plot_that_cannot_be_written_leaves_no_file(single_export, tmp_path):
    """The PNG is written under a temporary name and renamed: a failed write leaves nothing behind."""
    from avatar_bridge.errors import OutputError
    from avatar_bridge.export.plot import AUPlot

    times, intensity, events = _plot_inputs(single_export)
    with pytest.raises(OutputError, match="cannot write plot"):
        AUPlot().save(tmp_path / "missing" / "p.png", times, intensity, "single_face", events)
    assert list(tmp_path.rglob("*")) == []


def test_plot_of_a_long_video_draws_a_few_points_per_pixel_column(single_export, tmp_path, monkeypatch):
    """Curves with many frames per pixel column keep each column's first, last, lowest and highest
    point and every gap: the same picture as all points (up to antialiasing), one-frame spikes kept."""
    from avatar_bridge.export import plot as plot_module

    times, intensity, events = _plot_inputs(single_export)
    reps = 100  # single_face's curves, end to end: a 4-minute video
    intensity = np.tile(intensity, (reps, 1))
    times = np.arange(len(intensity)) / 30.0
    k = AU_INTENSITY.index("AU12")
    intensity[3001, k], intensity[5000:5003] = 5.0, np.nan  # a one-frame spike, a face lost
    y = intensity[:, k]
    keep = plot_module._per_pixel_column(times, y, (times[0], times[-1]), 1000)
    assert len(keep) <= 4 * 1000 + 1 < len(times) and np.all(np.diff(keep) > 0)
    assert 3001 in keep and 5000 in keep and keep[0] == 0 and keep[-1] == len(times) - 1
    column = np.minimum((times / times[-1] * 1000).astype(int), 999)
    for c in range(1000):  # each column's range of values survives
        everything, kept = y[column == c], y[keep][column[keep] == c]
        assert np.nanmin(kept) == np.nanmin(everything) and np.nanmax(kept) == np.nanmax(everything)

    def picture(name: str) -> np.ndarray:
        plot = plot_module.AUPlot(span=(times[0], times[-1]))
        return cv2.imread(str(plot.save(tmp_path / name, times, intensity, "long", events)))

    fewer = picture("fewer.png")
    monkeypatch.setattr(plot_module, "_per_pixel_column", lambda x, y, xlim, columns: np.arange(len(x)))
    every = picture("every.png")
    differ = np.abs(fewer.astype(int) - every.astype(int)).max(axis=2)
    assert (differ > 64).mean() < 0.02


def test_two_people_get_a_plot_each(samples, tmp_path):
    """Two real faces side by side (single_face twice, the right copy starting later): one CSV with
    both face ids and a picture per face, the second built while the frames were tracked."""
    two = tmp_path / "two.avi"
    frames = []
    cap = cv2.VideoCapture(str(samples / "single_face.mp4"))
    while (ok := cap.read())[0]:
        frames.append(ok[1])
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(two), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (2 * w, h))
    for i in range(24):
        writer.write(np.hstack([frames[i], frames[i + 30]]))
    writer.release()
    out = tmp_path / "o"
    assert main(["export", str(two), "-o", str(out), "-q", "--faces", "2"]) == 0
    df = pd.read_csv(out / "two.csv", skipinitialspace=True)
    ids = sorted(set(df.loc[df["success"] == 1, "face_id"]))
    assert len(ids) == 2
    first, second = cv2.imread(str(out / "two.png")), cv2.imread(str(out / f"two.face{ids[1]}.png"))
    assert first is not None and second is not None and first.shape == second.shape
    assert not np.array_equal(first, second)  # each face's own curves and title


def test_export_runs_opencv_on_one_thread_and_puts_the_setting_back(samples, tmp_path):
    from avatar_bridge.pipeline.export import ExportOptions, export_video

    seen = []
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        export_video(samples / "single_face.mp4", tmp_path, ExportOptions(plot=False),
                     progress=lambda n, total: seen.append(cv2.getNumThreads()))  # fmt: skip
        assert set(seen) == {1} and cv2.getNumThreads() == 2
        meta = json.loads((tmp_path / "single_face.json").read_text())
        assert meta["settings"]["opencv_threads"] == 1
    finally:
        cv2.setNumThreads(before)


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_export_threads_yield_to_mediapipe_and_the_caller_keeps_its_priority(samples, tmp_path):
    """Decoding and analysis run at ExportOptions.nice; the tracking thread and the caller's thread
    keep the caller's priority (Linux per-thread nice values)."""
    import threading

    from avatar_bridge.pipeline.export import ExportOptions, export_video

    me = threading.get_native_id()
    mine = _nice(me)
    for nice, want in ((19, 19), (None, mine)):
        seen: dict[str, set[int]] = {}

        def record(n: int, total: int | None, seen: dict[str, set[int]] = seen) -> None:
            for t in threading.enumerate():
                if t.name.startswith("avatar-bridge-") and t.native_id is not None:
                    seen.setdefault(t.name, set()).add(_nice(t.native_id))
            seen.setdefault("caller", set()).add(_nice(me))

        export_video(samples / "single_face.mp4", tmp_path / str(nice), ExportOptions(plot=False, nice=nice),
                     progress=record)  # fmt: skip
        assert seen["avatar-bridge-analyse"] == {want} and seen["avatar-bridge-decode"] <= {want}
        assert seen["avatar-bridge-track"] == {mine} and seen["caller"] == {mine}
        assert _nice(me) == mine


def test_ctrl_c_stops_the_export_and_leaves_no_files(samples, tmp_path):
    """Ctrl-C reaches the caller's thread while the analysis thread works: the analysis stops at
    the next frame, every thread ends and nothing that looks complete is left."""
    import signal
    import threading

    from avatar_bridge.pipeline.export import ExportOptions, export_video

    calls = []

    def interrupt(n: int, total: int | None) -> None:
        calls.append(n)
        if n == 5:
            os.kill(os.getpid(), signal.SIGINT)

    # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it started,
    # and a job started in the background (a CI runner's, `cmd &`) starts with it ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            export_video(samples / "single_face.mp4", tmp_path / "out", ExportOptions(plot=False),
                         progress=interrupt)  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    assert max(calls) < 72  # stopped before the end
    assert [t.name for t in threading.enumerate() if t.name.startswith("avatar-bridge-")] == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_error_in_the_analysis_thread_reaches_the_caller_and_leaves_no_files(samples, tmp_path):
    import threading

    from avatar_bridge.pipeline.export import ExportOptions, export_video

    def fail(n: int, total: int | None) -> None:
        if n == 5:
            raise RuntimeError("the analysis broke")

    with pytest.raises(RuntimeError, match="the analysis broke"):
        export_video(samples / "single_face.mp4", tmp_path / "out", ExportOptions(plot=False), progress=fail)
    assert [t.name for t in threading.enumerate() if t.name.startswith("avatar-bridge-")] == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
