"""What ``avatar-bridge export A B C`` means: files, folders, globs and list files, expanded to videos.

- a video file (or a path that does not exist: it is kept, and fails in the summary as "not found");
- a folder holding videos: its videos (top level, name order); a folder of images only: one image
  sequence, as in the single-video export;
- a glob such as ``'interviews/**/*.mp4'`` (quoted, so the shell leaves it to us; ``**`` recurses);
- a list file (``.txt``, ``.lst``, ``.list``): one path, folder or glob a line, ``#`` comments,
  relative paths taken from the list file's folder.

Every export writes ``<stem>.*`` into one folder, so two inputs with the same stem are refused
before any work starts.
"""

from __future__ import annotations

import glob
from pathlib import Path

from avatar_bridge.capture import IMAGE_SUFFIXES
from avatar_bridge.errors import InputError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
_GLOB_CHARS = frozenset("*?[")


def is_glob(spec: str) -> bool:
    """A spec with wildcard characters that is not itself an existing path."""
    return any(c in spec for c in _GLOB_CHARS) and not Path(spec).exists()


def is_list_file(spec: str) -> bool:
    path = Path(spec)
    return path.suffix.lower() in LIST_SUFFIXES and path.is_file()


def _folder_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def is_single_input(specs: list[str]) -> bool:
    """True when the specs name exactly one video or image folder: the classic one-video export."""
    if len(specs) != 1:
        return False
    spec = specs[0]
    if is_glob(spec) or is_list_file(spec):
        return False
    path = Path(spec)
    return not (path.is_dir() and _folder_videos(path))


def _expand_one(spec: str, base: Path | None) -> list[Path]:
    try:
        path = Path(spec).expanduser()
    except RuntimeError as e:  # ~user that does not exist
        raise InputError(f"cannot expand {spec!r}: {e}") from e
    if base is not None and not path.is_absolute():
        path = base / path
    text = str(path)
    if is_glob(text):
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        found = [m for m in matches if m.is_file() and m.suffix.lower() in VIDEO_SUFFIXES]
        if not found:
            raise InputError(f"no video matches {spec!r} ({', '.join(sorted(VIDEO_SUFFIXES))})")
        return found
    if path.is_dir():
        videos = _folder_videos(path)
        if videos:
            return videos
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            return [path]  # an image sequence, exported as one "video"
        raise InputError(f"{path} holds no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) and no images")
    return [path]


def _read_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the list file {path}: {e}") from e
    if "\x00" in text:
        raise InputError(f"the list file {path} holds a NUL byte; it must be text, one path a line")
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def expand_inputs(specs: list[str]) -> list[Path]:
    """The videos the specs name, in order, each once; raises :class:`InputError` on stem clashes."""
    if not specs:
        raise InputError("no input given: pass video files, folders, a glob or a list file")
    videos: list[Path] = []
    for spec in specs:
        if is_list_file(spec):
            path = Path(spec)
            entries = _read_list(path)
            if not entries:
                raise InputError(f"the list file {path} names no video")
            for entry in entries:
                videos += _expand_one(entry, path.parent)
        else:
            videos += _expand_one(spec, None)
    unique: dict[Path, Path] = {}
    for v in videos:
        unique.setdefault(v.resolve(), v)
    out = list(unique.values())
    check_stems(out)
    return out


def output_stem(video: Path) -> str:
    """The stem the export names its files by (the file stem, or the image folder's name)."""
    return video.name if video.is_dir() else video.stem


def check_stems(videos: list[Path]) -> None:
    """Refuse two inputs that would write the same ``<stem>.*`` files."""
    seen: dict[str, Path] = {}
    for v in videos:
        stem = output_stem(v)
        if stem in seen:
            raise InputError(
                f"{seen[stem]} and {v} would both write {stem}.* into the output folder; "
                "export them into separate folders (-o)"
            )
        seen[stem] = v
