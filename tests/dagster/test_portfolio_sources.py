"""Market data of a portfolio spec: the synthetic source (one path of every asset), and the
files and s3 sources' series layout (docs/market_data.md, "A portfolio's series"): one
file per series or zero yields by maturity, each series checked on its own rows, then put
on the first equity's calendar; every bad input a user can hand over named by file,
series, date and rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl
from dagster_test_support import AS_OF

from dynalloc_dagster.assets.ingestion import LONGEST_WINDOW_MONTHS
from dynalloc_dagster.market_sources import as_of_seed, synthetic_inputs
from dynalloc_dagster.market_sources.base import asset_levels
from dynalloc_dagster.resources import MarketDataSource
from engine.market.regimes import REGIMES
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.paths import simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec
from engine.rng import as_generator, seed_sequence_for

FRIDAY = dt.date.fromisoformat(AS_OF)
WITH_CASH = PortfolioSpec(assets=(Asset("world", "equity", series="world"),
                                  Asset("ust_5y", "government_bond", series="ust_5y",
                                        maturity_years=5.0),
                                  Asset("cash", "cash")))


def _daily_vol(levels: pl.Series) -> float:
    return float(np.diff(np.log(levels.to_numpy())).std() * np.sqrt(252))


# --- synthetic ---------------------------------------------------------------------------


def test_synthetic_portfolio_has_a_column_per_asset_named_by_it() -> None:
    market = MarketDataSource(years=3).fetch(FRIDAY, longest_window_months=LONGEST_WINDOW_MONTHS,
                                             portfolio=GLOBAL_SIX)
    history = market.history
    assert history.columns == ["date", *GLOBAL_SIX.names, "risk_free"]
    assert history.schema["date"] == pl.Date
    assert all(history.schema[n] == pl.Float64 for n in GLOBAL_SIX.names)
    assert history["date"][-1] == FRIDAY and history.height == 3 * 252 + 1
    assert all(d.weekday() < 5 for d in history["date"].to_list())
    assert "us_equity" in market.origin and "ust_10y" in market.origin
    # the mapping to asset names: each column is its asset's simulated path (the one
    # path of simulate_portfolio the docstring names), and a bucket's daily vol grows
    # with its duration
    paths = simulate_portfolio(GLOBAL_SIX, REGIMES["base"], 1, as_generator(
        seed_sequence_for(as_of_seed(0, FRIDAY), "market_data", "base")),
        warmup_months=0, horizon_years=3)
    for i, name in enumerate(GLOBAL_SIX.names):
        np.testing.assert_array_equal(history[name].to_numpy(), 100.0 * paths.levels[i, 0])
    np.testing.assert_array_equal(history["risk_free"].to_numpy(), paths.short_rate[0])
    bonds = [_daily_vol(history[n]) for n in ("ust_2y", "ust_5y", "ust_10y")]
    assert bonds[0] < bonds[1] < bonds[2]
    holdings = dict(zip(market.holdings["asset"], market.holdings["weight"], strict=True))
    np.testing.assert_allclose([holdings["us_equity"], holdings["em_equity"],
                                holdings["ust_5y"]], [0.6 * 0.6, 0.6 * 0.15, 0.4 / 3],
                               rtol=0, atol=1e-15)
    assert asset_levels(market, GLOBAL_SIX).columns == ["date", "risk_free", *GLOBAL_SIX.names]


def test_synthetic_portfolio_is_seeded_by_the_as_of_date() -> None:
    this_week = synthetic_inputs(FRIDAY, years=2, portfolio=WITH_CASH)
    again = synthetic_inputs(FRIDAY, years=2, portfolio=WITH_CASH)
    next_week = synthetic_inputs(FRIDAY + dt.timedelta(days=7), years=2, portfolio=WITH_CASH)
    assert this_week.history.equals(again.history)
    assert this_week.vol_surface.equals(again.vol_surface)
    assert next_week.history["date"][-1] == FRIDAY + dt.timedelta(days=7)
    assert not np.allclose(this_week.history["world"].to_numpy(),
                           next_week.history["world"].to_numpy())
    # cash earns risk_free: no column, but it is held
    assert this_week.history.columns == ["date", "world", "ust_5y", "risk_free"]
    assert this_week.holdings["asset"].to_list() == ["world", "ust_5y", "cash"]


def test_the_two_asset_default_keeps_its_layout() -> None:
    default = synthetic_inputs(FRIDAY, years=2)
    assert default.history.equals(synthetic_inputs(FRIDAY, years=2, portfolio=TWO_ASSET).history)
    assert default.history.columns == ["date", "close", "bond_close", "risk_free"]
    levels = asset_levels(default, TWO_ASSET)
    assert levels.columns == ["date", "risk_free", "equity", "bond"]
    assert levels["equity"].equals(default.history["close"].alias("equity"))
    cash_leg = replace(default, history=default.history.drop("bond_close"))
    assert asset_levels(cash_leg, TWO_ASSET).columns == ["date", "risk_free", "equity"]
