"""engine.market.calibration: moment estimators against the regime that generated the data."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.market.calibration import calibrate
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES, Regime

YEARS = 40


def _history(regime: Regime, seed: int) -> pl.DataFrame:
    paths = simulate_scenario(regime, 1, seed, warmup_months=0, horizon_years=YEARS)
    return pl.DataFrame({"close": paths.equity[0], "bond_close": paths.bond[0],
                         "risk_free": paths.short_rate[0]})


def test_recovers_vol_drift_and_correlation_of_a_near_gbm_regime() -> None:
    # vol of vol 1e-3: the equity is GBM with vol 0.18 to first order, so the
    # estimators' standard errors are the Gaussian ones:
    # SE(vol) = vol / sqrt(2 n), SE(corr) = (1 - rho^2) / sqrt(n), SE(mu) = vol / sqrt(T).
    regime = Regime("calm", equity_drift=0.08, equity_vol=0.18, short_rate=0.03,
                    equity_bond_corr=-0.4, vol_of_vol=1e-3)
    fitted = calibrate(_history(regime, seed=11))
    n = YEARS * 252
    assert abs(fitted.equity_vol - 0.18) < 4 * 0.18 / math.sqrt(2 * n)
    assert abs(fitted.equity_drift - 0.08) < 4 * 0.18 / math.sqrt(YEARS)
    assert abs(fitted.equity_bond_corr - (-0.4)) < 4 * (1 - 0.16) / math.sqrt(n)
    # daily rate changes: sd sigma_r sqrt(dt) up to O(kappa dt); SE of an sd ~ sd/sqrt(2n)
    assert abs(fitted.rate_vol - 0.01) < 4 * 0.01 / math.sqrt(2 * n) + 1e-4
    assert fitted.n_days == n + 1


def test_heston_dynamics_have_the_right_signs_and_stay_in_range() -> None:
    fitted = calibrate(_history(REGIMES["bear"], seed=12))
    assert fitted.spot_variance_corr < 0.0  # generated with rho_sv = -0.7
    assert 0.1 <= fitted.heston_kappa <= 50.0
    assert 0.01 <= fitted.vol_of_vol <= 5.0
    regime = fitted.apply_dynamics(REGIMES["bear"])
    assert regime.equity_vol == REGIMES["bear"].equity_vol
    assert regime.heston_kappa == fitted.heston_kappa
    assert regime.vol_of_vol == fitted.vol_of_vol


def test_too_short_history_is_rejected() -> None:
    short = pl.DataFrame({"close": np.ones(100), "bond_close": np.ones(100),
                          "risk_free": np.zeros(100)})
    with pytest.raises(ValueError, match="at least 274 daily rows; got 100"):
        calibrate(short)
