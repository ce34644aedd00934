"""Channel names shared by every stage: ARKit blendshapes and OpenFace action units.

Orders here are the canonical ones the rest of the project indexes by; MediaPipe's own
(alphabetical, with ``_neutral`` and no ``tongueOut``) is converted once, in tracking.
"""

from __future__ import annotations

import numpy as np

#: ARKit's 52 blendshapes in Apple's canonical order (also Live Link Face indices 0-51).
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft",
    "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}

#: ARKit channels MediaPipe does not estimate. They are NaN in every observation, never invented.
UNTRACKED_BLENDSHAPES: frozenset[str] = frozenset({"tongueOut"})
#: Boolean mask over ARKIT_NAMES: True where MediaPipe gives a value.
BLENDSHAPE_TRACKED: np.ndarray = np.array([n not in UNTRACKED_BLENDSHAPES for n in ARKIT_NAMES])
BLENDSHAPE_TRACKED.setflags(write=False)

#: OpenFace 2.x action units with an intensity model (``AUxx_r``, 0-5), in OpenFace's column order.
AU_INTENSITY: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)  # fmt: skip
#: Action units with a presence model (``AUxx_c``, 0/1): the same plus AU28 (lip suck).
AU_PRESENCE: tuple[str, ...] = tuple(sorted((*AU_INTENSITY, "AU28")))

AU_DESCRIPTIONS: dict[str, str] = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU04": "brow lowerer",
    "AU05": "upper lid raiser", "AU06": "cheek raiser", "AU07": "lid tightener",
    "AU09": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU25": "lips part", "AU26": "jaw drop",
    "AU28": "lip suck", "AU45": "blink",
}  # fmt: skip

#: MediaPipe's blendshape categories in its own output order (index 0 is ``_neutral``).
MEDIAPIPE_BLENDSHAPES: tuple[str, ...] = ("_neutral", *sorted(n for n in ARKIT_NAMES if n != "tongueOut"))


def mediapipe_to_arkit_index() -> np.ndarray:
    """Index array ``idx`` such that ``arkit[idx >= 0] = mediapipe[idx[idx >= 0]]``."""
    mp_index = {name: i for i, name in enumerate(MEDIAPIPE_BLENDSHAPES)}
    return np.array([mp_index.get(name, -1) for name in ARKIT_NAMES], dtype=np.int64)
