"""Loaders for the five public micro-expression datasets' folder layouts and label sheets.

- CASME II (200 fps): ``CASME2-coding-*.xlsx`` (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
  Action Units, Estimated Emotion); frames ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``.
- SAMM (200 fps): ``SAMM_Micro_FACS_Codes_v2.xlsx``, header below a notes block (Subject, Filename,
  Inducement Code, Onset Frame, Apex Frame, Offset Frame, Duration, Type, Action Units, Estimated
  Emotion, Objective Classes, Notes); frames ``SAMM/006/006_1_2/006_05562.jpg``.
- SMIC-HS (100 fps): labels are folders, ``SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image*.bmp``;
  an optional ``SMIC-HS-E_annotation*.xlsx`` (Subject, Filename, OnsetF, OffsetF, Emotion) is used
  when present.
- CAS(ME)^2 (30 fps, long videos, micro and macro): ``CAS(ME)^2code_final*.xlsx``, first worksheet
  without header (participant, clip 'anger1_1', onset, apex, offset, AUs, emotion, expression type,
  self-report), worksheets 'naming rule1' (folder number, name, participant) and 'naming rule2'
  (video code '0101', video name 'disgust1'); frames ``rawpic/s15/15_0101disgustingteeth/img1.jpg``.
- SAMM long videos (SAMM-LV, 200 fps, micro and macro; MEGC's other spotting set):
  ``SAMM_LongVideos_V2_Release.xlsx``, header below a notes block (Subject, Filename '006_1_2', Inducement
  Code, Onset, Apex, Offset, Duration, Type 'Micro - 1/2' or 'Macro', Action Units, Notes); frames
  ``SAMM_longvideos/006_1/006_1_0001.jpg`` (the video is the Filename's first two parts).
- CAS(ME)^3 part A (30 fps): ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` worksheet 'label'
  (Subject 'spNO.1', Filename 'a', Onset, Apex, Offset, AU, Objective class, emotion); frames
  ``part_A/data/part_A/spNO.1/a/color/123.jpg``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avatar_bridge.errors import InputError
from avatar_bridge.micro.datasets.base import (
    LoadedDataset,
    Sample,
    cell,
    child_dir,
    find_file,
    first_dir,
    header_table,
    list_frames,
    read_sheet,
    require_root,
    sheet_names,
    text,
    three_class,
    to_int,
)

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII"}


def _rows(rows: list[list[object]], start: int) -> Iterator[tuple[int, list[object]]]:
    """Non-blank rows after index ``start - 1`` with their 1-based sheet row numbers."""
    for k in range(start, len(rows)):
        if any(text(c) for c in rows[k]):
            yield k + 1, rows[k]


def _sheet(root: Path, sheet: Path | str | None, patterns: list[str], what: str) -> Path:
    if sheet is not None:
        path = Path(sheet)
        if not path.is_file():
            raise InputError(f"{what} label sheet not found: {path}")
        return path
    found = find_file(root, patterns)
    if found is None:
        raise InputError(f"{what} label sheet not found under {root}: expected {' or '.join(patterns)} "
                         "(or pass the sheet's path)")  # fmt: skip
    return found


def _apex(value: object, onset: int, offset: int | None, notes: list[str]) -> int | None:
    """Apex frame; CASME II writes '/' and SAMM -1 when unknown: use the midpoint and say so."""
    try:
        apex = to_int(value, "apex")
    except ValueError:
        apex = -1
    if apex < 0 or (offset is not None and not onset <= apex <= offset):
        if offset is None:
            return None
        notes.append(f"apex {text(value) or 'blank'} unusable: midpoint used")
        return (onset + offset) // 2
    return apex


def _annotated_offset(offset: int, onset: int, apex: int, notes: list[str]) -> int:
    """The long-video sheets (CAS(ME)^2, SAMM-LV) write offset 0 when it was not annotated: the
    apex mirrored (apex + (apex - onset)) is used and said."""
    if offset == 0:
        offset = apex + (apex - onset)
        notes.append("offset not annotated: apex + (apex - onset) used")
    _check_order(onset, offset)
    return offset


def _check_order(onset: int, offset: int | None) -> None:
    if offset is not None and offset < onset:
        raise ValueError(f"offset {offset} is before onset {onset}")


def _interval(row: list[object], cols: dict[str, int], onset_col: str, offset_col: str) -> tuple[int, int]:
    """Onset and offset frames of a sheet row, checked for order (ValueError names the problem)."""
    onset = to_int(cell(row, cols, onset_col), onset_col)
    offset = to_int(cell(row, cols, offset_col), offset_col)
    _check_order(onset, offset)
    return onset, offset


def _folder(ds: LoadedDataset, row: int, folder: Path | None, where: str) -> Path | None:
    if folder is None:
        ds.problems.append(f"row {row}: frames of {where} not found")
    return folder


def load_casme2(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    root = require_root(root, "CASME II")
    path = _sheet(root, sheet, ["CASME2-coding*.xlsx", "CASME2-coding*.csv"], "CASME II")
    rows = read_sheet(path)
    h, cols = header_table(
        rows, ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"], path
    )
    base = first_dir(root, ["CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "Cropped", ""])
    ds = LoadedDataset("casme2", root, path)
    for r, row in _rows(rows, h + 1):
        notes: list[str] = []
        try:
            subject = text(cell(row, cols, "Subject")).lower().removeprefix("sub")
            subject = f"sub{int(subject):02d}" if subject.isdigit() else f"sub{subject}"
            clip = text(cell(row, cols, "Filename"))
            if not clip:
                raise ValueError("Filename is blank")
            onset, offset = _interval(row, cols, "OnsetFrame", "OffsetFrame")
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        apex = _apex(cell(row, cols, "ApexFrame"), onset, offset, notes)
        emotion = text(cell(row, cols, "Estimated Emotion")).lower()
        folder = _folder(ds, r, child_dir(child_dir(base, subject), clip), f"{subject}/{clip}")
        ds.samples.append(Sample("casme2", subject, clip, onset, apex, offset, 200.0, emotion,
                                 three_class(emotion), "micro", text(cell(row, cols, "Action Units")),
                                 "", folder, r, tuple(notes)))  # fmt: skip
    return ds


def _samm_subject(value: object) -> str:
    """SAMM's subject number as its folders write it: 6 -> '006'."""
    subject = text(value)
    return f"{int(subject):03d}" if subject.isdigit() else subject


def load_samm(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    root = require_root(root, "SAMM")
    path = _sheet(root, sheet, ["SAMM_Micro_FACS_Codes*.xlsx", "SAMM_Micro_FACS_Codes*.csv"], "SAMM")
    rows = read_sheet(path)
    h, cols = header_table(
        rows, ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"], path
    )
    base = first_dir(root, ["SAMM", ""])
    ds = LoadedDataset("samm", root, path)
    for r, row in _rows(rows, h + 1):
        notes: list[str] = []
        try:
            subject = _samm_subject(cell(row, cols, "Subject"))
            if not subject:
                raise ValueError("Subject is blank")
            clip = text(cell(row, cols, "Filename"))
            if not clip:
                raise ValueError("Filename is blank")
            onset, offset = _interval(row, cols, "Onset Frame", "Offset Frame")
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        apex = _apex(cell(row, cols, "Apex Frame"), onset, offset, notes)
        emotion = text(cell(row, cols, "Estimated Emotion")).lower()
        obj = text(cell(row, cols, "Objective Classes"))
        obj = _ROMAN.get(int(obj), obj) if obj.isdigit() else obj
        folder = _folder(ds, r, child_dir(child_dir(base, subject), clip), f"{subject}/{clip}")
        ds.samples.append(Sample("samm", subject, clip, onset, apex, offset, 200.0, emotion,
                                 three_class(emotion), "micro", text(cell(row, cols, "Action Units")),
                                 obj, folder, r, tuple(notes)))  # fmt: skip
    return ds


def load_smic(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    """SMIC-HS: the label is the folder; with an SMIC-HS-E annotation sheet, its onsets and offsets."""
    root = require_root(root, "SMIC")
    base = first_dir(root, ["SMIC_all_raw/HS", "HS", "SMIC_all_cropped/HS", ""])
    path = Path(sheet) if sheet is not None else find_file(root, ["SMIC-HS-E_annotation*.xlsx"])
    if path is not None:
        return _load_smic_sheet(root, base, path)
    ds = LoadedDataset("smic", root, None)
    for subj_dir in sorted(p for p in base.iterdir() if p.is_dir() and p.name.lower().startswith("s")):
        micro = child_dir(subj_dir, "micro")
        if micro is None:
            continue
        for emo_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            for clip_dir in sorted(p for p in emo_dir.iterdir() if p.is_dir()):
                frames = list_frames(clip_dir)
                if not frames:
                    ds.problems.append(f"{clip_dir}: no image frames")
                    continue
                on, off = min(frames), max(frames)
                emotion = emo_dir.name.lower()
                ds.samples.append(Sample("smic", subj_dir.name, clip_dir.name, on, (on + off) // 2, off,
                                         100.0, emotion, three_class(emotion), "micro", "", "", clip_dir, 0,
                                         ("apex not annotated: midpoint used",)))  # fmt: skip
    if not ds.samples:
        raise InputError(f"no SMIC clips under {base}: expected s1/micro/negative/s1_ne_01/image*.bmp")
    return ds


def _load_smic_sheet(root: Path, base: Path, path: Path) -> LoadedDataset:
    rows = read_sheet(path)
    h, cols = header_table(rows, ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion"], path)
    ds = LoadedDataset("smic", root, path)
    for r, row in _rows(rows, h + 1):
        try:
            num = text(cell(row, cols, "Subject")).lower().removeprefix("s")
            subject = f"s{int(num)}" if num.isdigit() else f"s{num}"
            clip = text(cell(row, cols, "Filename"))
            onset, offset = _interval(row, cols, "OnsetF", "OffsetF")
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        emotion = text(cell(row, cols, "Emotion")).lower()
        subj_dir = child_dir(base, subject)
        folder = child_dir(child_dir(child_dir(subj_dir, "micro"), emotion), clip) or child_dir(
            subj_dir, clip
        )
        folder = _folder(ds, r, folder, f"{subject}/{clip}")
        ds.samples.append(Sample("smic", subject, clip, onset, (onset + offset) // 2, offset, 100.0, emotion,
                                 three_class(emotion), "micro", "", "", folder, r,
                                 ("apex not annotated: midpoint used",)))  # fmt: skip
    return ds


def load_casme_sq(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    """CAS(ME)^2: long videos with micro- and macro-expressions (``kind``), for spotting."""
    root = require_root(root, "CAS(ME)^2")
    path = _sheet(
        root,
        sheet,
        ["CAS(ME)^2code_final*.xlsx", "CAS(ME)2code_final*.xlsx", "CAS(ME)^2code_final*.csv"],
        "CAS(ME)^2",
    )
    names = sheet_names(path)
    code_sheet = next((k for k, n in enumerate(names) if "naming" not in n.lower()), 0)
    rows = read_sheet(path, code_sheet)
    ds = LoadedDataset("casme_sq", root, path)
    subjects: dict[int, int] = {}  # participant -> folder number
    videos: dict[str, str] = {}  # video name ('disgust1') -> code ('0101')
    rule1 = next((n for n in names if n.lower().replace(" ", "") == "namingrule1"), None)
    rule2 = next((n for n in names if n.lower().replace(" ", "") == "namingrule2"), None)
    if rule1 and rule2:
        for row in read_sheet(path, rule1):
            try:
                subjects[to_int(row[2], "participant")] = to_int(row[0], "folder number")
            except (ValueError, IndexError):
                continue
        for row in read_sheet(path, rule2):
            if len(row) >= 2 and text(row[0]) and text(row[1]):
                code = text(row[0])
                videos[text(row[1]).lower()] = code.zfill(4) if code.isdigit() else code
    else:
        ds.problems.append(f"{path.name}: worksheets 'naming rule1'/'naming rule2' missing; "
                           "labels kept, frame folders not located")  # fmt: skip
    base = first_dir(root, ["rawpic", "selectedpic", "cropped", ""])
    for r, row in _rows(rows, 0):
        if len(row) < 8 or text(row[2]).lower() == "onset":
            if len(row) < 8:
                ds.problems.append(
                    f"row {r}: {len(row)} columns, expected 9 (participant ... expression type)"
                )
            continue
        notes: list[str] = []
        try:
            participant = to_int(row[0], "participant")
            clip = text(row[1])
            onset = to_int(row[2], "onset")
            apex = to_int(row[3], "apex")
            offset = _annotated_offset(to_int(row[4], "offset"), onset, apex, notes)
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        kind = "micro" if "micro" in text(row[7]).lower() else "macro"
        emotion = text(row[6]).lower()
        number = subjects.get(participant)
        subject = f"s{number}" if number is not None else f"participant{participant}"
        code = videos.get(clip.split("_")[0].lower())
        folder = None
        subj_dir = child_dir(base, subject)
        if subj_dir is not None and code is not None:
            folder = next(
                (
                    p
                    for p in sorted(subj_dir.iterdir())
                    if p.is_dir() and p.name.startswith(f"{number}_{code}")
                ),
                None,
            )
        if rule1 and rule2:
            _folder(ds, r, folder, f"participant {participant} / {clip}")
        video = folder.name if folder is not None else (code or clip.split("_")[0])
        ds.samples.append(
            Sample(
                "casme_sq",
                subject,
                video,
                onset,
                apex,
                offset,
                30.0,
                emotion,
                three_class(emotion),
                kind,
                text(row[5]),
                "",
                folder,
                r,
                tuple(notes),
            )
        )
    return ds


def load_samm_lv(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    """SAMM long videos: micro- and macro-expressions (``kind``) in 147 long videos, for spotting.
    Rows with onset 0 (a few very long macro-expressions without an annotated onset) are left out,
    as the MEGC baselines leave them out, and listed."""
    root = require_root(root, "SAMM-LV")
    path = _sheet(root, sheet, ["SAMM_LongVideos*.xlsx", "SAMM_LongVideos*.csv"], "SAMM-LV")
    rows = read_sheet(path)
    h, cols = header_table(rows, ["Subject", "Filename", "Onset", "Apex", "Offset", "Type"], path)
    base = first_dir(root, ["SAMM_longvideos", "SAMM_LongVideos", ""])
    ds = LoadedDataset("samm_lv", root, path)
    for r, row in _rows(rows, h + 1):
        notes: list[str] = []
        try:
            subject = _samm_subject(cell(row, cols, "Subject"))
            name = text(cell(row, cols, "Filename"))
            if not subject or name.count("_") < 2:
                raise ValueError(f"Subject {subject!r} or Filename {name!r} unusable (expected 006_1_2)")
            onset = to_int(cell(row, cols, "Onset"), "Onset")
            if onset == 0:
                raise ValueError("Onset 0 (not annotated): left out")
            apex = to_int(cell(row, cols, "Apex"), "Apex")
            offset = _annotated_offset(to_int(cell(row, cols, "Offset"), "Offset"), onset, apex, notes)
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        video = "_".join(name.split("_")[:2])
        kind = "micro" if "micro" in text(cell(row, cols, "Type")).lower() else "macro"
        folder = _folder(ds, r, child_dir(base, video), f"{subject}/{video}")
        ds.samples.append(Sample("samm_lv", subject, video, onset, _apex(apex, onset, offset, notes), offset,
                                 200.0, "", "", kind, text(cell(row, cols, "Action Units")), "", folder, r,
                                 tuple(notes)))  # fmt: skip
    return ds


def load_casme3(root: Path, sheet: Path | str | None = None) -> LoadedDataset:
    root = require_root(root, "CAS(ME)^3")
    path = _sheet(
        root, sheet, ["cas(me)3_part_A_ME_label*.xlsx", "cas(me)3_part_A_ME_label*.csv"], "CAS(ME)^3"
    )
    names = sheet_names(path)
    rows = read_sheet(path, "label" if any(n.lower() == "label" for n in names) else 0)
    h, cols = header_table(rows, ["Subject", "Filename", "Onset", "Apex", "Offset", "emotion"], path)
    base = first_dir(root, ["part_A/data/part_A", "data/part_A", "part_A", ""])
    ds = LoadedDataset("casme3", root, path)
    for r, row in _rows(rows, h + 1):
        notes: list[str] = []
        try:
            subject = text(cell(row, cols, "Subject"))
            clip = text(cell(row, cols, "Filename")).lower()
            if not subject or not clip:
                raise ValueError("Subject or Filename is blank")
            onset, offset = _interval(row, cols, "Onset", "Offset")
        except ValueError as e:
            ds.problems.append(f"row {r}: {e}")
            continue
        apex = _apex(cell(row, cols, "Apex"), onset, offset, notes)
        emotion = text(cell(row, cols, "emotion")).lower()
        clip_dir = child_dir(child_dir(base, subject), clip)
        folder = _folder(ds, r, child_dir(clip_dir, "color") or clip_dir, f"{subject}/{clip}")
        ds.samples.append(
            Sample(
                "casme3",
                subject,
                clip,
                onset,
                apex,
                offset,
                30.0,
                emotion,
                three_class(emotion),
                "micro",
                text(cell(row, cols, "AU")),
                text(cell(row, cols, "Objective class")),
                folder,
                r,
                tuple(notes),
            )
        )
    return ds
