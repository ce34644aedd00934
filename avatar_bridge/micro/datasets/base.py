"""What every dataset loader returns, and the helpers they share (label sheets, frame folders).

We hold no licence for these datasets; users who do point a loader at their copy. Layouts and sheet
columns follow the releases (CASME II, SAMM, SMIC, CAS(ME)^2, CAS(ME)^3). A sheet that is missing or
lacks its columns is a clear one-line error; a bad row or a missing clip folder is recorded in
``problems`` and the rest is kept, marked partial.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from avatar_bridge.capture import image_files
from avatar_bridge.errors import BackendUnavailableError, InputError

#: MEGC2019's 3-class mapping (reference section 7); other words map to '' (left out).
THREE_CLASS: dict[str, str] = {
    "happiness": "positive", "happy": "positive", "positive": "positive",
    "sadness": "negative", "sad": "negative", "disgust": "negative", "contempt": "negative",
    "fear": "negative", "anger": "negative", "angry": "negative", "repression": "negative",
    "negative": "negative",
    "surprise": "surprise",
}  # fmt: skip
CLASSES_3 = ("negative", "positive", "surprise")


def three_class(emotion: str) -> str:
    """'Happiness' -> 'positive', 'Repression' -> 'negative', 'others' -> ''."""
    return THREE_CLASS.get(emotion.strip().lower(), "")


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled expression of a dataset.

    Frame numbers are the sheet's own (``onset``/``apex``/``offset``; apex or offset None when the
    sheet has none). ``folder`` holds the clip's (or the long video's) frames, None when not found.
    ``notes`` lists fixes applied to this row (for example a missing apex set to the midpoint).
    """

    dataset: str
    subject: str
    clip: str
    onset: int
    apex: int | None
    offset: int | None
    fps: float
    emotion: str
    label: str
    kind: str = "micro"
    aus: str = ""
    objective_class: str = ""
    folder: Path | None = None
    row: int = 0
    notes: tuple[str, ...] = ()

    @property
    def video(self) -> str:
        """Id of the video the expression sits in (subject/clip), for spotting evaluation."""
        return f"{self.subject}/{self.clip}"

    def frames(self) -> list[Path]:
        """Frame files from onset to offset (or the whole folder when offset is unknown)."""
        if self.folder is None:
            raise InputError(f"{self.dataset} {self.video}: clip folder not found")
        numbered = list_frames(self.folder)
        last = self.offset if self.offset is not None else max(numbered, default=self.onset)
        return [numbered[k] for k in sorted(numbered) if self.onset <= k <= last]


@dataclass
class LoadedDataset:
    """A dataset's samples, plus what could not be read (each entry says where and why)."""

    name: str
    root: Path
    sheet: Path | None
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.problems)

    @property
    def subjects(self) -> list[str]:
        return sorted({s.subject for s in self.samples})

    def summary(self) -> dict:
        kinds: dict[str, int] = {}
        labels: dict[str, int] = {}
        for s in self.samples:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
            labels[s.label or "(others)"] = labels.get(s.label or "(others)", 0) + 1
        return {
            "dataset": self.name, "root": str(self.root), "sheet": str(self.sheet) if self.sheet else None,
            "samples": len(self.samples), "subjects": len(self.subjects), "kinds": kinds,
            "labels": labels, "with_frames": sum(s.folder is not None for s in self.samples),
            "partial": self.partial, "problems": list(self.problems),
        }  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Label sheets


def read_sheet(path: Path, sheet: str | int | None = 0) -> list[list[object]]:
    """All rows of one worksheet (.xlsx) or of a .csv file, as lists of cell values (None = blank)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"label sheet not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                return [[c if c != "" else None for c in row] for row in csv.reader(f)]
        except UnicodeDecodeError as e:
            msg = f"{path}: not UTF-8 text (byte {e.start}); save the sheet as UTF-8 CSV or .xlsx"
            raise InputError(msg) from e
        except csv.Error as e:
            raise InputError(f"{path}: not a readable CSV sheet: {e}") from e
    if suffix == ".xls":
        raise InputError(f"{path}: old .xls sheets are not read; save it as .xlsx or .csv")
    if suffix not in (".xlsx", ".xlsm"):
        raise InputError(f"{path}: a label sheet must be .xlsx or .csv, got {suffix or 'no suffix'}")
    try:
        import openpyxl
    except ImportError as e:  # pragma: no cover - openpyxl is a dependency
        raise BackendUnavailableError(
            "reading .xlsx label sheets needs openpyxl: pip install openpyxl"
        ) from e
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a damaged file
        raise InputError(f"{path}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from e
    try:
        names = wb.sheetnames
        if isinstance(sheet, int):
            if sheet >= len(names):
                raise InputError(f"{path}: has {len(names)} worksheet(s), wanted number {sheet + 1}")
            ws = wb[names[sheet]]
        else:
            match = [n for n in names if n.strip().lower() == str(sheet).strip().lower()]
            if not match:
                raise InputError(f"{path}: no worksheet {sheet!r}; it has {names}")
            ws = wb[match[0]]
        return [list(row) for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def sheet_names(path: Path) -> list[str]:
    """Worksheet names of an .xlsx file ([] for .csv)."""
    if Path(path).suffix.lower() == ".csv":
        return []
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
    except Exception as e:
        raise InputError(f"{path}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from e
    names = list(wb.sheetnames)
    wb.close()
    return names


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower()) if name is not None else ""


def header_table(
    rows: list[list[object]], required: Iterable[str], path: Path, search_rows: int = 30
) -> tuple[int, dict[str, int]]:
    """Find the header row (the first of ``search_rows`` holding every required column; SAMM's sits
    below a notes block) and map normalised column names to indices."""
    req = [_norm(r) for r in required]
    for i, row in enumerate(rows[:search_rows]):
        cols = {_norm(c): k for k, c in enumerate(row) if c is not None and _norm(c)}
        if all(r in cols for r in req):
            return i, cols
    first = next((r for r in rows if any(c is not None for c in r)), [])
    found = [str(c) for c in first if c is not None]
    raise InputError(
        f"{path}: label sheet lacks columns {list(required)}; the first row has {found or 'nothing'}"
    )


def cell(row: list[object], cols: dict[str, int], name: str) -> object:
    k = cols.get(_norm(name))
    return row[k] if k is not None and k < len(row) else None


def to_int(value: object, what: str) -> int:
    """A frame number from a cell: 12, 12.0 and '12' are fine; blanks and words are errors."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is blank")
    if isinstance(value, (int, float)):
        if value != value or float(value) != int(value):
            raise ValueError(f"{what} {value!r} is not a frame number")
        return int(value)
    text = str(value).strip()
    if not re.fullmatch(r"\d+(\.0+)?", text):
        raise ValueError(f"{what} {text!r} is not a frame number")
    return int(float(text))


def text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value).strip()


def find_file(root: Path, patterns: Iterable[str], max_depth: int = 3) -> Path | None:
    """The first file under ``root`` (depth-limited, sorted) whose name matches a glob, case-insensitive."""
    regexes = [re.compile(_glob_to_re(p), re.IGNORECASE) for p in patterns]
    for depth in range(max_depth + 1):
        for path in sorted(root.glob("/".join(["*"] * (depth + 1)))):
            if (
                path.is_file()
                and not path.name.startswith("~$")
                and any(r.fullmatch(path.name) for r in regexes)
            ):
                return path
    return None


def _glob_to_re(pattern: str) -> str:
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)


def child_dir(parent: Path | None, name: str) -> Path | None:
    """``parent/name`` matched case-insensitively (CAS(ME)^3 sheets say spNO, folders spNo)."""
    if parent is None or not parent.is_dir():
        return None
    direct = parent / name
    if direct.is_dir():
        return direct
    low = name.lower()
    for p in parent.iterdir():
        if p.is_dir() and p.name.lower() == low:
            return p
    return None


def first_dir(root: Path, candidates: Iterable[str]) -> Path:
    """The first existing folder among ``root/candidate`` ('' = root itself)."""
    for c in candidates:
        p = root / c if c else root
        if p.is_dir():
            return p
    return root


_NUM = re.compile(r"(\d+)$")


def list_frames(folder: Path) -> dict[int, Path]:
    """Image files of a folder by frame number (the last digit run of the file stem)."""
    out: dict[int, Path] = {}
    for p in image_files(folder):
        n = frame_number(p)
        if n is not None:
            out[n] = p
    return out


def frame_number(path: Path) -> int | None:
    """The frame number a file's name carries (its stem's last digit run), or None."""
    m = _NUM.search(path.stem)
    return int(m.group(1)) if m else None


def require_root(root: Path, name: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{name} folder not found: {root}")
    return root
