"""Retarget stage: tracked faces and AUs -> any rig's weights, through profiles that are data.

``Retargeter(profile, RetargetOptions()).update(face, aus, timestamp) -> RigWeights`` (and
``FaceRetargeter`` for several profiles of one face, sharing one filter); profiles are
``blendshapes/profiles/*.toml`` (:func:`load_profile`), smoothing keeps micro-expressions
(:mod:`.smoothing`), :func:`match_names` writes a profile for a rig's own shape-key names.
"""

from avatar_bridge.retarget.calibration import CalibrationFile, RetargetCalibration
from avatar_bridge.retarget.events import event_envelope
from avatar_bridge.retarget.match import (
    MatchResult,
    match_names,
    profile_to_toml,
    read_rig_names,
    write_profile,
)
from avatar_bridge.retarget.naming import SPELLINGS, canonical_key, respell
from avatar_bridge.retarget.profile import (
    SOURCE_NAMES,
    CompiledProfile,
    Curve,
    Profile,
    Target,
    available_profiles,
    load_profile,
    parse_profile,
    source_vector,
)
from avatar_bridge.retarget.retargeter import FaceRetargeter, Retargeter, RetargetOptions
from avatar_bridge.retarget.smoothing import (
    DeviationGatedFilter,
    OneEuroFilter,
    SmoothingKind,
    SmoothingOptions,
    make_filter,
)

__all__ = [
    "SOURCE_NAMES",
    "SPELLINGS",
    "CalibrationFile",
    "CompiledProfile",
    "Curve",
    "DeviationGatedFilter",
    "FaceRetargeter",
    "MatchResult",
    "OneEuroFilter",
    "Profile",
    "RetargetCalibration",
    "RetargetOptions",
    "Retargeter",
    "SmoothingKind",
    "SmoothingOptions",
    "Target",
    "available_profiles",
    "canonical_key",
    "event_envelope",
    "load_profile",
    "make_filter",
    "match_names",
    "parse_profile",
    "profile_to_toml",
    "read_rig_names",
    "respell",
    "source_vector",
    "write_profile",
]
