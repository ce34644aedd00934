"""Batch export on real videos with real MediaPipe: inputs, manifest, resume, processes and Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar_bridge.batch import (
    MANIFEST_NAME,
    BatchOptions,
    Status,
    expand_inputs,
    incomplete_reason,
    is_single_input,
    run_batch,
)
from avatar_bridge.cli import main
from avatar_bridge.errors import InputError
from avatar_bridge.export import read_openface_csv
from avatar_bridge.pipeline.export import ExportOptions, _jsonable

EXE = Path(sys.executable).parent / "avatar-bridge"


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _manifest(outdir: Path) -> dict[str, dict]:
    data = json.loads((outdir / MANIFEST_NAME).read_text())
    return {Path(e["input"]).name: e for e in data["videos"]}


def _visible(outdir: Path) -> list[str]:
    return sorted(p.name for p in outdir.iterdir())


@pytest.fixture()
def videos(samples, tmp_path) -> Path:
    """A folder with two short real videos (copies, so tests may add files beside them)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("single_face.mp4", "no_face.mp4"):
        shutil.copy(samples / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def exported(samples, tmp_path_factory):
    """One in-process batch of two real videos, shared by the read-only checks."""
    out = tmp_path_factory.mktemp("batch")
    videos = [samples / "single_face.mp4", samples / "no_face.mp4"]
    options = ExportOptions(plot=True)
    report = run_batch(videos, out, options)
    return out, report, options


# --- inputs -------------------------------------------------------------------------------------


def test_inputs_files_folders_globs_and_list_files(videos, tmp_path):
    (videos / "notes.md").write_text("not a video")
    sub = videos / "more"
    sub.mkdir()
    shutil.copy(videos / "single_face.mp4", sub / "again.mp4")
    names = lambda paths: [p.name for p in paths]  # noqa: E731
    assert names(expand_inputs([str(videos)])) == ["no_face.mp4", "single_face.mp4"]  # top level only
    assert names(expand_inputs([str(videos / "**" / "*.mp4")])) == [
        "again.mp4",
        "no_face.mp4",
        "single_face.mp4",
    ]
    listing = tmp_path / "todo.txt"
    listing.write_text(
        "# interviews\nvideos/single_face.mp4\n\n  videos/more/again.mp4  \nvideos/single_face.mp4\n"
    )
    assert names(expand_inputs([str(listing)])) == ["single_face.mp4", "again.mp4"]  # relative, deduplicated
    missing = tmp_path / "later.mp4"
    assert expand_inputs([str(missing)]) == [missing]  # kept: it fails in the summary, not up front
    assert is_single_input([str(videos / "single_face.mp4")]) and not is_single_input([str(videos)])
    assert not is_single_input([str(listing)]) and not is_single_input([str(videos / "*.mp4")])


def test_image_folder_is_one_input_and_single(samples, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cap = cv2.VideoCapture(str(samples / "single_face.mp4"))
    for i in range(3):
        ok, bgr = cap.read()
        assert ok
        cv2.imwrite(str(frames / f"{i:03d}.png"), bgr)
    cap.release()
    assert is_single_input([str(frames)])
    assert expand_inputs([str(frames)]) == [frames]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (lambda d, t: [str(d / "single_face.mp4"), str(t / "x" / "single_face.mp4")], "would both write"),
        (lambda d, t: [str(d / "*.avi")], "no video matches"),
        (
            lambda d, t: [str((t / "empty.txt").write_text("# nothing\n") and t / "empty.txt")],
            "names no video",
        ),
        (lambda d, t: [str((t / "e").mkdir() or t / "e")], "holds no videos"),
        (lambda d, t: [], "no input given"),
    ],
)
def test_bad_inputs_are_one_clear_error(videos, tmp_path, specs, message):
    (tmp_path / "x").mkdir(exist_ok=True)
    shutil.copy(videos / "single_face.mp4", tmp_path / "x" / "single_face.mp4")
    with pytest.raises(InputError, match=message):
        expand_inputs(specs(videos, tmp_path))


# --- a batch and its manifest -------------------------------------------------------------------


def test_batch_writes_outputs_and_manifest(exported):
    out, report, _ = exported
    assert report.counts == {"pending": 0, "done": 2, "skipped": 0, "failed": 0}
    kinds = (".blendshapes.csv", ".csv", ".events.json", ".json", ".landmarks.npz", ".png")
    files = [f"{stem}{k}" for stem in ("no_face", "single_face") for k in kinds]
    assert _visible(out) == [MANIFEST_NAME, *files]
    entries = _manifest(out)
    single, empty = entries["single_face.mp4"], entries["no_face.mp4"]
    assert single["status"] == "done" and single["frames"] == 72 and single["frames_with_face"] >= 71
    assert single["faces"] == {"0": single["frames_with_face"]}
    assert (
        empty["status"] == "done"
        and empty["frames_with_face"] == 0
        and "no face found" in empty["warnings"][0]
    )
    assert set(single["outputs"]) == {"single_face.csv", "single_face.blendshapes.csv", "single_face.json",
                                      "single_face.landmarks.npz", "single_face.png",
                                      "single_face.events.json"}  # fmt: skip
    assert len(read_openface_csv(out / "single_face.csv")["frame"]) == 72


def test_complete_outputs_are_recognised(exported, samples):
    out, _, options = exported
    settings = _jsonable(options)
    assert incomplete_reason(out, samples / "single_face.mp4", "single_face", settings) is None
    other = ExportOptions(plot=True, landmarks=False)
    assert (
        incomplete_reason(out, samples / "single_face.mp4", "single_face", _jsonable(other))
        == "settings changed"
    )
    assert "made from" in incomplete_reason(out, samples / "no_face.mp4", "single_face", settings)


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: (d / "single_face.csv").unlink(), "single_face.csv is missing"),
        (lambda d: _truncate(d / "single_face.csv"), "invalid output"),
        (lambda d: _truncate(d / "single_face.landmarks.npz"), "invalid output"),
        (lambda d: _truncate(d / "single_face.png"), "invalid output"),
        (lambda d: _truncate(d / "single_face.json"), "unreadable"),
        (lambda d: (d / "single_face.json").write_text('{"outputs": 3}'), "unreadable"),
        (lambda d: (d / "single_face.json").unlink(), "not exported yet"),
    ],
)
def test_damaged_outputs_are_not_reused(exported, samples, tmp_path, damage, reason):
    out, _, options = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    damage(copy)
    assert reason in incomplete_reason(copy, samples / "single_face.mp4", "single_face", _jsonable(options))


def test_cli_batch_reports_failures_and_rerun_skips_complete_videos(videos, tmp_path, capsys):
    out = tmp_path / "out"
    broken = videos / "broken.mp4"
    broken.write_text("not a video")
    assert main(["export", str(videos), "-o", str(out), "-q", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 video(s) failed" in _one_line_error(err) and "failed: broken.mp4: cannot open" in err
    entries = _manifest(out)
    assert [entries[n]["status"] for n in ("broken.mp4", "no_face.mp4", "single_face.mp4")] == [
        "failed", "done", "done"]  # fmt: skip
    assert "cannot open" in entries["broken.mp4"]["reason"]
    assert not [n for n in _visible(out) if n.startswith("broken")]  # a failed video leaves nothing
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != MANIFEST_NAME}
    broken.unlink()
    leftover = out / ".single_face.csv.0badc0de.part"  # what a killed run leaves behind
    leftover.write_text("half")
    assert main(["export", str(videos), "-o", str(out), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "2 skipped (already complete)" in captured.out and "batch export" in captured.out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != MANIFEST_NAME} == before
    assert not leftover.exists()
    entries = _manifest(out)
    assert entries["single_face.mp4"]["status"] == "skipped" and entries["single_face.mp4"]["frames"] == 72
    assert entries["broken.mp4"]["status"] == "failed"  # earlier batches' entries are kept


def test_rerun_redoes_damaged_and_changed_videos(videos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(videos), "-o", str(out), "-q", "--no-plot"]) == 0
    _truncate(out / "no_face.csv")
    report = run_batch(sorted(videos.iterdir()), out, ExportOptions(plot=False))
    assert [r.status for r in report.results] == [Status.DONE, Status.SKIPPED]  # no_face redone
    assert (
        incomplete_reason(out, videos / "no_face.mp4", "no_face", _jsonable(ExportOptions(plot=False)))
        is None
    )
    assert main(["export", str(videos), "-o", str(out), "-q", "--no-plot", "--stride", "2"]) == 0
    assert json.loads((out / "single_face.json").read_text())["frame_count"] == 36
    assert main(["export", str(videos), "-o", str(out), "-q", "--no-plot", "--stride", "2", "--force"]) == 0
    assert {e["status"] for e in _manifest(out).values()} == {"done"}


def test_killed_batch_leaves_no_complete_looking_file_and_resumes(samples, tmp_path):
    listing = tmp_path / "todo.txt"
    listing.write_text(f"{samples / 'single_face.mp4'}\n{samples / 'WolfgangLanger_Pexels.mp4'}\n")
    out = tmp_path / "out"
    cmd = [str(EXE), "export", str(listing), "-o", str(out), "-q", "--no-plot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".WolfgangLanger_Pexels.csv.*.part")) and proc.poll() is None:
            assert time.monotonic() < deadline, "the batch never started the second video"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # no clean-up at all: the worst case
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    assert (out / "single_face.json").exists()
    assert not [n for n in _visible(out) if n.startswith("Wolfgang")]  # only hidden temporaries
    assert list(out.glob(".Wolfgang*.part*"))
    report = run_batch(expand_inputs([str(listing)]), out, ExportOptions(plot=False))
    assert [r.status for r in report.results] == [Status.SKIPPED, Status.DONE]
    assert report.results[1].frames == 472
    assert not [p for p in out.iterdir() if p.name.endswith((".part", ".raw"))]


def test_interrupted_batch_stops_cleanly(samples, tmp_path):
    out = tmp_path / "out"
    cmd = [str(EXE), "export", str(samples / "WolfgangLanger_Pexels.mp4"), str(samples / "single_face.mp4"),
           "-o", str(out), "-q", "--no-plot", "--jobs", "2"]  # fmt: skip
    # A shell's background jobs inherit SIGINT ignored; a terminal's Ctrl-C does not, so restore it.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=restore)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".WolfgangLanger_Pexels.csv.*.part")) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not [p for p in out.iterdir() if ".part" in p.name]  # temporaries removed
    assert not [n for n in _visible(out) if n.startswith("Wolfgang")]
    statuses = {e["status"] for n, e in _manifest(out).items() if n.startswith("Wolfgang")}
    assert statuses == {"pending"}


# --- processes and Ray ---------------------------------------------------------------------------


def test_two_processes_give_the_same_curves_as_one(exported, samples, tmp_path, capsys):
    out_ref, _, _ = exported
    out = tmp_path / "out"
    code = main(["export", str(samples / "single_face.mp4"), str(samples / "no_face.mp4"),
                 "-o", str(out), "--jobs", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 done" in captured.out
    for name in ("single_face.csv", "no_face.csv", "single_face.blendshapes.csv"):
        ours, ref = read_openface_csv(out / name), read_openface_csv(out_ref / name)
        for col in ours:
            np.testing.assert_allclose(ours[col], ref[col], atol=0.011, err_msg=f"{name}:{col}")
    assert {e["status"] for e in _manifest(out).values()} == {"done"}


def test_ray_local_mode(exported, samples, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional [cluster] extra")
    out_ref, _, _ = exported
    out = tmp_path / "out"
    listing = tmp_path / "todo.txt"
    listing.write_text(f"{samples / 'single_face.mp4'}\n{samples / 'no_face.mp4'}\n{tmp_path / 'gone.mp4'}\n")
    proc = subprocess.run([str(EXE), "export", str(listing), "-o", str(out), "--ray", "local", "--jobs", "2",
                           "--no-plot"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1
    assert "1 of 3 video(s) failed" in _one_line_error(proc.stderr)
    entries = _manifest(out)
    assert entries["gone.mp4"]["status"] == "failed" and "video not found" in entries["gone.mp4"]["reason"]
    assert entries["single_face.mp4"]["status"] == "done" and entries["single_face.mp4"]["frames"] == 72
    ours, ref = read_openface_csv(out / "single_face.csv"), read_openface_csv(out_ref / "single_face.csv")
    np.testing.assert_allclose(ours["AU12_r"], ref["AU12_r"], atol=0.011)
    assert np.load(out / "single_face.landmarks.npz")["landmarks"].shape == (72, 478, 3)


def test_batch_options_are_checked():
    with pytest.raises(InputError, match="jobs"):
        BatchOptions(jobs=0)
