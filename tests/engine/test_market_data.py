"""engine.market.market_data: the seeded synthetic market."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from engine.market.market_data import synthetic_market_data
from engine.market.rates import Vasicek
from engine.market.regimes import REGIMES

AS_OF = dt.date(2026, 11, 20)  # a Friday


def test_history_is_weekdays_ending_at_as_of() -> None:
    market = synthetic_market_data(AS_OF, years=3, seed=1)
    dates = market.history["date"]
    assert market.history.height == 3 * 252 + 1
    assert dates[-1] == AS_OF
    assert (dates.dt.weekday() <= 5).all()
    assert (dates.diff().drop_nulls().dt.total_days() > 0).all()
    assert market.history.null_count().sum_horizontal()[0] == 0
    assert (market.history["close"] > 0).all() and (market.history["bond_close"] > 0).all()


def test_same_seed_same_market_and_other_seed_differs() -> None:
    first = synthetic_market_data(AS_OF, years=2, seed=3)
    again = synthetic_market_data(AS_OF, years=2, seed=3)
    other = synthetic_market_data(AS_OF, years=2, seed=4)
    assert first.history.equals(again.history)
    assert first.vol_surface.equals(again.vol_surface)
    assert not first.history.equals(other.history)


def test_yield_curve_is_the_vasicek_curve_at_the_last_rate() -> None:
    regime = REGIMES["base"]
    market = synthetic_market_data(AS_OF, years=2, seed=5)
    r_last = market.history["risk_free"][-1]
    vasicek = Vasicek(regime.rate_mean_reversion, regime.short_rate, regime.rate_vol,
                      regime.rate_risk_premium)
    expected = [float(vasicek.zero_yield(np.array(r_last), t))
                for t in market.yield_curve["tenor_years"]]
    np.testing.assert_allclose(market.yield_curve["zero_yield"], expected, rtol=1e-14)
    # a short tenor's yield is close to the short rate itself (y -> r as tau -> 0)
    assert abs(market.yield_curve["zero_yield"][0] - r_last) < 0.002


def test_vol_surface_atm_is_the_expected_average_variance_and_skew_is_negative() -> None:
    regime = REGIMES["base"]
    market = synthetic_market_data(AS_OF, years=2, seed=6)
    # v_last is not stored; recover it from the 1y ATM: a^2 = theta + (v - theta) g
    surface = market.vol_surface
    atm = surface.filter(pl.col("log_moneyness") == 0.0).sort("expiry_years")
    kappa, theta = regime.heston_kappa, regime.variance
    g = [(1 - math.exp(-kappa * t)) / (kappa * t) for t in atm["expiry_years"]]
    v_last = theta + (atm["implied_vol"][3] ** 2 - theta) / g[3]
    expected = [math.sqrt(theta + (v_last - theta) * gi) for gi in g]
    np.testing.assert_allclose(atm["implied_vol"], expected, rtol=1e-12)
    for _, rows in surface.group_by("expiry_years"):
        ordered = rows.sort("log_moneyness")["implied_vol"]
        assert ordered[0] > ordered[2]  # rho_sv < 0: puts richer than the money
    assert market.dividend_yield == regime.dividend_yield
