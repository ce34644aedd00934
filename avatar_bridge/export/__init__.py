"""Exports: AU and blendshape curves as files people already know how to read.

- :mod:`.openface_csv`: OpenFace 2.x FeatureExtraction CSV (``AUxx_r``, ``AUxx_c``, pose).
- :mod:`.blendshapes_csv`: timestamp + the 52 ARKit blendshapes.
- :mod:`.plot`: a PNG of the AU curves over time.
- :mod:`.atomic`: every file is written under a temporary name and renamed only when the run succeeds.
"""

from avatar_bridge.export.atomic import AtomicOutputs
from avatar_bridge.export.blendshapes_csv import BlendshapeCSVWriter
from avatar_bridge.export.openface_csv import OPENFACE_COLUMNS, OpenFaceCSVWriter, read_openface_csv

__all__ = [
    "AtomicOutputs",
    "BlendshapeCSVWriter",
    "OPENFACE_COLUMNS",
    "OpenFaceCSVWriter",
    "read_openface_csv",
]
