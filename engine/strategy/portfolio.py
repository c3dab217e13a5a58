"""The vol-targeting portfolio, simulated for many configs on many paths at once.

Array axes: configs, paths, rebalances (or days). Inputs are daily index levels of
the equity, the non-equity asset (bond index, or cash) and the cash account, plus the
rebalance days; this serves simulated scenarios (every 21st day) and real history
(the last trading day of each calendar month) alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_YEAR
from engine.strategy.config import StrategyConfig, target_weights
from engine.strategy.kernels import drifting_nav_max_drawdown, rebalance_months, vol_tracking_error
from engine.strategy.metrics import (
    annualised_return,
    annualised_vol,
    sharpe_ratio,
    sortino_ratio,
    var_cvar,
)
from engine.strategy.rolling import cumulative_squared_returns, realized_vol_from_logs
from engine.types import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class Market:
    """Daily levels, shape (n_paths, n_days + 1), and the rebalance days.

    ``rebalance_days`` has shape (n_months + 1,): the weight set on day
    ``rebalance_days[k]`` holds until ``rebalance_days[k + 1]``; the last entry ends the
    evaluation. Each must be at least the longest trailing window in days.
    """

    equity: FloatArray
    alternative: FloatArray
    cash: FloatArray
    rebalance_days: IntArray

    @property
    def n_months(self) -> int:
        return len(self.rebalance_days) - 1


@dataclass(frozen=True, slots=True)
class StrategyRun:
    """Per-path results for configs x paths.

    ``monthly_returns``, ``weights`` (equity weight after each rebalance) and ``costs``
    (fraction of NAV paid at each rebalance) have shape (n_configs, n_paths, n_months);
    ``metrics`` maps each name of :data:`engine.strategy.metrics.METRICS` to (n_configs, n_paths).
    """

    configs: tuple[StrategyConfig, ...]
    monthly_returns: FloatArray
    weights: FloatArray
    costs: FloatArray
    metrics: dict[str, FloatArray]


@dataclass(frozen=True, slots=True)
class Rebalanced:
    """The monthly rebalancing of configs x paths, each (n_configs, n_paths, n_months):
    equity weight after each rebalance, |weight traded|, cost paid (fraction of NAV)
    and net monthly return."""

    weights: FloatArray
    trades: FloatArray
    costs: FloatArray
    monthly_returns: FloatArray


def run_strategies(market: Market, configs: Sequence[StrategyConfig]) -> StrategyRun:
    """Simulate every config on every path and compute the per-path metrics.

    The three stages, :func:`target_weights_for`, :func:`rebalance` and
    :func:`path_metrics`, are public so a benchmark can time them apart.
    """
    configs = tuple(configs)
    targets = target_weights_for(market, configs)
    rebalanced = rebalance(market, targets, configs)
    metrics = path_metrics(market, rebalanced, configs)
    return StrategyRun(configs, rebalanced.monthly_returns, rebalanced.weights,
                       rebalanced.costs, metrics)


def target_weights_for(market: Market, configs: Sequence[StrategyConfig]) -> FloatArray:
    """Target weights w*_k = f(rv_k), shape (n_configs, n_paths, n_months).

    rv_k is the trailing realized vol at rebalance day d_k (engine.strategy.rolling); configs
    sharing a window share that work.
    """
    configs = tuple(configs)
    starts = np.asarray(market.rebalance_days, dtype=np.int64)[:-1]
    log_levels = np.log(market.equity)
    cum_sq = cumulative_squared_returns(log_levels)
    longest = max(c.window_days for c in configs)
    if starts.min() < longest:
        raise ValueError(
            f"the first rebalance (day {starts.min()}) comes before a full trailing window"
            f" of {longest} days; simulate a longer warm-up or shorten vol_window_months"
        )
    vols = {
        n: realized_vol_from_logs(log_levels, cum_sq, starts, n)
        for n in sorted({c.window_days for c in configs})
    }
    return np.stack([target_weights(vols[c.window_days], c) for c in configs])


def rebalance(
    market: Market, targets: FloatArray, configs: Sequence[StrategyConfig]
) -> Rebalanced:
    """Hold, drift, trade and pay costs month by month.

    Notes
    -----
    The weight drifted from the last rebalance is
    w^d_k = w_{k-1} (1 + R^E_{k-1}) / (1 + R^G_{k-1}). The new weight is w_k = w*_k, or
    w^d_k when |w*_k - w^d_k| is below the no-trade band; the first rebalance, the
    inception, trades nothing. The trade |w_k - w^d_k| on each asset costs
    c_k = tc_bps / 1e4 x 2 |w_k - w^d_k| of NAV. The month's gross return is
    R^G_k = w_k R^E_k + (1 - w_k) R^A_k and the net return R_k = (1 - c_k)(1 + R^G_k) - 1.
    """
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    weights, trades, costs, monthly = rebalance_months(
        np.ascontiguousarray(targets),
        _period_returns(market.equity, days),
        _period_returns(market.alternative, days),
        np.array([c.tc_bps / 1e4 for c in configs]),
        np.array([c.no_trade_band for c in configs]),
    )
    return Rebalanced(weights, trades, costs, monthly)


def path_metrics(
    market: Market, rebalanced: Rebalanced, configs: Sequence[StrategyConfig]
) -> dict[str, FloatArray]:
    """Every metric of engine.strategy.metrics.METRICS per config and path, (n_configs, n_paths).

    Turnover = sum_k |w_k - w^d_k| / years and cost drag = sum_k c_k / years over the
    evaluation's n_months / 12 years.
    """
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    monthly, weights, costs = rebalanced.monthly_returns, rebalanced.weights, rebalanced.costs
    years = monthly.shape[-1] / MONTHS_PER_YEAR
    excess = monthly - _period_returns(market.cash, days)[None]
    var95, cvar95 = var_cvar(monthly)
    return {
        "ann_return": annualised_return(monthly),
        "ann_vol": annualised_vol(monthly),
        "sharpe": sharpe_ratio(excess),
        "sortino": sortino_ratio(excess),
        "max_drawdown": _daily_max_drawdown(market, days, weights, monthly, costs),
        "var95": var95,
        "cvar95": cvar95,
        "turnover": rebalanced.trades.sum(axis=-1) / years,
        "cost_drag": costs.sum(axis=-1) / years,
        "tracking_error": _vol_tracking_error(market, days, weights, configs),
        "avg_equity_weight": weights.mean(axis=-1),
    }


def _period_returns(levels: FloatArray, days: IntArray) -> FloatArray:
    """Simple returns between consecutive rebalance days, shape (n_paths, n_months)."""
    at = levels[:, days]
    return at[:, 1:] / at[:, :-1] - 1.0


def _daily_max_drawdown(
    market: Market, days: IntArray, weights: FloatArray, monthly: FloatArray, costs: FloatArray
) -> FloatArray:
    """Max drawdown of the daily NAV, (n_configs, n_paths).

    Within month k the holdings drift with prices: NAV_t = A_k (g^A_t + w_k (g^E_t - g^A_t))
    with g_t = level_t / level_{d_k} and A_k the NAV just after the rebalance's cost;
    the running peak starts at the initial NAV of 1.
    """
    span = slice(days[0] + 1, days[-1] + 1)
    lengths = np.diff(days)
    month_start = np.repeat(days[:-1], lengths)
    growth_alt = market.alternative[:, span] / market.alternative[:, month_start]
    growth_gap = market.equity[:, span] / market.equity[:, month_start] - growth_alt
    return drifting_nav_max_drawdown(
        weights, monthly, costs, growth_alt, growth_gap, np.concatenate([[0], np.cumsum(lengths)])
    )


def _vol_tracking_error(
    market: Market, days: IntArray, weights: FloatArray, configs: Sequence[StrategyConfig]
) -> FloatArray:
    """RMS over months of (realized vol of the month's daily returns - target_vol).

    Notes
    -----
    The month's daily portfolio return is taken at the rebalanced weight,
    r^P_t = r^A_t + w_k (r^E_t - r^A_t) (intramonth drift of the weight is second
    order), so (n - 1) s^2 = sum (r^P)^2 - (sum r^P)^2 / n is a quadratic
    c0 + c1 w + c2 w^2 whose coefficients are per-path month sums shared by all configs;
    realized vol = sqrt(252 s^2).
    """
    r_eq = np.diff(market.equity, axis=-1) / market.equity[:, :-1]
    r_alt = np.diff(market.alternative, axis=-1) / market.alternative[:, :-1]
    gap = r_eq - r_alt

    def month_sums(x: FloatArray) -> FloatArray:
        return np.add.reduceat(x[:, days[0] : days[-1]], days[:-1] - days[0], axis=-1)

    n = np.diff(days).astype(np.float64)
    s_a, s_g = month_sums(r_alt), month_sums(gap)
    c0 = month_sums(r_alt * r_alt) - s_a * s_a / n
    c1 = 2.0 * (month_sums(r_alt * gap) - s_a * s_g / n)
    c2 = month_sums(gap * gap) - s_g * s_g / n
    scale = TRADING_DAYS_PER_YEAR / (n - 1.0)
    target = np.array([c.target_vol for c in configs])
    return vol_tracking_error(weights, c0, c1, c2, scale, target)
