"""The online micro-expression spotter, one job per module.

- ``options``: :class:`SpotterOptions`, every setting with its default and why;
- ``flowtracks``: sub-pixel patch tracks from Lucas-Kanade flow on the aligned face;
- ``channels``: the patches, landmark groups and AU cues (``blendshapes/micro_spotting.toml``);
- ``history``: the short window of recent positions;
- ``detector``: bumps that come back (micro) and held expressions (macro), timed causally;
- ``describe``: regions, side, AUs and confidence of an event;
- ``spotter``: :class:`MicroSpotter`, per face, labels events with the AU rules.
"""

from avatar_bridge.micro.spotting.options import SpotterOptions
from avatar_bridge.micro.spotting.spotter import MicroSpotter

__all__ = ["MicroSpotter", "SpotterOptions"]
