"""FACS stage: OpenFace-style action units (17 intensities, 18 presences) per face and frame.

``AUEstimator(FACSOptions()).update(result, frame=None) -> tuple[ActionUnits, ...]``; the
blendshape + geometry (+ appearance, when given the frame) mapping is data
(``blendshapes/facs_mapping.toml``); the neutral face is a running per-person baseline or an
explicit :class:`Calibration`.
"""

from avatar_bridge.facs.appearance import APPEARANCE_FEATURES, appearance_features
from avatar_bridge.facs.calibration import Calibration, face_sources
from avatar_bridge.facs.estimator import AUEstimator, FACSOptions, au_intensities
from avatar_bridge.facs.geometry import GEOMETRIC_FEATURES, face_frame, geometric_features
from avatar_bridge.facs.mapping import SOURCES, FACSMapping, default_mapping_path, load_mapping

__all__ = [
    "APPEARANCE_FEATURES",
    "AUEstimator",
    "Calibration",
    "FACSMapping",
    "FACSOptions",
    "GEOMETRIC_FEATURES",
    "SOURCES",
    "appearance_features",
    "au_intensities",
    "default_mapping_path",
    "face_frame",
    "face_sources",
    "geometric_features",
    "load_mapping",
]
