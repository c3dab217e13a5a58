"""The portfolio rule on real history: today's weight in every asset, the backtest and the
trades from the current holdings (the multi-asset forms of engine.strategy.backtest and
engine.strategy.trades, with the same conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.portfolio.evaluation import PortfolioMarket, run_portfolio
from engine.portfolio.mix import base_mix_weights, sleeve_vol, trailing_covariance
from engine.portfolio.spec import PortfolioSpec
from engine.strategy.backtest import (
    _as_dates,
    _as_levels,
    _cash_account,
    _rebalance_days,
)
from engine.strategy.config import StrategyConfig, target_weights
from engine.strategy.metrics import METRICS
from engine.types import FloatArray
from engine.validation import check_range


def _levels(spec: PortfolioSpec, levels: FloatArray, day: pl.Series | None = None
            ) -> FloatArray:
    """(n_assets, n_days) positive levels in ``spec.ordered`` order, each checked."""
    array = np.asarray(levels, dtype=np.float64)
    names = [a.name for a in spec.ordered]
    if array.ndim != 2 or array.shape[0] != len(names):
        raise ValueError(f"levels must have one row per asset ({', '.join(names)}), got"
                         f" shape {array.shape}")
    return np.stack([_as_levels(name, row, array.shape[1], day)
                     for name, row in zip(names, array, strict=True)])


def todays_weights(levels: FloatArray, spec: PortfolioSpec, config: StrategyConfig
                   ) -> FloatArray:
    """Each asset's weight (``spec.ordered`` order) the rule sets on the last day.

    Parameters
    ----------
    levels : (n_assets, n_days) daily levels, oldest first (cash: the money-market account).
    spec, config : the portfolio and the rule.

    Notes
    -----
    With Sigma the annualised covariance of the trailing ``vol_window_months x 21`` daily
    log returns (ddof = 1), the risky sleeve's base mix b and the defensive sleeve's d
    (engine.portfolio.mix.base_mix_weights), the sleeve scale is s = f(sqrt(b' Sigma_eq b))
    and the weights are (s b, (1 - s) d): the target of engine.portfolio.evaluation at a
    rebalance on the last day. One equity with a fixed mix gives
    engine.strategy.backtest.todays_weight.
    """
    array = _levels(spec, levels)
    if array.shape[1] <= config.window_days:
        raise ValueError(f"todays_weights needs more than {config.window_days} days; got"
                         f" {array.shape[1]}")
    n_eq = len(spec.equities)
    end = np.array([array.shape[1] - 1])
    log_levels = np.log(array)[:, None, :]
    cov_eq = trailing_covariance(log_levels[:n_eq], end, config.window_days)
    cov_def = trailing_covariance(log_levels[n_eq:], end, config.window_days)
    risky = base_mix_weights(config.risky_mix, cov_eq, spec.risky_weights)
    defensive = base_mix_weights(config.defensive_mix, cov_def, spec.defensive_weights)
    scale = float(target_weights(sleeve_vol(risky, cov_eq), config)[0, 0])
    return np.concatenate([scale * risky[0, 0], (1.0 - scale) * defensive[0, 0]])


@dataclass(frozen=True, slots=True)
class PortfolioBacktest:
    """``monthly_returns``: date, portfolio_return (net of costs), equity_weight (the risky
    sleeve's, set at the previous month-end); ``metrics``: each of METRICS -> its value;
    ``asset_weights``: asset name -> its mean weight over the months."""

    config: StrategyConfig
    monthly_returns: pl.DataFrame
    metrics: dict[str, float]
    asset_weights: dict[str, float]


def backtest_portfolio(
    dates: Sequence | pl.Series, levels: FloatArray, risk_free: Sequence[float] | pl.Series,
    spec: PortfolioSpec, config: StrategyConfig,
) -> PortfolioBacktest:
    """Run ``config`` on a daily history of every asset of ``spec``.

    Month-ends, the first rebalance and cash accrual as
    :func:`engine.strategy.backtest.backtest_history`
    (cash_t = cash_{t-1} (1 + rf_{t-1} / 252)); the rule as
    :func:`engine.portfolio.evaluation.run_portfolio` on one path.
    """
    day = _as_dates(dates)
    array = _levels(spec, levels, day)
    if array.shape[1] != len(day):
        raise ValueError(f"levels have {array.shape[1]} days, dates {len(day)}")
    cash = _cash_account(risk_free, day)
    usable = _rebalance_days(day, config)
    market = PortfolioMarket(spec, array[:, None, :] / array[:, None, :1], cash[None], usable)
    result = run_portfolio(market, [config])
    monthly = pl.DataFrame({"date": day.gather(usable[1:]),
                            "portfolio_return": result.run.monthly_returns[0, 0],
                            "equity_weight": result.run.weights[0, 0]})
    return PortfolioBacktest(
        config, monthly, {name: float(result.run.metrics[name][0, 0]) for name in METRICS},
        {a.name: float(w) for a, w in zip(spec.ordered, result.asset_weights[0, 0],
                                          strict=True)})


def portfolio_trades(
    names: Sequence[str], target: FloatArray, *, current: FloatArray, nav: float = 1.0,
    prices: FloatArray | None = None, no_trade_band: float = 0.0, tc_bps: float = 0.0,
) -> pl.DataFrame:
    """The trades from ``current`` weights (fractions of ``nav``) to ``target``.

    Returns
    -------
    One row per asset: asset, current_weight, target_weight, new_weight, weight_change,
    value_change, units_change (null without ``prices``), cost (the whole rebalance's
    cost on the first row), the columns of engine.strategy.trades.trades_frame.

    Notes
    -----
    With dw = w* - w: no trade when the one-way turnover sum |dw| / 2 is below the
    no-trade band (engine.portfolio.evaluation's rule); else the cost
    c = tc_bps / 1e4 x sum |dw| x NAV is paid out of NAV and the target applies to
    NAV - c, so value changes w*_a (NAV - c) - w_a NAV sum to -c. For two assets this is
    engine.strategy.trades.trades_to_target.
    """
    band = check_range("portfolio_trades", "no_trade_band", no_trade_band, 0.0, 1.0)
    bps = check_range("portfolio_trades", "tc_bps", tc_bps, 0.0, 500.0)
    w_target, w_now = np.asarray(target, float), np.asarray(current, float)
    if not nav > 0:
        raise ValueError(f"portfolio_trades: nav = {nav!r} must be positive")
    change = w_target - w_now
    trade = bool(np.abs(change).sum() / 2.0 >= band and np.any(change != 0.0))
    if not trade:
        change = np.zeros_like(change)
    cost = bps / 1e4 * float(np.abs(change).sum()) * nav
    new = w_target if trade else w_now
    value = new * (nav - cost) - w_now * nav
    units = [None] * len(names) if prices is None else list(value / np.asarray(prices, float))
    return pl.DataFrame(
        {"asset": list(names), "current_weight": w_now, "target_weight": w_target,
         "new_weight": new, "weight_change": change, "value_change": value,
         "units_change": units, "cost": [cost] + [0.0] * (len(names) - 1)},
        schema_overrides={"units_change": pl.Float64})
