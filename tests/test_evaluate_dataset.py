"""``avatar-bridge evaluate DATASET ROOT --spot``: the spotter run over a dataset's long videos and
scored as MEGC scores CAS(ME)^2 (micro and macro apart, and overall), end to end.

No licensed dataset is here, so one is made in CAS(ME)^2's layout from a real face: a held-still
recording of single_face.mp4 with injected micro-expressions and a macro-expression
(``avatar-bridge synth``), written as CAS(ME)^2 writes its frames (``img1.jpg`` ..., unpadded, so
frame order matters), with a label sheet whose rows are the generator's ground truth."""

from __future__ import annotations

import json
import shutil

import cv2
import openpyxl
import pytest

from avatar_bridge.capture import open_source
from avatar_bridge.cli import main
from avatar_bridge.export.events_json import read_events
from avatar_bridge.micro.evaluation import frames_to_interval, match_intervals
from avatar_bridge.micro.synth import load_truth
from avatar_bridge.records import EventKind

VIDEO = "s15/15_0101disgustingteeth"


def _casme_sq(root, truth, video) -> list[list]:
    """CAS(ME)^2's layout and sheet (frames numbered from 1) for one generated recording."""
    folder = root / "rawpic" / VIDEO
    folder.mkdir(parents=True)
    with open_source(video) as src:
        for f in src:
            bgr = cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(folder / f"img{f.index + 1}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    rows = []
    expressions = truth["events"] + [n for n in truth["negatives"] if n["kind"] == "macro"]
    for k, e in enumerate(expressions):
        onset, offset = e["frames"][0] + 1, e["frames"][-1] + 1
        aus = "+".join(a.removeprefix("AU").lstrip("0") for a in e["aus"])
        rows.append([1, f"disgust1_{k + 1}", onset, round(e["apex"] * truth["fps"]) + 1, offset, aus,
                     e["label"], f"{e['kind']}-expression", e["emotion"]])  # fmt: skip
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    sheets = {"code": rows, "naming rule1": [[15, "s15", 1]], "naming rule2": [["0101", "disgust1"]]}
    for title, sheet_rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in sheet_rows:
            ws.append(row)
    wb.save(root / "CAS(ME)^2code_final.xlsx")
    return rows


@pytest.fixture(scope="module")
def casme(tmp_path_factory):
    gen = tmp_path_factory.mktemp("gen")
    small = ["--closeup", "480", "--face-width", "384"]
    code = main(["synth", "single_face.mp4", "--still", "2", "--seconds", "10", "--amplitude", "4", "--macro",
                 "1", "--jitter", "0", *small, "-o", str(gen)])  # fmt: skip
    assert code == 0
    truth_path = next(gen.glob("*.truth.json"))
    truth = load_truth(truth_path)
    root = tmp_path_factory.mktemp("casme_sq")
    rows = _casme_sq(root, truth, gen / truth["video"])
    runs = tmp_path_factory.mktemp("runs")
    report = runs / "evaluation.json"
    code = main(
        ["evaluate", "casme_sq", str(root), "--spot", "--exports", str(runs), "--json", str(report), "-q"]
    )
    assert code == 0
    return root, rows, runs, json.loads(report.read_text()), truth


def test_spotting_scores_micro_and_macro_apart_on_the_sheets_frame_numbers(casme):
    root, rows, runs, report, truth = casme
    kinds = {k: [r for r in rows if r[7] == f"{k}-expression"] for k in ("micro", "macro")}
    assert len(kinds["micro"]) >= 2 and len(kinds["macro"]) == 1
    video = report["spotting_videos"][VIDEO]
    assert video["frames"] == truth["frame_count"]
    assert video["micro_truth"] == len(kinds["micro"]) and video["macro_truth"] == 1
    # The same scores from the kept export, by hand: frame i of the folder is at i / fps and is
    # the file img{i + 1}.jpg.
    events = read_events(runs / VIDEO / "15_0101disgustingteeth.events.json")
    fps = truth["fps"]
    for kind in ("micro", "macro"):
        spotted = [frames_to_interval(round(e.onset * fps) + 1, round(e.offset * fps) + 1)
                   for e in events if e.kind == EventKind(kind)]  # fmt: skip
        sheet = [frames_to_interval(r[2], r[4]) for r in kinds[kind]]
        tp = len(match_intervals(sheet, spotted))
        scores = report["spotting"][kind]
        assert (scores["tp"], scores["fp"], scores["fn"]) == (tp, len(spotted) - tp, len(sheet) - tp)
        assert video[f"{kind}_spotted"] == len(spotted)
    overall = report["spotting"]["overall"]
    assert overall["tp"] == report["spotting"]["micro"]["tp"] + report["spotting"]["macro"]["tp"]
    # 4 px on a face at rest, and a 2 s frown: the spotter finds most of them, each as its kind.
    assert report["spotting"]["micro"]["tp"] >= len(kinds["micro"]) - 1
    assert report["spotting"]["macro"]["tp"] == 1
    assert report["partial"] is False and report["spotting_problems"] == {}


def test_spotting_picture_agrees_with_the_scores(casme, has_colour):
    """evaluation.png beside the JSON: true micro-expressions green when found (red when missed),
    the spotter's micro events blue when matched (orange when false), its macro events purple, the
    true macro-expression grey behind; the picture's matching is the scores' own."""
    from avatar_bridge.export import spotting_plot as sp

    _, _, runs, report, _ = casme
    image = cv2.cvtColor(cv2.imread(str(runs / "evaluation.png")), cv2.COLOR_BGR2RGB)
    tp, fp, fn = (report["spotting"]["micro"][k] > 0 for k in ("tp", "fp", "fn"))
    assert has_colour(image, sp._FOUND) == tp and has_colour(image, sp._MATCH) == tp
    assert has_colour(image, sp._MISSED) == fn and has_colour(image, sp._FALSE) == fp
    assert has_colour(image, sp._NEGATIVE) and has_colour(image, sp._MACRO)


def test_spotted_exports_are_scored_again_without_spotting(casme, tmp_path):
    root, _, runs, report, _ = casme
    again = tmp_path / "again.json"
    args = ["--spotted", str(runs), "--json", str(again), "--no-plot", "-q"]
    assert main(["evaluate", "casme_sq", str(root), *args]) == 0
    assert not again.with_suffix(".png").exists()
    doc = json.loads(again.read_text())
    assert doc["spotting"] == report["spotting"] and doc["spotted"] == str(runs)
    json.loads(again.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))


def test_a_rerun_reuses_complete_exports_made_with_the_same_settings(casme, tmp_path):
    root, _, runs, report, _ = casme
    events = runs / VIDEO / "15_0101disgustingteeth.events.json"
    made = events.stat().st_mtime_ns
    again = tmp_path / "again.json"
    args = ["--spot", "--exports", str(runs), "--json", str(again), "--no-plot", "-q"]
    assert main(["evaluate", "casme_sq", str(root), *args]) == 0
    assert events.stat().st_mtime_ns == made  # resumed: nothing exported again
    assert json.loads(again.read_text())["spotting"] == report["spotting"]
    # Other settings: exported again, into the same folder.
    deaf = tmp_path / "deaf"
    shutil.copytree(runs, deaf)
    args = ["--spot", "--exports", str(deaf), "--spotter", "z_on=50", "--json", str(again), "--no-plot", "-q"]
    assert main(["evaluate", "casme_sq", str(root), *args]) == 0
    doc = json.loads(again.read_text())
    assert doc["spotting"]["micro"]["tp"] == 0 and doc["spotter_settings"] == {"z_on": "50"}


def test_a_video_without_frames_is_listed_and_the_rest_scored(casme, tmp_path, capsys):
    root, rows, runs, _, _ = casme
    partial = tmp_path / "partial"
    shutil.copytree(root, partial)
    wb = openpyxl.load_workbook(partial / "CAS(ME)^2code_final.xlsx")
    wb["code"].append([2, "anger1_1", 10, 12, 20, "4", "negative", "micro-expression", "anger"])
    wb["naming rule1"].append([16, "s16", 2])
    wb["naming rule2"].append(["0401", "anger1"])
    wb.save(partial / "CAS(ME)^2code_final.xlsx")
    out = tmp_path / "partial.json"
    assert main(["evaluate", "casme_sq", str(partial), "--spotted", str(runs), "--json", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    assert doc["partial"] is True
    assert list(doc["spotting_problems"]) == ["s16/0401"]
    assert "not spotted" in capsys.readouterr().err
    assert list(doc["spotting_videos"]) == [VIDEO]
    # An image without a frame number would shift every frame after it: the video is not scored.
    shutil.copy(partial / "rawpic" / VIDEO / "img1.jpg", partial / "rawpic" / VIDEO / "cover.jpg")
    assert main(["evaluate", "casme_sq", str(partial), "--spotted", str(runs), "--json", str(out), "-q"]) == 1
    assert "have no frame number" in capsys.readouterr().err


def test_bad_spotting_options_are_one_line(casme, tmp_path, capsys):
    root, _, runs, _, _ = casme
    assert main(["evaluate", "casme_sq", str(root), "--spot", "--spotted", str(runs)]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["evaluate", "casme_sq", str(root), "--spotter", "z_on=7"]) == 1
    assert "go with --spot" in capsys.readouterr().err
    assert main(["evaluate", "synth", str(tmp_path), "--spot"]) == 1
    assert "--spot is for datasets" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(
        ["evaluate", "casme_sq", str(root), "--spotted", str(empty), "--json", str(tmp_path / "x.json")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "no video of the dataset could be spotted" in err and "not spotted" in err


@pytest.fixture(scope="module")
def casme2(casme, tmp_path_factory):
    """The same micro-expressions in CASME II's layout: one clip folder per expression (its frames
    from 3 before the onset to 3 after the offset, numbered as in the long video), one sheet row each,
    given to two subjects in turn."""
    long_root, rows, _, _, _ = casme
    root = tmp_path_factory.mktemp("casme2")
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
              "Estimated Emotion"]  # fmt: skip
    sheet = []
    for k, r in enumerate(r for r in rows if r[7] == "micro-expression"):
        subject = 1 + k % 2  # two subjects, for leave-one-subject-out
        clip = root / "CASME2_RAW_selected" / f"sub0{subject}" / f"EP01_{k}"
        clip.mkdir(parents=True)
        for n in range(r[2] - 3, r[4] + 4):
            shutil.copy(long_root / "rawpic" / VIDEO / f"img{n}.jpg", clip / f"img{n}.jpg")
        sheet.append([subject, f"EP01_{k}", r[2], r[3], r[4], r[5], r[8]])
    wb = openpyxl.Workbook()
    for row in [header, *sheet]:
        wb.active.append(row)
    wb.save(root / "CASME2-coding-20140508.xlsx")
    return root, sheet


def _recognise(root, out, *more: str) -> dict:
    args = ["--classifier", "tp-ha3dnet", "--json", str(out), "-q", *more]
    assert main(["evaluate", "casme2", str(root), *args]) == 0
    return json.loads(out.read_text())


def test_the_learned_classifier_recognises_a_datasets_clips(casme2, tmp_path):
    """--classifier tp-ha3dnet: the shipped model labels every clip, tracked and cut onset to offset
    as it was trained; 4 px expressions of a face it was trained on are mostly recognised."""
    from avatar_bridge.micro.datasets import three_class

    root, sheet = casme2
    doc = _recognise(root, tmp_path / "rec.json")
    rec = doc["recognition_tp_ha3dnet"]
    assert rec["n"] == len(sheet) and rec["problems"] == [] and doc["partial"] is False
    assert rec["model"].endswith("tp_ha3dnet.pt") and set(rec["chance"]) == {"majority", "uniform_random"}
    labels = [three_class(row[6]) for row in sheet]
    assert [c["label"] for c in rec["clips"]] == labels
    assert [c["onset"] for c in rec["clips"]] == [row[2] for row in sheet]
    right = [c["predicted"] == label for c, label in zip(rec["clips"], labels, strict=True)]
    assert rec["accuracy"] == pytest.approx(sum(right) / len(right)) and rec["accuracy"] >= 2 / 3
    # The confusion matrices beside the JSON: the AU rules' (on the sheet's codes) and the model's.
    picture = cv2.imread(str(tmp_path / "rec.recognition.png"))
    assert picture is not None and picture.shape[1] > 1.8 * picture.shape[0]  # two panels side by side
    _recognise(root, tmp_path / "quiet.json", "--no-plot")
    assert not (tmp_path / "quiet.recognition.png").exists()
    # Without frames the clip cannot be cut: listed, the rest scored, the result partial.
    fewer = tmp_path / "fewer"
    shutil.copytree(root, fewer)
    shutil.rmtree(fewer / "CASME2_RAW_selected" / "sub01" / "EP01_0")
    doc = _recognise(fewer, tmp_path / "fewer.json")
    assert doc["recognition_tp_ha3dnet"]["n"] == len(sheet) - 1 and doc["partial"] is True


def test_a_dataset_without_emotions_is_still_spotted_with_the_learned_classifier(casme, tmp_path, capsys):
    """CAS(ME)^2 rows whose emotion is not one of the 3 classes ('others'): nothing to recognise,
    said in one line, and the spotting (labelled by TP-HA3DNet) still runs."""
    root, _, runs, report, _ = casme
    others = tmp_path / "others"
    shutil.copytree(root, others)
    wb = openpyxl.load_workbook(others / "CAS(ME)^2code_final.xlsx")
    for row in wb["code"].iter_rows(min_row=1):
        row[6].value = "others"
    wb.save(others / "CAS(ME)^2code_final.xlsx")
    out = tmp_path / "others.json"
    args = ["--spotted", str(runs), "--classifier", "tp-ha3dnet", "--json", str(out), "--no-plot", "-q"]
    assert main(["evaluate", "casme_sq", str(others), *args]) == 0
    assert "no recognition by TP-HA3DNet" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert "skipped" in doc["recognition_tp_ha3dnet"] and doc["spotting"] == report["spotting"]


def test_train_on_a_dataset_leave_one_subject_out(casme2, tmp_path, capsys):
    from avatar_bridge.micro.classify.tp_ha3dnet import load_exported
    from avatar_bridge.resources import data_dir

    root, sheet = casme2
    model = tmp_path / "mine.pt"
    args = ["--dataset", "casme2", "--root", str(root), "--epochs", "1", "--out", str(model), "-q"]
    assert main(["train", "tp-ha3dnet", *args]) == 0
    report = json.loads(model.with_suffix(".json").read_text())
    assert report["clips"] == len(sheet) and report["subjects"] == ["sub01", "sub02"]
    assert report["loso"]["n"] == len(sheet) and report["loso"]["folds"] == 2
    picture = cv2.imread(str(model.with_suffix(".png")))  # the LOSO confusion matrix, one panel
    assert picture is not None and picture.shape[1] < 1.5 * picture.shape[0]
    loaded = load_exported(model)
    assert loaded.meta["tier"] == "dataset" and loaded.meta["dataset"] == "casme2"
    assert "licensed" in loaded.meta["trained_on"]
    # Bad input, each in one line, before any clip is cut.
    assert main(["train", "tp-ha3dnet", "--dataset", "casme2"]) == 1
    assert "--dataset and --root go together" in capsys.readouterr().err
    args = ["--dataset", "casme2", "--root", str(root), "--out", str(data_dir("models") / "x.pt")]
    assert main(["train", "tp-ha3dnet", *args]) == 1
    assert "does not go into the models folder" in capsys.readouterr().err
    one = tmp_path / "one"
    shutil.copytree(root, one)
    shutil.rmtree(one / "CASME2_RAW_selected" / "sub02")
    assert main(["train", "tp-ha3dnet", "--dataset", "casme2", "--root", str(one), "--out", str(model)]) == 1
    assert "at least 2 subjects" in capsys.readouterr().err
