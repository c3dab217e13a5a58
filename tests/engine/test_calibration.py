"""engine.market.calibration: estimators recover the parameters of long simulated histories
within Monte Carlo standard errors, tight enough to catch a missing sigma^2 / 2 or a
missing x12 annualisation; the calibrated regime takes each field from its source."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import polars as pl
import pytest

from engine.market.calibration import (
    Calibration,
    calibrate,
    calibrated_regime,
    equity_drift_vol,
    heston_moments,
)
from engine.market.heston_pricing import HestonParams, heston_implied_vols
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES, Regime
from engine.market.yield_curve import curve_from_zero_rates

N_PATHS, YEARS = 100, 30


@pytest.fixture(scope="module")
def bear_paths():
    return simulate_scenario(REGIMES["bear"], N_PATHS, 5, warmup_months=0, horizon_years=YEARS)


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def test_drift_and_vol_across_paths(bear_paths) -> None:
    # bear: mu = -0.05, vol 0.35 (Heston, theta = v0 = 0.35^2). Each estimate is averaged
    # over 100 independent 30-year paths; the truth lies within 4 SE of the average.
    estimates = np.array([equity_drift_vol(path) for path in bear_paths.equity])
    drift, drift_se = _mean_and_se(estimates[:, 0])
    vol, vol_se = _mean_and_se(estimates[:, 1])
    assert abs(drift - (-0.05)) < 4 * drift_se
    # E[std of returns]^2 = theta: the vol estimate's mean is sqrt(theta) up to Jensen
    # (Var(sqrt(mean v)) / (2 sqrt(theta)), under 1e-3 here)
    assert abs(vol - 0.35) < 4 * vol_se + 1e-3
    # power: without the + vol^2 / 2 term the mean would move by 0.061, over 4 SE
    assert 4 * drift_se < 0.35**2 / 2


def test_heston_moments_across_paths(bear_paths) -> None:
    # kappa 2, theta 0.1225, sigma 0.3, rho -0.7: each mean within 4 SE across paths
    estimates = [heston_moments(path) for path in bear_paths.equity]
    truth = {"kappa": 2.0, "theta": 0.35**2, "sigma": 0.3, "rho": -0.7}
    for name, true in truth.items():
        mean, se = _mean_and_se(np.array([e[name] for e in estimates]))
        assert abs(mean - true) < 4 * se, f"{name}: {mean:.4f} vs {true} (SE {se:.4f})"
    # power: a missing x12 (kappa = -ln b per month) would give kappa / 12
    kappa_se = _mean_and_se(np.array([e["kappa"] for e in estimates]))[1]
    assert 4 * kappa_se < 2.0 * (1 - 1 / 12)


def test_near_gbm_history_gives_vol_correlation_and_rate_model() -> None:
    # vol of vol 1e-3: the equity is GBM with vol 0.18 to first order, so the standard
    # errors are the Gaussian ones: SE(vol) = vol / sqrt(2 n), SE(corr) = (1 - rho^2) / sqrt(n)
    regime = Regime("calm", equity_drift=0.08, equity_vol=0.18, short_rate=0.03,
                    equity_bond_corr=-0.4, vol_of_vol=1e-3, rate_mean_reversion=2.0,
                    rate_vol=0.01)
    paths = simulate_scenario(regime, 1, 11, warmup_months=0, horizon_years=40)
    history = pl.DataFrame({"close": paths.equity[0], "bond_close": paths.bond[0],
                            "risk_free": paths.short_rate[0]})
    fitted = calibrate(history)
    n = 40 * 252
    assert abs(fitted.equity_vol - 0.18) < 4 * 0.18 / math.sqrt(2 * n)
    assert abs(fitted.equity_bond_corr - (-0.4)) < 4 * (1 - 0.16) / math.sqrt(n)
    # Vasicek by exact-discretisation OLS: sigma to 4 x sigma / sqrt(2 n); kappa within
    # 4 x its asymptotic SE sqrt(2 kappa / T)
    assert abs(fitted.rate_vol - 0.01) < 4 * 0.01 / math.sqrt(2 * n)
    assert abs(fitted.rate_mean_reversion - 2.0) < 4 * math.sqrt(2 * 2.0 / 40)
    assert fitted.short_rate == history["risk_free"][-1]
    assert fitted.heston_source == "history"
    assert math.isnan(fitted.heston_rmse_vol)
    assert fitted.n_days == n + 1


def test_surface_and_curve_feed_the_calibrated_regime() -> None:
    paths = simulate_scenario(REGIMES["base"], 1, 2, warmup_months=0, horizon_years=3)
    history = pl.DataFrame({"close": paths.equity[0], "bond_close": paths.bond[0],
                            "risk_free": paths.short_rate[0]})
    # the surface: Heston implied vols of known risk-neutral parameters (from the pricer,
    # checked against QuantLib in test_heston_pricing), log-moneyness against the forward
    true = HestonParams(v0=0.05, kappa=1.2, theta=0.06, sigma=0.5, rho=-0.6)
    expiry = np.repeat([0.25, 0.5, 1.0, 2.0], 5)
    k = np.tile([-0.2, -0.1, 0.0, 0.1, 0.2], 4)
    rate, q = 0.025, 0.015
    vols = heston_implied_vols(1.0, np.exp((rate - q) * expiry + k), expiry, true, rate, q)
    surface = pl.DataFrame({"expiry_years": expiry, "log_moneyness": k, "implied_vol": vols})
    curve = curve_from_zero_rates([0.25, 1.0, 10.0], [rate, 0.03, 0.04])
    fitted = calibrate(history, vol_surface=surface, yield_curve=curve, dividend_yield=q)
    assert fitted.heston_source == "surface"
    assert fitted.short_rate == pytest.approx(rate, abs=1e-15)
    np.testing.assert_allclose(
        [fitted.heston_v0, fitted.heston_kappa, fitted.heston_theta, fitted.vol_of_vol,
         fitted.spot_variance_corr], true.as_array(), rtol=1e-4, atol=1e-6)
    assert fitted.heston_rmse_vol < 1e-6
    assert fitted.heston_fit_seconds > 0

    regime = calibrated_regime(fitted, dividend_yield=q)
    assert regime.name == "calibrated"
    assert regime.equity_vol == pytest.approx(math.sqrt(0.06), rel=1e-4)
    assert regime.heston_kappa == pytest.approx(1.2, rel=1e-4)
    assert regime.vol_of_vol == pytest.approx(0.5, rel=1e-4)
    assert regime.spot_variance_corr == pytest.approx(-0.6, rel=1e-4)
    assert regime.short_rate == pytest.approx(rate, abs=1e-15)
    assert regime.equity_drift == fitted.equity_drift
    assert regime.equity_bond_corr == fitted.equity_bond_corr
    assert regime.rate_mean_reversion == min(max(fitted.rate_mean_reversion, 1e-3), 10.0)
    assert regime.dividend_yield == q
    premium = calibrated_regime(fitted, equity_risk_premium=0.05)
    assert premium.equity_drift == pytest.approx(rate + 0.05, abs=1e-15)


def test_missing_estimates_fall_back_and_values_are_clipped() -> None:
    values = dict.fromkeys(Calibration.__dataclass_fields__, float("nan"))
    values |= {"equity_drift": 3.0, "heston_theta": 0.04, "short_rate": 0.02,
               "heston_source": "history", "n_days": 300}
    regime = calibrated_regime(Calibration(**values))
    base = REGIMES["base"]
    assert regime.equity_drift == 1.0  # clipped into the Regime's [-1, 1]
    assert regime.equity_vol == pytest.approx(0.2, abs=1e-15)
    assert regime.equity_bond_corr == base.equity_bond_corr  # NaN: the fallback's
    assert regime.heston_kappa == base.heston_kappa
    assert regime.rate_vol == base.rate_vol


def test_apply_dynamics_keeps_the_regime_level() -> None:
    fitted = Calibration(
        equity_drift=0.1, equity_vol=0.2, heston_v0=0.04, heston_kappa=3.0, heston_theta=0.04,
        vol_of_vol=0.4, spot_variance_corr=-0.5, equity_bond_corr=-0.2, short_rate=0.02,
        rate_mean_reversion=0.3, rate_mean=0.02, rate_vol=0.015, heston_rmse_vol=float("nan"),
        heston_fit_seconds=float("nan"), heston_source="history", n_days=1000)
    regime = fitted.apply_dynamics(REGIMES["bear"])
    assert regime.equity_vol == REGIMES["bear"].equity_vol
    assert (regime.heston_kappa, regime.vol_of_vol, regime.spot_variance_corr,
            regime.rate_vol) == (3.0, 0.4, -0.5, 0.015)


def test_calibration_survives_the_round_trip_through_a_stored_table() -> None:
    """The Dagster layer stores ``to_dict()`` as a one-row Parquet table and rebuilds the
    Calibration from the row: every field comes back equal (NaN as NaN)."""
    fitted = Calibration(
        equity_drift=0.1, equity_vol=0.2, heston_v0=0.04, heston_kappa=3.0, heston_theta=0.05,
        vol_of_vol=0.4, spot_variance_corr=-0.5, equity_bond_corr=-0.2, short_rate=0.02,
        rate_mean_reversion=0.3, rate_mean=0.025, rate_vol=0.015, heston_rmse_vol=0.002,
        heston_fit_seconds=float("nan"), heston_source="surface", n_days=1000)
    buffer = io.BytesIO()
    pl.DataFrame([fitted.to_dict()]).write_parquet(buffer)
    buffer.seek(0)
    back = Calibration(**pl.read_parquet(buffer).row(0, named=True))
    assert math.isnan(back.heston_fit_seconds)
    assert dataclasses.replace(back, heston_fit_seconds=0.0) == dataclasses.replace(
        fitted, heston_fit_seconds=0.0)


def test_too_short_history_is_rejected() -> None:
    short = pl.DataFrame({"close": np.ones(100), "bond_close": np.ones(100),
                          "risk_free": np.zeros(100)})
    with pytest.raises(ValueError, match="at least 274 daily rows; got 100"):
        calibrate(short)
