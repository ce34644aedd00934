"""``avatar-bridge synth --still`` then ``avatar-bridge evaluate synth``: the spotter scored on lab-like
recordings made from a real face, end to end (real MediaPipe, the real export, the files on disk)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from avatar_bridge.capture import open_source
from avatar_bridge.cli import main
from avatar_bridge.export.events_json import read_events
from avatar_bridge.micro.evaluation import interval_iou
from avatar_bridge.micro.synth import load_truth
from avatar_bridge.records import EventKind


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Two held-still recordings of single_face's frame 2 with 4 px micro-expressions and a head
    jitter each, scored by ``evaluate synth``, which exports them into the same folder (the export's
    ``.events.json`` lands beside the ground truth)."""
    folder = tmp_path_factory.mktemp("lab")
    code = main(["synth", "single_face.mp4", "--still", "2", "--seconds", "7", "--amplitude", "4",
                 "--macro", "0", "--variants", "2", "--out", str(folder)])  # fmt: skip
    assert code == 0
    report = folder / "evaluation.json"
    code = main(["evaluate", "synth", str(folder), "--exports", str(folder), "--json", str(report), "-q"])
    assert code == 0
    return folder, json.loads(report.read_text())


def test_synth_still_writes_a_filmed_held_still_recording_and_its_truth(lab):
    folder, _ = lab
    truths = sorted(folder.glob("*.truth.json"))
    assert [t.name for t in truths] == [
        "single_face-still2-s0.truth.json",
        "single_face-still2-s1.truth.json",
    ]
    for path in truths:
        truth = load_truth(path)  # still readable: the export beside it wrote .events.json, not this
        assert truth["still"]["frame"] == 2 and truth["still"]["seconds"] == 7.0
        assert truth["events"] and all(e["amplitude"] == 4.0 for e in truth["events"])
        assert min(e["onset"] for e in truth["events"]) >= 1.5  # the lead-in for a held-still face
        assert [n["kind"] for n in truth["negatives"] if n["kind"] != "blink"] == ["jitter"]
        with open_source(folder / truth["video"]) as src:
            frames = [f.image for f in src]
        assert len(frames) == truth["frame_count"] and frames[0].shape == (800, 800, 3)
        # Filmed: consecutive frames differ (sensor noise, sway), yet show the same still face.
        diff = np.abs(frames[1].astype(int) - frames[0].astype(int))
        assert 0.5 < diff.mean() < 8.0


def test_synth_still_changes_the_light_and_writes_it_as_hard_negatives(tmp_path, capsys):
    """``--light``: a flash at 2 s and a darker room from 4 s, in the video and in the truth."""
    code = main(["synth", "single_face.mp4", "--still", "2", "--seconds", "5", "--events", "0",
                 "--macro", "0", "--jitter", "0", "--light", "2:0.3:0", "--light", "4:-0.25",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    (path,) = tmp_path.glob("*.truth.json")
    truth = load_truth(path)
    lights = [n for n in truth["negatives"] if n["kind"] == "light"]
    assert [(n["onset"], n["offset"], n["change"]) for n in lights] == [(2.0, 2.2, 0.3), (4.0, 4.1, -0.25)]
    with open_source(tmp_path / truth["video"]) as src:
        level = np.array([f.image.mean() for f in src])
    t = np.array(truth["timestamps"])
    before = level[t < 1.9].mean()
    assert level[np.abs(t - 2.1) < 0.02].mean() / before == pytest.approx(1.3, abs=0.05)
    assert level[t > 4.2].mean() / before == pytest.approx(0.75, abs=0.03)
    for bad in (["--light", "2:0.3"], ["--still", "2", "--light", "2"]):
        capsys.readouterr()
        args = ["synth", "single_face.mp4", *bad, "--out", str(tmp_path / "bad")]
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --light") and len(err.splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_evaluate_synth_scores_every_injected_event_against_the_exported_events(lab):
    folder, report = lab
    s = report["summary"]
    truths = {p.name: load_truth(p) for p in sorted(folder.glob("*.truth.json"))}
    n = sum(len(t["events"]) for t in truths.values())
    assert s["tp"] + s["fn"] == n and s["per_amplitude"]["4"]["events"] == n
    assert sum(v["events"] for v in s["per_pattern"].values()) == n
    assert sum(v["found"] for v in s["per_pattern"].values()) == s["tp"]
    assert s["videos"] == 2 and s["minutes"] == pytest.approx(2 * 7 / 60, abs=0.01)
    assert s["tp"] >= n / 2 and s["fp"] <= 2  # 4 px on a face at rest: the spotter finds most
    assert not report["partial"] and report["problems"] == {}
    for name, scored in report["videos"].items():
        truth = truths[name]
        micro = [e for e in read_events(folder / truth["video"].replace(".mkv", ".events.json"))
                 if e.kind == EventKind.MICRO]  # fmt: skip
        for row, g in zip(scored["events"], truth["events"], strict=True):
            best = max(
                (interval_iou((g["onset"], g["offset"]), (e.onset, e.offset)) for e in micro), default=0.0
            )
            assert row["found"] == (best >= 0.5)
            if row["found"]:
                assert row["iou"] == pytest.approx(best)
        assert scored["tp"] + scored["fp"] == len(micro)
    # The labels of the events found, scored as recognition: the same counts as label_ok.
    found = [r for v in report["videos"].values() for r in v["events"] if r["found"]]
    rec = s["recognition"]
    assert rec["n"] == s["tp"] == len(found) and rec["classes"] == ["negative", "positive", "surprise"]
    assert rec["accuracy"] * rec["n"] == pytest.approx(sum(r["label_ok"] for r in found))
    assert sum(map(sum, rec["confusion"])) + sum(rec["unlabelled"].values()) == rec["n"]
    assert cv2.imread(str(folder / "evaluation.recognition.png")) is not None  # its confusion matrix


def test_evaluation_picture_shows_found_missed_and_false_events(lab, tmp_path, has_colour):
    """evaluation.png beside evaluation.json: green bars where injected events were found, red where
    missed, orange for false micro-expressions; the same picture drawn from a result with every
    event missed has no green and no blue."""
    from avatar_bridge.export import spotting_plot as sp
    from avatar_bridge.micro.evaluation import score_injected

    folder, report = lab
    image = cv2.cvtColor(cv2.imread(str(folder / "evaluation.png")), cv2.COLOR_BGR2RGB)
    s = report["summary"]
    assert has_colour(image, sp._FOUND) == (s["tp"] > 0) and has_colour(image, sp._MATCH) == (s["tp"] > 0)
    assert has_colour(image, sp._MISSED) == (s["fn"] > 0) and has_colour(image, sp._FALSE) == (s["fp"] > 0)
    assert has_colour(image, sp._NEGATIVE)  # the head jitters
    truths = {p.name: load_truth(p) for p in folder.glob("*.truth.json")}
    none_found = {name: score_injected(t, []) for name, t in truths.items()}
    path = sp.plot_injected(tmp_path / "none.png", none_found, truths, "nothing spotted")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert has_colour(image, sp._MISSED) and not has_colour(image, sp._FOUND)
    assert not has_colour(image, sp._MATCH) and not has_colour(image, sp._FALSE)


def test_evaluate_spotted_exports_gives_the_same_scores(lab, tmp_path):
    folder, report = lab
    again = tmp_path / "again.json"
    args = [
        "evaluate",
        "synth",
        str(folder),
        "--spotted",
        str(folder),
        "--json",
        str(again),
        "--no-plot",
        "-q",
    ]
    assert main(args) == 0
    assert json.loads(again.read_text())["summary"] == report["summary"]
    assert not again.with_suffix(".png").exists() and not (tmp_path / "again.recognition.png").exists()


def test_evaluate_synth_applies_spotter_settings(lab, tmp_path):
    folder, _ = lab
    deaf = tmp_path / "deaf.json"
    assert main(["evaluate", "synth", str(folder), "--spotter", "z_on=50", "--json", str(deaf), "-q"]) == 0
    doc = json.loads(deaf.read_text())
    assert doc["summary"]["tp"] == 0 and doc["spotter_settings"] == {"z_on": "50"}


def test_evaluate_synth_with_the_learned_classifier(lab, tmp_path, capsys):
    """The same recordings labelled by TP-HA3DNet (the shipped model): the same events are found
    (the classifier only labels them), each with its class probabilities, and the labels are scored."""
    folder, report = lab
    runs = tmp_path / "runs"
    out = tmp_path / "tp.json"
    args = ["--classifier", "tp-ha3dnet", "--exports", str(runs), "--json", str(out), "--no-plot", "-q"]
    assert main(["evaluate", "synth", str(folder), *args]) == 0
    doc = json.loads(out.read_text())
    assert doc["classifier"] == "tp-ha3dnet" and report["classifier"] == "au-rules"
    s, base = doc["summary"], report["summary"]
    assert (s["tp"], s["fp"], s["fn"]) == (base["tp"], base["fp"], base["fn"])
    micro = [e for p in runs.glob("*.events.json") for e in read_events(p) if e.kind is EventKind.MICRO]
    assert micro and all(set(e.label_scores) == {"negative", "positive", "surprise"} for e in micro)
    found = [r for v in doc["videos"].values() for r in v["events"] if r["found"]]
    assert s["per_amplitude"]["4"]["label_ok"] == sum(r["label_ok"] for r in found)
    # A model that is not there stops the command before any video is read, in one line.
    assert main(["evaluate", "synth", str(folder), "--classifier-model", str(tmp_path / "no.pt")]) == 1
    assert "no.pt" in capsys.readouterr().err and not (tmp_path / "evaluation.json").exists()


def test_evaluate_synth_bad_input_is_one_line_and_keeps_what_it_can(lab, tmp_path, capsys):
    folder, report = lab
    assert main(["evaluate", "synth", str(tmp_path)]) == 1
    assert "holds no ground truth (*.truth.json)" in capsys.readouterr().err
    assert main(["evaluate", "synth", str(folder), "--spotted", str(folder / "evaluation.json")]) == 1
    assert "give the folder of avatar-bridge export outputs" in capsys.readouterr().err
    assert main(["evaluate", "casme2", str(tmp_path), "--spotter", "z_on=7"]) == 1
    assert "--exports and --spotter go with --spot" in capsys.readouterr().err
    # One good recording (its export kept), one whose video is gone, one unreadable truth.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for suffix in (".mkv", ".truth.json", ".events.json"):
        shutil.copy(folder / f"single_face-still2-s0{suffix}", mixed / f"single_face-still2-s0{suffix}")
    shutil.copy(folder / "single_face-still2-s1.truth.json", mixed / "single_face-still2-s1.truth.json")
    (mixed / "broken.truth.json").write_text("{not json")
    out = tmp_path / "mixed.json"
    assert main(["evaluate", "synth", str(mixed), "--json", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    assert doc["partial"] and set(doc["problems"]) == {
        "broken.truth.json",
        "single_face-still2-s1.truth.json",
    }
    assert "single_face-still2-s1.mkv is missing" in doc["problems"]["single_face-still2-s1.truth.json"]
    assert (
        doc["videos"]["single_face-still2-s0.truth.json"]
        == report["videos"]["single_face-still2-s0.truth.json"]
    )


def test_export_never_overwrites_a_file_that_is_not_its_own(lab, tmp_path, capsys):
    """Ground truth that an older synth wrote as NAME.events.json, beside NAME.mkv: exporting there
    stops before any work, with the reason, and the file is as it was."""
    folder, _ = lab
    shutil.copy(folder / "single_face-still2-s0.mkv", tmp_path / "old.mkv")
    old = tmp_path / "old.events.json"
    old.write_text(json.dumps({"format": "avatar-bridge-synth/1", "events": []}))
    before = old.read_bytes()
    assert main(["export", str(tmp_path / "old.mkv"), "-o", str(tmp_path), "-q"]) == 1
    assert "is not an avatar-bridge events file (format 'avatar-bridge-synth/1')" in capsys.readouterr().err
    assert old.read_bytes() == before and not (tmp_path / "old.csv").exists()
