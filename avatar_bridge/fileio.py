"""The one way avatar-bridge writes a file (temporary name, then rename) and reads a JSON file.

A failed or interrupted write never leaves a file that looks complete; a bad JSON file gives one
line that names the file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

from avatar_bridge.errors import AvatarBridgeError, ConfigError, InputError, OutputError


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], what: str = "file", error: type[AvatarBridgeError] = OutputError
) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; it becomes ``path`` only if the block succeeds.

    The temporary name keeps the suffix, so writers that add one (``np.savez``) do not rename it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise error(f"cannot write {what} {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):  # when the folder is not there, the error above says why
            tmp.unlink(missing_ok=True)


def write_text_atomic(
    path: str | os.PathLike[str], text: str, what: str = "file", error: type[AvatarBridgeError] = OutputError
) -> Path:
    with atomic_path(path, what, error) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(
    path: str | os.PathLike[str],
    payload: object,
    what: str = "file",
    error: type[AvatarBridgeError] = OutputError,
    indent: int | None = 2,
) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=indent) + "\n", what, error)


def _read_text(path: Path, what: str, error: type[AvatarBridgeError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise error(f"{what} not found: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from e


def read_json(
    path: str | os.PathLike[str], what: str = "file", error: type[AvatarBridgeError] = InputError
) -> object:
    """Parse a JSON file; missing, unreadable or malformed files raise ``error`` naming the file."""
    path = Path(path)
    text = _read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON (line {e.lineno}: {e.msg})") from e


def read_toml(
    path: str | os.PathLike[str], what: str = "file", error: type[AvatarBridgeError] = ConfigError
) -> dict:
    """Parse a TOML data file (profiles, mappings, rules); errors name the file and what is wrong."""
    path = Path(path)
    text = _read_text(path, what, error)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path} is not valid TOML: {e}") from e
