"""A group of output files that appear together or not at all."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType

from avatar_bridge.errors import OutputError


def ensure_writable_dir(folder: Path) -> Path:
    """Create ``folder`` if needed and prove we can write there, or raise :class:`OutputError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {folder}: {e.strerror or e}") from e
    if not folder.is_dir():
        raise OutputError(f"output path {folder} exists and is not a folder")
    probe = folder / f".avatar-bridge-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"output folder {folder} is not writable: {e.strerror or e}") from e
    return folder


class AtomicOutputs:
    """Hands out temporary paths in one folder; renames them all on success, deletes them on failure.

    >>> with AtomicOutputs(Path("out")) as outs:  # doctest: +SKIP
    ...     tmp = outs.path("clip.csv")   # write to tmp; becomes out/clip.csv at the end
    """

    def __init__(self, folder: Path) -> None:
        self.folder = ensure_writable_dir(Path(folder))
        self._token = uuid.uuid4().hex[:8]
        self._pending: dict[Path, Path] = {}
        self.committed: list[Path] = []

    def path(self, name: str) -> Path:
        final = self.folder / name
        tmp = self.folder / f".{name}.{self._token}.part"
        self._pending[final] = tmp
        return tmp

    def planned(self) -> list[str]:
        """Names of the files this group will publish."""
        return sorted(final.name for final in self._pending)

    def commit(self) -> list[Path]:
        for final, tmp in self._pending.items():
            if tmp.exists():
                os.replace(tmp, final)
                self.committed.append(final)
        self._pending.clear()
        return self.committed

    def discard(self) -> None:
        for tmp in self._pending.values():
            tmp.unlink(missing_ok=True)
        self._pending.clear()

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
