"""Trailing realized volatility against a slow plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.strategy.rolling import trailing_realized_vol


def _slow_trailing_vol(levels: np.ndarray, ends: list[int], n: int) -> np.ndarray:
    """Plain loop: sqrt(252) x std (ddof = 1) of the n log returns ending at each end."""
    out = np.empty((levels.shape[0], len(ends)))
    for p in range(levels.shape[0]):
        for j, e in enumerate(ends):
            window = levels[p, e - n : e + 1]
            log_returns = np.log(window[1:] / window[:-1])
            out[p, j] = np.std(log_returns, ddof=1) * math.sqrt(252)
    return out


@pytest.mark.parametrize("window", [2, 21, 63, 252])
def test_matches_plain_loop_on_random_levels(window):
    rng = np.random.default_rng(12)
    n_days = 600
    # GBM-like levels with a strong drift, to exercise the one-pass variance formula.
    daily = 0.3 / math.sqrt(252) * rng.standard_normal((5, n_days)) + 0.002
    levels = 50.0 * np.exp(np.concatenate([np.zeros((5, 1)), np.cumsum(daily, 1)], 1))
    ends = [window, window + 1, 300, 441, n_days]
    np.testing.assert_allclose(
        trailing_realized_vol(levels, np.array(ends), window),
        _slow_trailing_vol(levels, ends, window),
        rtol=1e-9,
        atol=0,
    )


def test_constant_growth_has_zero_vol():
    levels = 1.01 ** np.arange(100.0)[None, :]
    np.testing.assert_allclose(trailing_realized_vol(levels, np.array([50, 99]), 21), 0.0,
                               rtol=0, atol=1e-7)


def test_hand_values():
    # Log returns alternate +a, -a over a window of 2: mean 0, s^2 = 2 a^2, vol = a sqrt(504).
    a = 0.01
    levels = np.exp(np.array([[0.0, a, 0.0, a, 0.0]]))
    np.testing.assert_allclose(trailing_realized_vol(levels, np.array([2, 4]), 2),
                               [[a * math.sqrt(2 * 252)] * 2], rtol=1e-10)


def test_window_longer_than_history_raises():
    levels = np.ones((2, 30))
    with pytest.raises(ValueError, match="needs every end >= 21"):
        trailing_realized_vol(levels, np.array([20, 29]), 21)
    with pytest.raises(ValueError, match="at least 2"):
        trailing_realized_vol(levels, np.array([20]), 1)
