"""Micro-expression classifiers: AU rules (no training), TP-HA3DNet (PyTorch) and DCT-LDA (single frames).

Each lives in its own module and is imported on use, so the AU rules never pull in torch.
"""

from __future__ import annotations

from avatar_bridge.micro.classify.au_rules import AUClassification, AURuleClassifier, AURulesOptions

__all__ = ["AUClassification", "AURuleClassifier", "AURulesOptions"]
