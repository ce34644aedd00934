"""Loaders for the public micro-expression datasets (for users who hold their licences).

>>> sorted(DATASETS)
['casme2', 'casme3', 'casme_sq', 'samm', 'samm_lv', 'smic']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from avatar_bridge.errors import InputError
from avatar_bridge.micro.datasets.base import CLASSES_3, LoadedDataset, Sample, three_class
from avatar_bridge.micro.datasets.loaders import (
    load_casme2,
    load_casme3,
    load_casme_sq,
    load_samm,
    load_samm_lv,
    load_smic,
)

#: Dataset name -> loader(root, sheet=None). 'casme_sq' is CAS(ME)^2.
DATASETS: dict[str, Callable[..., LoadedDataset]] = {
    "casme2": load_casme2,
    "samm": load_samm,
    "samm_lv": load_samm_lv,
    "smic": load_smic,
    "casme_sq": load_casme_sq,
    "casme3": load_casme3,
}
ALIASES = {"casme ii": "casme2", "cas(me)^2": "casme_sq", "casme^2": "casme_sq", "cas(me)2": "casme_sq",
           "cas(me)^3": "casme3", "cas(me)3": "casme3", "smic-hs": "smic",
           "samm-lv": "samm_lv", "sammlv": "samm_lv", "samm long videos": "samm_lv"}  # fmt: skip


def load_dataset(name: str, root: str | Path, sheet: str | Path | None = None) -> LoadedDataset:
    """Load dataset ``name`` from its folder ``root`` (``sheet`` overrides the label sheet's path)."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key](Path(root), sheet)


__all__ = ["CLASSES_3", "DATASETS", "LoadedDataset", "Sample", "load_dataset", "three_class"]
