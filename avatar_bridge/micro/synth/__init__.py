"""Training and evaluation data the project makes itself: micro-expressions injected into real video."""

from avatar_bridge.micro.synth.generate import (
    GENERATOR_VERSION,
    TRUTH_SUFFIX,
    HeldStill,
    Prepared,
    SynthOptions,
    generate,
    load_truth,
    plan,
    prepare,
    render,
    stream,
    truth_document,
)
from avatar_bridge.micro.synth.patterns import PATTERNS, AUPattern, temporal_profile
from avatar_bridge.micro.synth.still import CameraOptions, film, held_still

__all__ = [
    "CameraOptions",
    "film",
    "held_still",
    "GENERATOR_VERSION",
    "TRUTH_SUFFIX",
    "HeldStill",
    "Prepared",
    "prepare",
    "stream",
    "truth_document",
    "PATTERNS",
    "AUPattern",
    "SynthOptions",
    "generate",
    "load_truth",
    "plan",
    "render",
    "temporal_profile",
]
