"""Scenario paths: shapes, calendar, closed-form moments and correlations within MC error."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.conventions import DT_DAY
from engine.market.paths import simulate_scenario
from engine.market.rates import Vasicek
from engine.market.regimes import REGIMES, Regime

K_SE = 4.0
BASE = REGIMES["base"]


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


@pytest.fixture(scope="module")
def physical():
    """Base regime, physical measure, 10,000 paths over one year, no warm-up."""
    return simulate_scenario(BASE, n_paths=10_000, seed=101, warmup_months=0, horizon_years=1)


@pytest.fixture(scope="module")
def risk_neutral():
    return simulate_scenario(BASE, n_paths=10_000, seed=202, warmup_months=0, horizon_years=1,
                             measure="risk_neutral")


def test_shapes_and_month_ends():
    paths = simulate_scenario(BASE, n_paths=6, seed=1, warmup_months=2, horizon_years=1)
    n_steps = (2 + 12) * 21
    for name in ("equity", "variance", "short_rate", "bond", "cash"):
        assert getattr(paths, name).shape == (6, n_steps + 1), name
    assert (paths.n_paths, paths.n_steps, paths.n_months) == (6, n_steps, 14)
    np.testing.assert_array_equal(paths.month_ends, np.arange(0, n_steps + 1, 21))
    assert paths.month_ends.dtype == np.int64
    for name in ("equity", "bond", "cash"):
        np.testing.assert_array_equal(getattr(paths, name)[:, 0], 1.0)
    np.testing.assert_array_equal(paths.variance[:, 0], BASE.variance)
    np.testing.assert_array_equal(paths.short_rate[:, 0], BASE.short_rate)
    assert paths.nbytes == 5 * 6 * (n_steps + 1) * 8
    assert (paths.warmup_months, paths.measure, paths.bond_maturity) == (2, "physical", 7.0)


def test_cash_accrues_the_path_short_rate(physical):
    # cash_t = exp(sum_{s<t} r_s dt): the money-market account at the rate fixed each day.
    expected = np.exp(np.cumsum(physical.short_rate[:, :-1] * DT_DAY, axis=1))
    np.testing.assert_allclose(physical.cash[:, 1:], expected, rtol=1e-12)


def test_physical_equity_mean_grows_at_the_drift(physical):
    # Regime docstring: E[S_T] = S_0 e^{mu T} with mu = equity_drift (QE with the martingale
    # correction makes this exact for the discretised process); T = 1.
    mean, se = _mean_se(physical.equity[:, -1])
    np.testing.assert_allclose(mean, math.exp(BASE.equity_drift), rtol=0, atol=K_SE * se)


def test_short_rate_vasicek_moments(physical):
    # Reference: Vasicek closed forms, r_0 = theta = regime.short_rate, T = 1 year.
    model = Vasicek(BASE.rate_mean_reversion, BASE.short_rate, BASE.rate_vol)
    r_t = physical.short_rate[:, -1]
    mean, se = _mean_se(r_t)
    np.testing.assert_allclose(mean, model.mean(BASE.short_rate, 1.0), rtol=0, atol=K_SE * se)
    expected_var = model.variance(1.0)
    var_se = expected_var * math.sqrt(2.0 / (r_t.size - 1))  # r_T is Gaussian
    np.testing.assert_allclose(r_t.var(ddof=1), expected_var, rtol=0, atol=K_SE * var_se)


def test_risk_neutral_discounted_equity_is_a_martingale(risk_neutral):
    # Under the risk-neutral measure the drift is r_t - q and cash accrues r_t dt, so
    # S_t / cash_t e^{q t} is a martingale: E[S_T / cash_T] = e^{-q T}, T = 1.
    ratio = risk_neutral.equity[:, -1] / risk_neutral.cash[:, -1]
    mean, se = _mean_se(ratio)
    np.testing.assert_allclose(mean, math.exp(-BASE.dividend_yield), rtol=0, atol=K_SE * se)
    assert risk_neutral.measure == "risk_neutral"


def test_risk_neutral_short_rate_reverts_to_theta_q(risk_neutral):
    # Under the pricing measure the rate reverts to theta_Q = theta + lam sigma / kappa
    # (engine.market.rates module docstring); Vasicek mean and variance closed forms, T = 1.
    model = Vasicek(BASE.rate_mean_reversion, BASE.short_rate, BASE.rate_vol,
                    BASE.rate_risk_premium)
    pricing = Vasicek(model.kappa, model.theta_q, model.sigma)
    r_t = risk_neutral.short_rate[:, -1]
    mean, se = _mean_se(r_t)
    np.testing.assert_allclose(mean, pricing.mean(BASE.short_rate, 1.0), rtol=0,
                               atol=K_SE * se)
    var_se = pricing.variance(1.0) * math.sqrt(2.0 / (r_t.size - 1))
    np.testing.assert_allclose(r_t.var(ddof=1), pricing.variance(1.0), rtol=0,
                               atol=K_SE * var_se)


def test_risk_neutral_discounted_bond_is_a_martingale(risk_neutral):
    # The bond index reprices zeros exactly under the rate's pricing dynamics, so
    # E[bond_T / cash_T] = 1. Cash accrues the rate fixed at the start of each day, a
    # discretisation gap of order sigma_r^2 B dt per year (about 1e-6), far below the SE
    # (about 4e-4 here). Under the physical measure the term premium lam sigma_r B, about
    # 1.2% a year, would sit some 25 SE away.
    ratio = risk_neutral.bond[:, -1] / risk_neutral.cash[:, -1]
    mean, se = _mean_se(ratio)
    np.testing.assert_allclose(mean, 1.0, rtol=0, atol=K_SE * se)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.5])
def test_equity_bond_correlation_matches_regime(rho):
    # With vol_of_vol = 1e-3 the variance stays at theta and daily equity log returns are
    # Gaussian; bond log returns are -B dr plus a carry, so corr(equity, bond) = rho
    # (docs/regimes.md: the rate shock has correlation -rho with the equity shock). Daily
    # returns are independent across days and paths, so N = n_paths x n_days samples and
    # the SE of a bivariate-normal sample correlation is about (1 - rho^2) / sqrt(N).
    regime = Regime("corr_check", equity_drift=0.05, equity_vol=0.2, short_rate=0.03,
                    equity_bond_corr=rho, vol_of_vol=1e-3)
    paths = simulate_scenario(regime, n_paths=1000, seed=303, warmup_months=0, horizon_years=1)
    eq = np.diff(np.log(paths.equity), axis=1).ravel()
    bond = np.diff(np.log(paths.bond), axis=1).ravel()
    se = (1 - rho**2) / math.sqrt(eq.size)
    np.testing.assert_allclose(np.corrcoef(eq, bond)[0, 1], rho, rtol=0, atol=K_SE * se)


def test_same_seed_gives_identical_bits():
    a = simulate_scenario(BASE, n_paths=8, seed=42, warmup_months=1, horizon_years=1)
    b = simulate_scenario(BASE, n_paths=8, seed=42, warmup_months=1, horizon_years=1)
    c = simulate_scenario(BASE, n_paths=8, seed=43, warmup_months=1, horizon_years=1)
    for name in ("equity", "variance", "short_rate", "bond", "cash"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.equity, c.equity)


def test_regimes_get_different_streams_from_one_seed():
    # The int seed is combined with the regime name, so two regimes with identical
    # parameters but different names draw different shocks.
    twin = dataclasses.replace(BASE, name="base_twin")
    a = simulate_scenario(BASE, n_paths=8, seed=42, warmup_months=1, horizon_years=1)
    b = simulate_scenario(twin, n_paths=8, seed=42, warmup_months=1, horizon_years=1)
    assert not np.array_equal(a.equity, b.equity)
    assert not np.array_equal(a.short_rate, b.short_rate)


def test_generator_seed_is_used_as_given():
    a = simulate_scenario(BASE, n_paths=4, seed=np.random.default_rng(5), warmup_months=1,
                          horizon_years=1)
    b = simulate_scenario(BASE, n_paths=4, seed=np.random.default_rng(5), warmup_months=1,
                          horizon_years=1)
    assert np.array_equal(a.equity, b.equity)


def test_antithetic_short_rate_paths_mirror():
    # r_0 = theta and the exact step r_{t+1} - theta = (r_t - theta) e^{-k dt} + s z is
    # linear in the shocks, so antithetic partners mirror around theta on every day.
    paths = simulate_scenario(BASE, n_paths=10, seed=7, warmup_months=0, horizon_years=1,
                              antithetic=True)
    dev = paths.short_rate - BASE.short_rate
    np.testing.assert_allclose(dev[5:], -dev[:5], rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="even"):
        simulate_scenario(BASE, n_paths=9, seed=7, antithetic=True)


def test_euler_scheme_runs():
    paths = simulate_scenario(BASE, n_paths=4, seed=1, warmup_months=0, horizon_years=1,
                              scheme="euler")
    assert np.all(np.isfinite(paths.equity)) and np.all(paths.variance >= 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"measure": "q_forward"},
        {"n_paths": 0},
        {"warmup_months": -1},
        {"horizon_years": 0},
        {"bond_maturity": 0.0},
        {"bond_maturity": 51.0},
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        simulate_scenario(BASE, **{"n_paths": 2, "seed": 0, **kwargs})
