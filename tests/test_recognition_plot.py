"""The recognition picture: one confusion matrix per classifier, cells coloured by their share of
the row, a "no label" column only when a classifier left samples unlabelled."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar_bridge.export.recognition_plot import plot_confusions
from avatar_bridge.micro.evaluation import recognition_scores

CLASSES = ("negative", "positive", "surprise")
DARKEST = (8, 48, 107)  # matplotlib's Blues at 1.0: a class recognised every time


def _image(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _has(image: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool((np.abs(image.astype(int) - rgb).max(axis=2) <= 3).sum() > 50)


def test_one_panel_per_classifier_and_the_darkest_cell_only_for_a_perfect_class(tmp_path):
    truth = ["negative"] * 4 + ["positive"] * 3 + ["surprise"] * 3
    guesses = ["negative", "positive"] * 2 + ["positive"] * 3 + ["surprise"] * 3
    perfect_surprise = recognition_scores(truth, guesses, CLASSES).as_dict()
    guesses = ["negative"] * 3 + ["(none)"] + ["positive", "positive", "negative"]
    guesses += ["surprise", "surprise", "positive"]
    none_perfect = recognition_scores(truth, guesses, CLASSES).as_dict()
    chance = {"uf1": 0.3, "uar": 0.33}  # no confusion matrix: left out
    one = _image(plot_confusions(tmp_path / "one.png", {"A": perfect_surprise, "chance": chance}))
    two = _image(plot_confusions(tmp_path / "two.png", {"A": perfect_surprise, "B": none_perfect}))
    alone = _image(plot_confusions(tmp_path / "alone.png", {"B": none_perfect}))
    assert one.shape[0] == two.shape[0] and two.shape[1] > 1.8 * one.shape[1]
    assert _has(one, DARKEST) and _has(two, DARKEST)  # surprise, 3 of 3
    assert not _has(alone, DARKEST)  # at most 3 of 4 right in any row
    with pytest.raises(ValueError, match="no confusion matrix"):
        plot_confusions(tmp_path / "none.png", {"chance": chance})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.png", "one.png", "two.png"]
