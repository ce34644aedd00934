"""Dataset loaders on fake folders with the real layouts and real sheet columns (synthetic images),
and on missing or malformed label sheets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from avatar_bridge.errors import InputError
from avatar_bridge.micro.datasets import load_dataset
from avatar_bridge.micro.datasets.base import read_sheet


def frames(folder: Path, numbers, name=lambda n: f"img{n}.jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for n in numbers:
        cv2.imwrite(str(folder / name(n)), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


CASME2_HEADER = [
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
]


def test_casme2_layout(tmp_path):
    frames(tmp_path / "CASME2_RAW_selected/sub01/EP02_01f", range(46, 60))
    frames(tmp_path / "CASME2_RAW_selected/sub02/EP09_01", range(1, 20))
    workbook(tmp_path / "CASME2-coding-20140508.xlsx", {"Sheet1": [
        CASME2_HEADER,
        [1, "EP02_01f", 46, 53, 59, "12", "happiness"],
        [2, "EP09_01", 3, "/", 15, "4+L10", "repression"],
        [2, "EP09_02", 1, 5, 9, "1+2", "surprise"],  # folder absent
    ]})  # fmt: skip
    ds = load_dataset("casme2", tmp_path)
    assert [s.subject for s in ds.samples] == ["sub01", "sub02", "sub02"]
    a, b, c = ds.samples
    assert (a.onset, a.apex, a.offset, a.label, a.fps) == (46, 53, 59, "positive", 200.0)
    assert len(a.frames()) == 14 and a.frames()[0].name == "img46.jpg"
    assert b.apex == 9 and "midpoint" in b.notes[0] and b.label == "negative" and b.aus == "4+L10"
    assert c.folder is None and ds.partial and "sub02/EP09_02" in ds.problems[0]
    with pytest.raises(InputError, match="clip folder not found"):
        c.frames()
    assert ds.summary()["with_frames"] == 2


def test_samm_header_below_notes_block(tmp_path):
    frames(tmp_path / "SAMM/006/006_1_2", range(5562, 5570), lambda n: f"006_{n:05d}.jpg")
    header = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Type",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    ]
    notes = [["SAMM micro-movement FACS codes"], [None], ["Coded by three coders"]] + [[None]] * 10
    workbook(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", {"FACS_Movement_Only": notes + [
        header,
        [6, "006_1_2", 1, 5562, 5566, 5569, 8, "Micro - 1/2", "R12", "Happiness", 1, ""],
        [6, "006_1_3", 1, "x", 5566, 5569, 8, "Micro - 1/2", "4", "Anger", 3, ""],
        [7, "007_3_1", 3, 100, -1, 140, 41, "Micro - 1/2", "14", "Contempt", 7, ""],
    ]})  # fmt: skip
    ds = load_dataset("samm", tmp_path)
    assert len(ds.samples) == 2
    s, t = ds.samples
    assert (s.subject, s.objective_class, s.label, len(s.frames())) == ("006", "I", "positive", 8)
    assert t.apex == 120 and t.label == "negative" and t.objective_class == "VII"
    assert any("row 16" in p and "Onset Frame 'x'" in p for p in ds.problems)


def test_samm_long_videos_micro_and_macro(tmp_path):
    frames(tmp_path / "SAMM_longvideos/006_1", range(1, 40), lambda n: f"006_1_{n:04d}.jpg")
    header = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
              "Action Units", "Notes"]  # fmt: skip
    notes = [["SAMM long videos"], [None], ["Micro and macro movements"]] + [[None]] * 6
    workbook(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": notes + [
        header,
        [6, "006_1_1", 1, 5, 8, 12.0, 8, "Micro - 1/2", "R12", ""],
        [6, "006_1_2", 1, 15, 20, 0, 0, "Macro", "4+7", "offset not coded"],
        [6, "006_1_3", 1, 0, 30, 38, 9, "Macro", "12", "very long"],
        [7, "007_3_1", 3, 100, 120, 140, 41, "Micro - 1/2", "14", ""],
    ]})  # fmt: skip
    ds = load_dataset("SAMM-LV", tmp_path)
    kinds = [(s.video, s.kind, s.onset, s.offset, s.fps) for s in ds.samples]
    assert kinds == [("006/006_1", "micro", 5, 12, 200.0), ("006/006_1", "macro", 15, 25, 200.0),
                     ("007/007_3", "micro", 100, 140, 200.0)]  # fmt: skip
    assert len(ds.samples[0].frames()) == 8 and ds.samples[2].folder is None
    assert "offset not annotated" in ds.samples[1].notes[0]
    assert any("row 13" in p and "Onset 0" in p for p in ds.problems)
    assert any("007/007_3 not found" in p for p in ds.problems)


def test_smic_labels_from_folders(tmp_path):
    hs = tmp_path / "SMIC_all_raw/HS"
    frames(hs / "s1/micro/negative/s1_ne_01", range(106273, 106290), lambda n: f"image{n}.bmp")
    frames(hs / "s1/micro/surprise/s1_sur_01", range(10, 25), lambda n: f"image{n:06d}.bmp")
    frames(hs / "s2/micro/positive/s2_po_01", range(1, 9), lambda n: f"image{n:06d}.bmp")
    (hs / "s2/micro/positive/s2_po_02").mkdir(parents=True)  # empty clip
    ds = load_dataset("smic", tmp_path)
    assert [(s.subject, s.label) for s in ds.samples] == [
        ("s1", "negative"),
        ("s1", "surprise"),
        ("s2", "positive"),
    ]
    assert (ds.samples[0].onset, ds.samples[0].offset) == (106273, 106289)
    assert ds.partial and "no image frames" in ds.problems[0]


def test_casme_sq_long_videos_with_naming_rules(tmp_path):
    frames(tmp_path / "rawpic/s15/15_0101disgustingteeth", range(1, 40))
    workbook(tmp_path / "CAS(ME)^2code_final.xlsx", {
        "CASFEcode_final": [
            [1, "disgust1_1", 5, 8, 12, "4+10", "negative", "micro-expression", "disgust"],
            [1, "disgust1_2", 15, 20, 0, "4", "negative", "macro-expression", "disgust"],
            [1, "disgust1_3", 30, 31, "abc", "4", "negative", "micro-expression", "disgust"],
            [2, "anger1_1", 5, 8, 12, "4", "negative", "micro-expression", "anger"],
        ],
        "naming rule1": [[15, "s15", 1], [16, "s16", 2]],
        "naming rule2": [["0101", "disgust1"], ["0401", "anger1"]],
    })  # fmt: skip
    ds = load_dataset("CAS(ME)^2", tmp_path)
    kinds = [(s.subject, s.kind, s.offset) for s in ds.samples]
    assert kinds == [("s15", "micro", 12), ("s15", "macro", 25), ("s16", "micro", 12)]
    assert ds.samples[0].video == "s15/15_0101disgustingteeth"
    assert len(ds.samples[0].frames()) == 8
    assert "offset not annotated" in ds.samples[1].notes[0]
    assert any("row 3" in p for p in ds.problems)  # 'abc' offset
    assert any("participant 2" in p for p in ds.problems)  # s16 folder absent


def test_casme3_case_insensitive_folders(tmp_path):
    frames(tmp_path / "part_A/data/part_A/spNo.1/a/color", range(100, 130), lambda n: f"{n}.jpg")
    workbook(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", {"label": [
        ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"],
        ["spNO.1", "a", 105, 110, 118, "L12", "I", "happy"],
        ["spNO.1", "b", 10, 12, 5, "4", "III", "anger"],
    ]})  # fmt: skip
    ds = load_dataset("casme3", tmp_path)
    (s,) = ds.samples
    assert (s.label, s.objective_class, len(s.frames())) == ("positive", "I", 14)
    assert "offset 5 is before onset 10" in ds.problems[0]


def test_missing_and_malformed_sheets(tmp_path):
    (tmp_path / "CASME2_RAW_selected").mkdir()
    with pytest.raises(InputError, match=r"CASME II label sheet not found under .*CASME2-coding\*\.xlsx"):
        load_dataset("casme2", tmp_path)
    workbook(tmp_path / "CASME2-coding-x.xlsx", {"Sheet1": [["Subject", "Filename", "Onset"], [1, "EP", 3]]})
    with pytest.raises(
        InputError, match=r"lacks columns .*OnsetFrame.*first row has \['Subject', 'Filename', 'Onset'\]"
    ):
        load_dataset("casme2", tmp_path)
    (tmp_path / "CASME2-coding-x.xlsx").write_bytes(b"this is not a zip file")
    with pytest.raises(InputError, match="not a readable .xlsx"):
        load_dataset("casme2", tmp_path)
    with pytest.raises(InputError, match="folder not found"):
        load_dataset("samm", tmp_path / "nope")
    with pytest.raises(InputError, match="unknown dataset 'mmew'"):
        load_dataset("mmew", tmp_path)
    with pytest.raises(InputError, match="no SMIC clips"):
        load_dataset("smic", tmp_path)


def test_csv_sheet_and_explicit_sheet_path(tmp_path):
    frames(tmp_path / "Cropped/sub03/EP01_01", range(1, 10), lambda n: f"reg_img{n}.jpg")
    sheet = tmp_path / "labels" / "my_casme2.csv"
    sheet.parent.mkdir()
    sheet.write_text(",".join(CASME2_HEADER) + "\n3,EP01_01,2,4,8,6+12,happiness\n,,,,,,\n")
    ds = load_dataset("casme2", tmp_path, sheet=sheet)
    assert len(ds.samples) == 1 and not ds.partial and len(ds.samples[0].frames()) == 7
    assert read_sheet(sheet)[0] == CASME2_HEADER
    with pytest.raises(InputError, match=r"\.xls sheets are not read"):
        read_sheet(tmp_path / "old.xls") if (tmp_path / "old.xls").write_bytes(b"x") else None
