"""A seeded synthetic market: equity history, vol surface, dividend yield, yield curve.

The default data source of the project (real sources plug in behind the same shape).
The history is one physical-measure path of a regime (base by default) laid on weekday
dates ending at ``as_of``; the yield curve is the Vasicek zero curve at the last short
rate; the vol surface is a documented parametric smile (not arbitrage-checked):
iv(k, T) = a(T) + rho_sv sigma_v / (4 a(T)) g(T) k + 0.5 c(T) k^2, with k = ln(K / F),
a(T)^2 = theta + (v_0 - theta)(1 - e^{-kappa T}) / (kappa T) the Heston expected
average variance, g(T) = (1 - e^{-kappa T}) / (kappa T) and c(T) = sigma_v^2 g / (8 a^3) (the
short-maturity Heston smile's leading terms, Gatheral 2006, ch. 3).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.market.paths import simulate_scenario
from engine.market.rates import Vasicek
from engine.market.regimes import REGIMES, Regime
from engine.rng import seed_sequence_for

SURFACE_EXPIRIES = (1 / 12, 0.25, 0.5, 1.0, 2.0)
SURFACE_MONEYNESS = (-0.2, -0.1, 0.0, 0.1, 0.2)
CURVE_TENORS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 20.0, 30.0)


@dataclass(frozen=True, slots=True)
class MarketData:
    """``history``: date, close (equity total-return index), bond_close (7y
    constant-maturity index), risk_free (annualised short rate); ``vol_surface``:
    expiry_years, log_moneyness, implied_vol; ``yield_curve``: tenor_years, zero_yield
    (continuously compounded); ``dividend_yield``: annualised."""

    history: pl.DataFrame
    vol_surface: pl.DataFrame
    yield_curve: pl.DataFrame
    dividend_yield: float
    as_of: dt.date


def synthetic_market_data(
    as_of: dt.date, *, years: int = 10, seed: int = 0, regime: Regime | None = None
) -> MarketData:
    """Generate a market as of a date: ``years`` of weekday history and today's curves."""
    regime = regime or REGIMES["base"]
    months = years * 12
    paths = simulate_scenario(
        regime, 1, seed_sequence_for(seed, "market_data", regime.name),
        warmup_months=months % 12, horizon_years=years,
    )
    n_days = paths.n_steps + 1
    dates = weekdays_ending(as_of, n_days)
    history = pl.DataFrame(
        {
            "date": dates,
            "close": 100.0 * paths.equity[0],
            "bond_close": 100.0 * paths.bond[0],
            "risk_free": paths.short_rate[0],
        }
    )
    v0 = float(paths.variance[0, -1])
    curve = vasicek_curve(regime, float(paths.short_rate[0, -1]))
    surface = smile_surface(regime, v0)
    return MarketData(history, surface, curve, regime.dividend_yield, as_of)


def vasicek_curve(regime: Regime, short_rate: float) -> pl.DataFrame:
    """The regime's Vasicek zero curve (tenor_years, zero_yield) at ``short_rate``, at
    the tenors CURVE_TENORS."""
    vasicek = Vasicek(regime.rate_mean_reversion, regime.short_rate, regime.rate_vol,
                      regime.rate_risk_premium)
    return pl.DataFrame(
        {
            "tenor_years": CURVE_TENORS,
            "zero_yield": [float(vasicek.zero_yield(np.array(short_rate), t))
                           for t in CURVE_TENORS],
        }
    )


def smile_surface(regime: Regime, v0: float, *, vol_ratio: float = 1.0) -> pl.DataFrame:
    """The parametric smile of the module docstring at SURFACE_EXPIRIES x
    SURFACE_MONEYNESS, for an equity whose theta and vol of vol are the regime's scaled
    by ``vol_ratio``^2 and ``vol_ratio`` (engine.portfolio.paths.equity_stepper)."""
    rows = [
        (t, k, _smile(regime, v0, t, k, vol_ratio))
        for t in SURFACE_EXPIRIES for k in SURFACE_MONEYNESS
    ]
    return pl.DataFrame(rows, schema=["expiry_years", "log_moneyness", "implied_vol"],
                        orient="row")


def _smile(regime: Regime, v0: float, expiry: float, k: float, vol_ratio: float) -> float:
    kappa = regime.heston_kappa
    theta = regime.variance * vol_ratio * vol_ratio
    sigma = regime.vol_of_vol * vol_ratio
    g = (1.0 - math.exp(-kappa * expiry)) / (kappa * expiry)
    atm = math.sqrt(theta + (v0 - theta) * g)
    skew = regime.spot_variance_corr * sigma / (4.0 * atm) * g
    curvature = sigma**2 / (8.0 * atm**3) * g
    return max(atm + skew * k + 0.5 * curvature * k * k, 0.01)


def weekdays_ending(as_of: dt.date, n: int) -> list[dt.date]:
    """The ``n`` weekdays ending at ``as_of`` (itself included when a weekday), oldest
    first."""
    days: list[dt.date] = []
    day = as_of
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day -= dt.timedelta(days=1)
    return days[::-1]
