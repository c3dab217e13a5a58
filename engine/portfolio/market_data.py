"""A seeded synthetic market for a whole portfolio: one path of every asset on weekdays.

The multi-asset counterpart of :func:`engine.market.market_data.synthetic_market_data`:
one physical-measure path of :func:`engine.portfolio.paths.simulate_portfolio` (the
equities' correlated Heston dynamics, the bond buckets repriced off the Vasicek short
rate, cash) laid on the weekday dates ending at ``as_of``, the regime's Vasicek zero curve
at the path's last short rate and the first equity's parametric smile.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine.market.market_data import (
    MarketData,
    smile_surface,
    vasicek_curve,
    weekdays_ending,
)
from engine.market.regimes import REGIMES, Regime
from engine.portfolio.paths import simulate_portfolio
from engine.portfolio.spec import PortfolioSpec
from engine.rng import as_generator, seed_sequence_for

INDEX_START = 100.0
"""Every synthetic index level starts here."""


def synthetic_portfolio_data(
    spec: PortfolioSpec, as_of: dt.date, *, years: int = 10, seed: int = 0,
    regime: Regime | None = None,
) -> MarketData:
    """``years`` x 252 + 1 weekday rows ending at ``as_of`` of every asset of ``spec``.

    Returns
    -------
    MarketData whose ``history`` has date, one level column per asset of
    ``spec.ordered`` except cash, named by the asset (INDEX_START x the simulated
    total-return index), and risk_free (the simulated short rate, annualised decimal);
    ``yield_curve`` the Vasicek zero curve at the last short rate; ``vol_surface`` the
    first equity's smile at its last variance; ``dividend_yield`` the regime's.

    Notes
    -----
    The draws come from SeedSequence(seed, "market_data", regime name), the stream of the
    two-asset synthetic market, so the same (seed, as_of) gives the same bits.
    """
    regime = regime or REGIMES["base"]
    paths = simulate_portfolio(
        spec, regime, 1, as_generator(seed_sequence_for(seed, "market_data", regime.name)),
        warmup_months=0, horizon_years=years,
    )
    dates = weekdays_ending(as_of, paths.n_steps + 1)
    levels = {a.name: INDEX_START * paths.levels[i, 0]
              for i, a in enumerate(spec.ordered) if a.asset_class != "cash"}
    history = pl.DataFrame({"date": dates, **levels, "risk_free": paths.short_rate[0]})
    first = spec.equities[0]
    surface = smile_surface(regime, float(paths.variance[0, 0, -1]), vol_ratio=first.vol_ratio)
    curve = vasicek_curve(regime, float(paths.short_rate[0, -1]))
    return MarketData(history, surface, curve, regime.dividend_yield, as_of)
