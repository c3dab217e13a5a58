"""engine.portfolio.live against the two-asset live code (one equity and one bond with
fixed mixes is the two-asset rule) and against hand-computed weights."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.live import backtest_portfolio, portfolio_trades, todays_weights
from engine.portfolio.paths import simulate_portfolio
from engine.portfolio.spec import Asset, PortfolioSpec
from engine.strategy.backtest import backtest_history, todays_weight
from engine.strategy.config import StrategyConfig
from engine.strategy.trades import trades_frame, trades_to_target

TWO = PortfolioSpec((Asset("eq", "equity", series="eq"),
                     Asset("bd", "government_bond", series="bd", maturity_years=7.0)))
RULE = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=3,
                      tc_bps=10.0, min_allocation=0.1, max_allocation=1.2,
                      no_trade_band=0.02)


def _history(years: int = 3) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    paths = simulate_scenario(REGIMES["base"], 1, 7, warmup_months=0, horizon_years=years)
    n = paths.n_steps + 1
    dates = pl.date_range(dt.date(2020, 1, 1), dt.date(2040, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5).head(n)
    levels = np.stack([100.0 * paths.equity[0], 50.0 * paths.bond[0]])
    return dates, levels, paths.short_rate[0]


def test_one_equity_one_bond_weight_today_is_the_two_asset_weight() -> None:
    _, levels, _ = _history()
    weights = todays_weights(levels, TWO, RULE)
    assert weights[0] == pytest.approx(todays_weight(levels[0], RULE), abs=1e-12)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_weights_today_by_hand_for_fixed_mixes_of_three_equities_and_three_bonds() -> None:
    spec = dataclasses.replace(GLOBAL_SIX, defensive_weights=(0.5, 0.3, 0.2))
    paths = simulate_portfolio(spec, REGIMES["base"], 1, 3, warmup_months=0, horizon_years=1)
    levels = paths.levels[:, 0, :]
    weights = todays_weights(levels, spec, RULE)
    window = np.diff(np.log(levels[:3, -RULE.window_days - 1:]), axis=1)
    cov = np.cov(window) * TRADING_DAYS_PER_YEAR
    b = np.array(GLOBAL_SIX.risky_weights)
    scale = min(max(RULE.target_vol / math.sqrt(b @ cov @ b), RULE.min_allocation),
                RULE.max_allocation)
    expected = np.concatenate([scale * b, (1 - scale) * np.array([0.5, 0.3, 0.2])])
    np.testing.assert_allclose(weights, expected, rtol=1e-10)


def test_backtest_refuses_a_rate_in_percent_and_a_history_too_short_as_the_two_asset_one(
) -> None:
    dates, levels, rate = _history()
    percent = rate.copy()
    percent[10] = 3.0
    for run in (lambda r: backtest_portfolio(dates, levels, r, TWO, RULE),
                lambda r: backtest_history(dates, levels[0], r, RULE, bond_close=levels[1])):
        with pytest.raises(ValueError, match=rf"risk_free = 3.0 on {dates[10]} \(row 10\)"):
            run(percent)
    with pytest.raises(ValueError, match="history too short: vol_window_months = 3"):
        backtest_portfolio(dates[:70], levels[:, :70], rate[:70], TWO, RULE)


def test_one_equity_one_bond_backtest_is_the_two_asset_backtest() -> None:
    dates, levels, rate = _history()
    mine = backtest_portfolio(dates, levels, rate, TWO, RULE)
    reference = backtest_history(dates, levels[0], rate, RULE, bond_close=levels[1])
    np.testing.assert_allclose(mine.monthly_returns["portfolio_return"],
                               reference.monthly_returns["portfolio_return"], atol=1e-12)
    np.testing.assert_allclose(mine.monthly_returns["equity_weight"],
                               reference.monthly_returns["equity_weight"], atol=1e-12)
    assert mine.monthly_returns["date"].to_list() == reference.monthly_returns["date"].to_list()
    for name in ("sharpe", "max_drawdown", "turnover", "ann_return"):
        assert mine.metrics[name] == pytest.approx(reference.metrics[name], abs=1e-10)
    assert sum(mine.asset_weights.values()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("current", "band"), [(0.3, 0.0), (0.55, 0.02), (0.59, 0.02)])
def test_two_asset_trades_are_trades_to_target(current: float, band: float) -> None:
    prices = np.array([4000.0, 95.0])
    units = np.array([current * 1e6 / prices[0], (1 - current) * 1e6 / prices[1]])
    reference = trades_frame(trades_to_target(
        0.6, equity_units=units[0], bond_units=units[1], equity_price=prices[0],
        bond_price=prices[1], no_trade_band=band, tc_bps=10.0))
    mine = portfolio_trades(["equity", "bond"], np.array([0.6, 0.4]),
                            current=np.array([current, 1 - current]), nav=1e6, prices=prices,
                            no_trade_band=band, tc_bps=10.0)
    assert mine.columns == reference.columns
    for column in reference.columns[1:]:
        np.testing.assert_allclose(mine[column].to_numpy(), reference[column].to_numpy(),
                                   rtol=1e-12, atol=1e-9)


def test_six_asset_trades_pay_the_cost_out_of_nav() -> None:
    current = np.array([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    target = np.array([0.25, 0.15, 0.05, 0.2, 0.15, 0.2])
    frame = portfolio_trades(list(GLOBAL_SIX.names), target, current=current, nav=2.0,
                             tc_bps=20.0)
    cost = 20e-4 * np.abs(target - current).sum() * 2.0
    assert frame["cost"].sum() == pytest.approx(cost, rel=1e-12)
    assert frame["value_change"].sum() == pytest.approx(-cost, rel=1e-9)
    np.testing.assert_allclose(frame["new_weight"], target)
    held = portfolio_trades(list(GLOBAL_SIX.names), target, current=current,
                            no_trade_band=0.2)  # one-way turnover 0.15 < 0.2
    assert held["weight_change"].abs().max() == 0.0 and held["cost"].sum() == 0.0
