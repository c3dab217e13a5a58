"""Performance and risk metrics on small hand-computed series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.strategy.metrics import (
    annualised_return,
    annualised_vol,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    summarise,
    var_cvar,
)

NAV = np.array([1.0, 1.2, 0.9, 1.1, 0.6, 0.8])


def test_max_drawdown_hand_series():
    # Peak 1.2, trough 0.6 after it: 1 - 0.6 / 1.2 = 0.5.
    np.testing.assert_allclose(max_drawdown(NAV), 0.5, rtol=1e-15)


def test_max_drawdown_with_initial_nav():
    # A NAV of 2 before the series: the peak starts at 2 and the trough 0.6 gives 0.7;
    # an initial value below the first NAV changes nothing.
    np.testing.assert_allclose(max_drawdown(NAV, initial=2.0), 0.7, rtol=1e-15)
    np.testing.assert_allclose(max_drawdown(NAV, initial=0.5), 0.5, rtol=1e-15)
    # A series that only falls from its initial value: 1 - 0.8 / 1 = 0.2.
    np.testing.assert_allclose(max_drawdown(np.array([0.9, 0.8]), initial=1.0), 0.2,
                               rtol=1e-15)


def test_max_drawdown_rising_series_and_batches():
    batch = np.stack([NAV, np.array([1.0, 1.1, 1.2, 1.3, 1.4, 1.5])])
    np.testing.assert_allclose(max_drawdown(batch), [0.5, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(max_drawdown(batch[None]), [[0.5, 0.0]], rtol=0, atol=1e-15)


def test_var_cvar_twenty_values():
    # n = 20: k = ceil(0.05 x 20) = 1, so VaR = CVaR = minus the worst return (-0.09).
    returns = np.array([0.01 * i for i in range(-9, 11)])
    rng = np.random.default_rng(0)
    var, cvar = var_cvar(rng.permutation(returns))
    np.testing.assert_allclose([var, cvar], [0.09, 0.09], rtol=1e-14)


def test_var_cvar_sixty_values():
    # n = 60: k = ceil(0.05 x 60) = 3; the three worst are -0.12, -0.08, -0.07, so
    # VaR = 0.07 and CVaR = (0.12 + 0.08 + 0.07) / 3 = 0.09.
    rest = np.linspace(-0.06, 0.08, 57)
    returns = np.concatenate([[-0.08, -0.12, -0.07], rest])
    rng = np.random.default_rng(1)
    var, cvar = var_cvar(rng.permutation(returns))
    np.testing.assert_allclose([var, cvar], [0.07, 0.09], rtol=1e-14)
    # A second path shifted up by 0.01 a month: VaR 0.06, CVaR 0.08.
    var_b, cvar_b = var_cvar(np.stack([returns, returns + 0.01]))
    np.testing.assert_allclose(var_b, [0.07, 0.06], rtol=1e-12)
    np.testing.assert_allclose(cvar_b, [0.09, 0.08], rtol=1e-12)


def test_annualised_return_of_one_percent_a_month():
    # Twelve months of 1%: (1.01)^12 - 1; 24 months gives the same annual rate.
    np.testing.assert_allclose(annualised_return(np.full(12, 0.01)), 1.01**12 - 1, rtol=1e-13)
    np.testing.assert_allclose(annualised_return(np.full((2, 24), 0.01)), [1.01**12 - 1] * 2,
                               rtol=1e-13)
    # Geometric, not arithmetic: +10% then -10% over 2 months is (0.99)^6 - 1 a year.
    np.testing.assert_allclose(annualised_return(np.array([0.1, -0.1])), 0.99**6 - 1,
                               rtol=1e-13)


def test_annualised_vol_hand_series():
    # Returns 0.02, -0.01, 0.03, 0.00: mean 0.01, squared deviations sum 0.001, s^2 = 0.001/3.
    x = np.array([0.02, -0.01, 0.03, 0.00])
    np.testing.assert_allclose(annualised_vol(x), math.sqrt(0.001 / 3) * math.sqrt(12),
                               rtol=1e-13)


def test_sharpe_and_sortino_hand_series():
    x = np.array([0.02, -0.01, 0.03, 0.00])
    # Sharpe = sqrt(12) x 0.01 / sqrt(0.001 / 3) = sqrt(3.6).
    np.testing.assert_allclose(sharpe_ratio(x), math.sqrt(3.6), rtol=1e-13)
    # Downside deviation = sqrt(mean(0, 0.0001, 0, 0)) = 0.005; Sortino = sqrt(12) x 2.
    np.testing.assert_allclose(sortino_ratio(x), 2 * math.sqrt(12), rtol=1e-13)


def test_sharpe_and_sortino_degenerate_series_are_nan():
    flat = np.full((1, 6), 0.01)
    assert np.isnan(sharpe_ratio(flat)).all()
    assert np.isnan(sortino_ratio(flat)).all()


def test_summarise_ignores_nan():
    # Values 1..5 and a NaN: mean 3, median 3, linear-interpolated p5 = 1 + 0.05 x 4 = 1.2,
    # p95 = 1 + 0.95 x 4 = 4.8 (numpy's default percentile).
    values = np.array([[5.0, np.nan, 1.0, 3.0, 2.0, 4.0], [np.nan] * 6])
    stats = summarise(values)
    assert list(stats) == ["mean", "median", "p5", "p95"]
    np.testing.assert_allclose(
        [stats["mean"][0], stats["median"][0], stats["p5"][0], stats["p95"][0]],
        [3.0, 3.0, 1.2, 4.8],
        rtol=1e-14,
    )
    for stat in stats.values():
        assert np.isnan(stat[1])


@pytest.mark.parametrize("n", [1, 12, 60])
def test_var_le_cvar(n):
    rng = np.random.default_rng(n)
    var, cvar = var_cvar(rng.normal(0.005, 0.04, (50, n)))
    assert np.all(cvar >= var)


@pytest.mark.parametrize(
    ("n", "level", "k"),
    [
        (30, 0.95, 2),   # 0.05 x 30 = 1.5 -> k = 2
        (59, 0.95, 3),   # 2.95 -> 3
        (61, 0.95, 4),   # 3.05 -> 4
        (37, 0.99, 1),   # 0.37 -> 1
        (45, 0.90, 5),   # 4.5 -> 5
        (20, 0.90, 2),   # 0.1 x 20 = 2.0000000000000004 in floating point: still 2
    ],
)
def test_var_cvar_when_the_tail_count_is_not_whole(n, level, k):
    # hand computation of the documented definition: with returns -0.01 x (n - i) shifted
    # so the i-th worst is known, VaR is minus the k-th worst (the empirical quantile
    # inf{x : F_n(x) >= 1 - level}) and CVaR minus the mean of the k worst.
    returns = np.round(0.001 * np.arange(n) - 0.05, 12)  # worst = -0.05, then -0.049, ...
    rng = np.random.default_rng(n)
    var, cvar = var_cvar(rng.permutation(returns), level)
    worst = -0.05 + 0.001 * np.arange(k)
    assert var == pytest.approx(-worst[-1], abs=1e-15)
    assert cvar == pytest.approx(-worst.mean(), abs=1e-15)
