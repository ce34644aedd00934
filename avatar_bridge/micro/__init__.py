"""Micro-expressions: per-frame features, the online spotter and the synthetic-data generator."""

from avatar_bridge.micro.spotting import MicroSpotter, SpotterOptions

__all__ = ["MicroSpotter", "SpotterOptions"]
