"""Portfolio paths: the two-asset default, and for every asset of a 3-equity, 3-bucket,
cash portfolio the martingale, drift, realised-variance and correlation checks within
Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.conventions import DT_DAY
from engine.market.paths import simulate_scenario
from engine.market.rates import Vasicek
from engine.market.regimes import REGIMES
from engine.portfolio.paths import driver_correlation, path_arrays, simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec

K_SE = 4.0
BASE = REGIMES["base"]
CORR = ((1.0, 0.7, 0.4), (0.7, 1.0, 0.55), (0.4, 0.55, 1.0))
SPEC = PortfolioSpec(
    assets=(
        Asset("us", "equity"),
        Asset("eu", "equity", vol_ratio=1.25, drift_spread=0.01),
        Asset("em", "equity", vol_ratio=1.6, drift_spread=-0.02),
        Asset("ust2", "government_bond", maturity_years=2.0),
        Asset("ust5", "government_bond", maturity_years=5.0, roll="monthly"),
        Asset("ust10", "government_bond", maturity_years=10.0, coupon_rate=0.03),
        Asset("cash", "cash"),
    ),
    equity_correlation=CORR,
)
EQUITIES = ("us", "eu", "em")


def _mean_se(x):
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


@pytest.fixture(scope="module")
def risk_neutral():
    return simulate_portfolio(SPEC, BASE, 6000, 11, warmup_months=0, horizon_years=1,
                              measure="risk_neutral")


@pytest.fixture(scope="module")
def physical():
    return simulate_portfolio(SPEC, BASE, 6000, 12, warmup_months=0, horizon_years=1)


def test_two_asset_spec_is_simulate_scenario_bit_for_bit():
    got = simulate_portfolio(TWO_ASSET, BASE, 8, 5, warmup_months=2, horizon_years=1)
    ref = simulate_scenario(BASE, 8, 5, warmup_months=2, horizon_years=1)
    assert np.array_equal(got.levels[0], ref.equity)
    assert np.array_equal(got.levels[1], ref.bond)
    assert np.array_equal(got.cash, ref.cash)
    assert got.names == ("equity", "bond")


def test_one_equity_driver_correlation_is_the_regimes():
    one = PortfolioSpec((Asset("us", "equity"), Asset("b", "government_bond",
                                                      maturity_years=3.0, roll="monthly")))
    assert np.array_equal(driver_correlation(one, BASE), BASE.shock_correlation())


def test_shapes_and_order(risk_neutral):
    assert risk_neutral.names == ("us", "eu", "em", "ust2", "ust5", "ust10", "cash")
    assert risk_neutral.levels.shape == (7, 6000, 253)
    assert risk_neutral.variance.shape == (3, 6000, 253)
    np.testing.assert_array_equal(risk_neutral.levels[:, :, 0], 1.0)
    np.testing.assert_allclose(risk_neutral.levels[-1], risk_neutral.cash, rtol=1e-15)


def test_path_arrays_counts_every_stored_daily_array(risk_neutral):
    """The memory guard's count: 7 levels + 3 variances + rate + cash = 12 arrays of
    n_paths x (n_steps + 1) float64; the two-asset study's 5."""
    stored = (risk_neutral.levels, risk_neutral.variance, risk_neutral.short_rate,
              risk_neutral.cash)
    one_array = risk_neutral.n_paths * (risk_neutral.n_steps + 1) * 8
    assert sum(a.nbytes for a in stored) == path_arrays(SPEC) * one_array == 12 * one_array
    two = simulate_scenario(BASE, 8, 5, warmup_months=0, horizon_years=1)
    assert path_arrays(TWO_ASSET) * two.equity.nbytes == two.nbytes


@pytest.mark.parametrize("i", range(6))
def test_risk_neutral_discounted_asset_is_a_martingale(risk_neutral, i):
    # Equities earn r - q under the pricing measure: E[S_T / cash_T] = e^{-q T}; every bond
    # bucket is repriced in closed form under the same measure: E[B_T / cash_T] = 1; T = 1.
    ratio = risk_neutral.levels[i, :, -1] / risk_neutral.cash[:, -1]
    expected = math.exp(-BASE.dividend_yield) if i < 3 else 1.0
    mean, se = _mean_se(ratio)
    np.testing.assert_allclose(mean, expected, rtol=0, atol=K_SE * se)


@pytest.mark.parametrize("i", range(3))
def test_physical_equity_grows_at_its_drift(physical, i):
    mean, se = _mean_se(physical.levels[i, :, -1])
    drift = BASE.equity_drift + SPEC.equities[i].drift_spread
    np.testing.assert_allclose(mean, math.exp(drift), rtol=0, atol=K_SE * se)


@pytest.mark.parametrize("i", range(3))
def test_realised_variance_is_the_equitys_theta(physical, i):
    # v_0 = theta_i so E[v_t] = theta_i = (vol_ratio x equity_vol)^2 and the year's sum of
    # squared daily log returns has mean theta_i + E[(mu - v/2)^2] dt (the drift term, ~1e-5).
    theta = BASE.variance * SPEC.equities[i].vol_ratio ** 2
    drift = BASE.equity_drift + SPEC.equities[i].drift_spread
    rv = (np.diff(np.log(physical.levels[i]), axis=1) ** 2).sum(axis=1)
    mean, se = _mean_se(rv)
    expected = theta + (drift - theta / 2) ** 2 * DT_DAY
    np.testing.assert_allclose(mean, expected, rtol=0, atol=K_SE * se)


def test_spot_and_rate_drivers_have_the_specified_correlation():
    # Euler scheme: the spot shock of each day is recovered exactly,
    # z_S = (ln S_{t+1}/S_t - (mu - v^+/2) dt) / sqrt(v^+ dt), and the rate shock from the
    # exact Vasicek step; their sample correlation matrix matches C (and -rho_eb with the
    # rate) within 4 SE, SE = (1 - rho^2) / sqrt(N) for N = paths x days samples.
    paths = simulate_portfolio(SPEC, BASE, 2000, 21, warmup_months=0, horizon_years=1,
                               scheme="euler")
    # (days where an Euler variance sits at its floor 0 carry no spot shock and are left out)
    live = (paths.variance[:, :, :-1] > 0).all(axis=0)
    shocks = []
    for i, asset in enumerate(SPEC.equities):
        v = paths.variance[i, :, :-1][live]
        lr = np.diff(np.log(paths.levels[i]), axis=1)[live]
        drift = BASE.equity_drift + asset.drift_spread
        shocks.append((lr - (drift - 0.5 * v) * DT_DAY) / np.sqrt(v * DT_DAY))
    model = Vasicek(BASE.rate_mean_reversion, BASE.short_rate, BASE.rate_vol)
    r = paths.short_rate
    decay = math.exp(-model.kappa * DT_DAY)
    z_r = (r[:, 1:] - model.theta - (r[:, :-1] - model.theta) * decay) / math.sqrt(
        model.variance(DT_DAY))
    shocks.append(z_r[live])
    sample = np.corrcoef(np.array(shocks))
    expected = np.ones((4, 4))
    expected[:3, :3] = CORR
    expected[:3, 3] = expected[3, :3] = -BASE.equity_bond_corr
    se = (1 - expected**2) / math.sqrt(shocks[0].size)
    assert np.all(np.abs(sample - expected) <= K_SE * se + 1e-12)


def test_bond_buckets_are_priced_off_the_simulated_rate(physical):
    model = Vasicek(BASE.rate_mean_reversion, BASE.short_rate, BASE.rate_vol,
                    BASE.rate_risk_premium)
    r = physical.short_rate
    expected = np.exp(np.cumsum(model.index_log_return(r[:, :-1], r[:, 1:], 2.0, DT_DAY),
                                axis=1))
    np.testing.assert_allclose(physical.levels[3, :, 1:], expected, rtol=1e-12)


def test_incompatible_rate_correlation_raises():
    # Each equity alone is fine with the rate (|corr| 0.5), but two equities at -0.5 to
    # each other cannot both have +0.5 with the rate: q^2 1'C^{-1}1 = 0.25 x 5 > 1.
    spec = PortfolioSpec(SPEC.assets, equity_correlation=((1, -.5, 0), (-.5, 1, 0),
                                                          (0, 0, 1)))
    regime = REGIMES["base"].__class__("tight", 0.05, 0.2, 0.03, equity_bond_corr=-0.5)
    with pytest.raises(ValueError, match="equity_bond_corr"):
        simulate_portfolio(spec, regime, 4, 0, horizon_years=1)
