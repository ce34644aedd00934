"""The avatar-path filters: pure maths on constructed signals (the event/jitter figures are a benchmark)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar_bridge.errors import ConfigError
from avatar_bridge.retarget.smoothing import (
    DeviationGatedFilter,
    OneEuroFilter,
    PassThrough,
    SmoothingKind,
    SmoothingOptions,
    make_filter,
    smoothing_alpha,
)

FPS = 60.0


def run(f, x):
    return np.array([f.update(np.atleast_1d(v), i / FPS)[0] for i, v in enumerate(x)])


def test_one_euro_matches_the_formula_by_hand():
    o = SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=1.0, beta=0.5, d_cutoff=1.0)
    f = OneEuroFilter(1, o)
    y0 = f.update(np.array([0.0]), 0.0)[0]
    y1 = f.update(np.array([1.0]), 0.1)[0]
    a_d = 1 / (1 + 1 / (2 * math.pi) / 0.1)
    dx = a_d * (1.0 - 0.0) / 0.1
    a = 1 / (1 + 1 / (2 * math.pi * (1.0 + 0.5 * dx)) / 0.1)
    assert y0 == 0.0 and y1 == pytest.approx(a)
    assert smoothing_alpha(1.0, 0.1) == pytest.approx(a_d)


def test_gated_filter_passes_a_clear_expression_and_smooths_rest():
    rng = np.random.default_rng(3)
    n_ch = 40  # 40 noisy copies, averaged, so one unlucky noise draw cannot decide the test
    t = np.arange(600) / FPS
    event = np.where((t >= 5) & (t <= 5.2), 0.3 * (1 - np.cos(2 * np.pi * (t - 5) / 0.2)) / 2, 0.0)
    raw = 0.1 + event[:, None] + rng.normal(0, 0.02, (600, n_ch))
    gated_f = DeviationGatedFilter(n_ch)
    plain_f = OneEuroFilter(n_ch, SmoothingOptions(kind=SmoothingKind.ONE_EURO, min_cutoff=1.0))
    gated = np.array([gated_f.update(raw[i], t[i]) for i in range(600)])
    plain = np.array([plain_f.update(raw[i], t[i]) for i in range(600)])
    rest = (t > 1) & (t < 4.5)
    assert np.std(gated[rest]) < np.std(raw[rest]) / 2  # jitter clearly reduced
    win = (t >= 5) & (t <= 5.3)
    assert gated[win].mean(axis=1).max() - 0.1 > 0.24  # the event comes through (>= 0.8 of the apex)
    assert plain[win].mean(axis=1).max() - 0.1 < 0.2  # where a plain One Euro at 1 Hz flattens it
    assert abs(np.argmax(gated.mean(axis=1)) - np.argmax(event)) <= 1  # at most a frame late


def test_gated_filter_follows_a_step_at_once():
    x = np.r_[np.zeros(60), np.ones(60)]
    y = run(DeviationGatedFilter(1), x)
    assert y[60] == pytest.approx(1.0)  # 1.0 is 50 noise sigmas away: fully open


def test_nan_channels_keep_their_state():
    f = DeviationGatedFilter(2)
    f.update(np.array([0.5, 0.2]), 0.0)
    y = f.update(np.array([np.nan, 0.2]), 1 / FPS)
    assert math.isnan(y[0]) and y[1] == pytest.approx(0.2)
    y = f.update(np.array([0.5, 0.2]), 2 / FPS)
    assert y[0] == pytest.approx(0.5)


def test_reset_and_passthrough_and_factory():
    f = make_filter(3, SmoothingOptions(kind="none"))
    assert isinstance(f, PassThrough)
    np.testing.assert_array_equal(f.update(np.array([1.0, 2.0, 3.0]), 0.0), [1.0, 2.0, 3.0])
    g = make_filter(1)
    g.update(np.array([1.0]), 0.0)
    g.reset()
    assert g.update(np.array([0.0]), 1.0)[0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "median"}, "kind must be one of"),
        ({"min_cutoff": 0.0}, "min_cutoff"),
        ({"beta": -1.0}, "beta"),
        ({"gate_low": 5.0, "gate_high": 2.0}, "gate_low < gate_high"),
        ({"noise_floor": float("nan")}, "noise_floor"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SmoothingOptions(**kwargs)
