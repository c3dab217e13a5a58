"""The synthetic source: a seeded market for demos and tests, offline.

The history is one simulated path of the base regime on the weekdays ending at ``as_of``
(engine.market.market_data.synthetic_market_data), seeded from ``(seed, as_of)`` through
SeedSequence: the same date gives the same market, next week's date a new one. The vol
surface is the Heston model's own (engine.market.heston_pricing.heston_implied_vols) with
the regime's kappa, vol of vol and spot-variance correlation, theta = the regime's
variance and v0 = the path's last variance: free of static arbitrage by construction, and
a surface whose parameters a calibration should recover. Holdings are an illustrative
60/40 by weight.

For a portfolio other than the two-asset one the history is one path of every asset
(engine.portfolio.market_data.synthetic_portfolio_data, same seeding), one level column
per asset of ``level_assets`` named by the asset; the surface is the first equity's
(its theta and vol of vol scaled by its vol_ratio); holdings are 60% in the equities and
40% in the defensive sleeve, each split by the spec's fixed base mix (equal without one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl

from dynalloc_dagster.market_sources.base import MarketInputs, level_assets
from engine.conventions import TRADING_DAYS_PER_MONTH as MONTH
from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.market.heston_pricing import HestonParams, heston_implied_vols
from engine.market.market_data import SURFACE_EXPIRIES, synthetic_market_data
from engine.market.regimes import REGIMES
from engine.portfolio.market_data import synthetic_portfolio_data
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec
from engine.rng import seed_sequence_for

SURFACE_STDEVS = (-1.5, -0.75, 0.0, 0.75, 1.5)
"""Strikes of the synthetic surface, in standard deviations of ln K/F."""
SYNTHETIC_HOLDINGS = {"equity": 0.6, "bond": 0.4}
"""The synthetic source's current holdings, by weight (a demo portfolio)."""


def as_of_seed(seed: int, as_of: dt.date) -> int:
    """An int seed derived from a run seed and a date: SeedSequence(seed, ISO date)."""
    return int(seed_sequence_for(seed, as_of.isoformat()).generate_state(1)[0])


def synthetic_inputs(as_of: dt.date, *, years: int = 10, seed: int = 0,
                     portfolio: PortfolioSpec = TWO_ASSET) -> MarketInputs:
    """``years`` of synthetic weekday history ending at ``as_of`` of every asset of
    ``portfolio``, its curve and the first equity's surface."""
    origin = f"synthetic (seed {seed}, as of {as_of})"
    if portfolio == TWO_ASSET:
        market = synthetic_market_data(as_of, years=years, seed=as_of_seed(seed, as_of))
        first, vol_ratio, split = "close", 1.0, SYNTHETIC_HOLDINGS
    else:
        market = synthetic_portfolio_data(portfolio, as_of, years=years,
                                          seed=as_of_seed(seed, as_of))
        names = [a.name for a in level_assets(portfolio)]
        market = replace(market, history=market.history.select("date", *names, "risk_free"))
        first, vol_ratio = portfolio.equities[0].name, portfolio.equities[0].vol_ratio
        split = synthetic_split(portfolio)
        origin = (f"synthetic portfolio {', '.join(portfolio.names)} (seed {seed}, as of"
                  f" {as_of})")
    last_month = np.diff(np.log(market.history[first].to_numpy()[-(MONTH + 1):]))
    v0 = float(np.mean(last_month**2) * TRADING_DAYS_PER_YEAR)
    holdings = pl.DataFrame({"asset": list(split), "weight": list(split.values())})
    return MarketInputs(
        history=market.history,
        vol_surface=heston_surface(surface_params(v0, vol_ratio=vol_ratio)),
        yield_curve=market.yield_curve, holdings=holdings,
        dividend_yield=market.dividend_yield, as_of=as_of, origin=origin,
        sources={t: f"synthetic {t}" for t in ("history", "vol_surface", "yield_curve",
                                               "holdings")},
    )


def synthetic_split(portfolio: PortfolioSpec) -> dict[str, float]:
    """Illustrative holdings by weight: SYNTHETIC_HOLDINGS' equity share over the
    equities and its bond share over the defensive sleeve, each split by the spec's fixed
    base mix (equal weights without one), in ``portfolio.ordered`` order."""
    split: dict[str, float] = {}
    for sleeve, mix, share in (
        (portfolio.equities, portfolio.risky_weights, SYNTHETIC_HOLDINGS["equity"]),
        (portfolio.defensive, portfolio.defensive_weights, SYNTHETIC_HOLDINGS["bond"]),
    ):
        weights = mix or (1.0 / len(sleeve),) * len(sleeve)
        split.update({a.name: share * w for a, w in zip(sleeve, weights, strict=True)})
    return split


def surface_params(v0: float, *, vol_ratio: float = 1.0) -> HestonParams:
    """The synthetic surface's Heston parameters: the base regime's, starting at ``v0``,
    theta and vol of vol scaled by ``vol_ratio``^2 and ``vol_ratio`` (an equity of a
    portfolio, engine.portfolio.paths.equity_stepper)."""
    base = REGIMES["base"]
    return HestonParams(v0=v0, kappa=base.heston_kappa,
                        theta=base.variance * vol_ratio * vol_ratio,
                        sigma=base.vol_of_vol * vol_ratio, rho=base.spot_variance_corr)


def heston_surface(params: HestonParams) -> pl.DataFrame:
    """Heston implied vols at expiries SURFACE_EXPIRIES (years) and log-moneyness
    k = z sqrt(vbar(T) T), z in SURFACE_STDEVS, with vbar(T) = theta + (v0 - theta)
    (1 - e^{-kappa T}) / (kappa T) the expected average variance to T: strikes that many
    standard deviations from the forward, where prices are well above the pricer's
    error. Spot 1 and r = q = 0, so the forward is 1 and K = e^k."""
    expiries, z = np.meshgrid(SURFACE_EXPIRIES, SURFACE_STDEVS, indexing="ij")
    decay = (1.0 - np.exp(-params.kappa * expiries)) / (params.kappa * expiries)
    mean_variance = params.theta + (params.v0 - params.theta) * decay
    moneyness = np.round(z * np.sqrt(mean_variance * expiries), 6)
    vols = heston_implied_vols(1.0, np.exp(moneyness), expiries, params)
    return pl.DataFrame({"expiry_years": expiries.ravel(), "log_moneyness": moneyness.ravel(),
                         "implied_vol": vols.ravel()})
