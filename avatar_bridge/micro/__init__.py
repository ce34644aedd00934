"""Micro-expressions: per-frame features, the online spotter and the synthetic-data generator."""

from avatar_bridge.micro.spotter import MicroSpotter, SpotterOptions

__all__ = ["MicroSpotter", "SpotterOptions"]
