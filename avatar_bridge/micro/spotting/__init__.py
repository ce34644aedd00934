"""The online micro-expression spotter, one job per module.

- ``options``: :class:`SpotterOptions`, every setting with its default and why;
- ``flowtracks``: sub-pixel patch tracks from Lucas-Kanade flow on the aligned face;
- ``regionflow``: the issue's dense-flow features (mean flow and strain per 64 x 64 region), an alternative;
- ``stabilise``: an optional robust removal of the aligned face's rigid jitter from the patch tracks;
- ``channels``: the patches, landmark groups and AU cues (``blendshapes/micro_spotting.toml``);
- ``history``: the short window of recent positions;
- ``detector``: bumps that come back (micro) and held expressions (macro), timed causally;
- ``describe``: regions, side, AUs and confidence of an event;
- ``spotter``: :class:`MicroSpotter`, per face, labels events with the AU rules.
"""

from avatar_bridge.micro.spotting.options import SpotterOptions, with_settings
from avatar_bridge.micro.spotting.spotter import MicroSpotter

__all__ = ["MicroSpotter", "SpotterOptions", "with_settings"]
