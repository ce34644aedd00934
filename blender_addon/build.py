"""Build the installable extension zip: ``python blender_addon/build.py [--out dist]``.

Fetches the wheels the manifest lists (``pip download``, into ``blender_addon/wheels/``, which is
never committed) and zips the add-on the way ``blender --command extension build`` does: the
manifest at the root, no caches, not this script. Prints the zip's path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUDE_NAMES = {"build.py", "__pycache__"}
INCLUDE_SUFFIXES = {".py", ".toml", ".whl", ".md", ".txt"}


def _requirement(wheel_name: str) -> str:
    """'python_osc-1.10.2-py3-none-any.whl' -> 'python-osc==1.10.2'."""
    name, version = wheel_name.split("-")[:2]
    return f"{name.replace('_', '-')}=={version}"


def fetch_wheels(manifest: dict, folder: Path = HERE) -> list[Path]:
    """Make sure every wheel the manifest names is present; download the missing ones."""
    out = []
    for rel in manifest.get("wheels", []):
        path = (folder / rel).resolve()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--disable-pip-version-check", "-q", "-d", str(path.parent),
                   _requirement(path.name)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not path.is_file():
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise SystemExit(f"error: could not download {path.name}: {last}")
        out.append(path)
    return out


def build(out_dir: Path, folder: Path = HERE) -> Path:
    """Write ``<id>-<version>.zip`` into ``out_dir`` (temp file, then rename) and return its path."""
    manifest = tomllib.loads((folder / "blender_manifest.toml").read_text(encoding="utf-8"))
    wheels = set(fetch_wheels(manifest, folder))
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix in INCLUDE_SUFFIXES
        and not EXCLUDE_NAMES & set(p.relative_to(folder).parts)
        and (p.suffix != ".whl" or p.resolve() in wheels)
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    fd, tmp = tempfile.mkstemp(suffix=".zip.part", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.relative_to(folder).as_posix())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE.parent / "dist", help="output folder (default: dist/)"
    )
    print(build(parser.parse_args().out.resolve()))


if __name__ == "__main__":
    main()
