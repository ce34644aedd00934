"""Training and evaluation data the project makes itself: micro-expressions injected into real video."""

from avatar_bridge.micro.synth.generate import SynthOptions, generate, load_truth, plan, render
from avatar_bridge.micro.synth.patterns import PATTERNS, AUPattern, temporal_profile

__all__ = [
    "PATTERNS",
    "AUPattern",
    "SynthOptions",
    "generate",
    "load_truth",
    "plan",
    "render",
    "temporal_profile",
]
