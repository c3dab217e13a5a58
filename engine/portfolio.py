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
from engine.metrics import (
    annualised_return,
    annualised_vol,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    var_cvar,
)
from engine.rolling import cumulative_squared_returns, realized_vol_from_logs
from engine.strategy_config import StrategyConfig, target_weights
from engine.types import FloatArray, IntArray

DRAWDOWN_CHUNK_ELEMENTS = 16_000_000
"""Configs are processed for the daily-NAV drawdown in chunks of about this many
(config, path, day) cells: 128 MB of float64 per temporary."""


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
    ``metrics`` maps each name of :data:`engine.metrics.METRICS` to (n_configs, n_paths).
    """

    configs: tuple[StrategyConfig, ...]
    monthly_returns: FloatArray
    weights: FloatArray
    costs: FloatArray
    metrics: dict[str, FloatArray]


def run_strategies(market: Market, configs: Sequence[StrategyConfig]) -> StrategyRun:
    """Simulate every config on every path and compute the per-path metrics.

    Notes
    -----
    At each rebalance k the target weight w*_k = f(rv_k) comes from the trailing
    realized vol (configs sharing a window share that work). The weight drifted from
    the last rebalance is w^d_k = w_{k-1} (1 + R^E_{k-1}) / (1 + R^G_{k-1}); the trade
    is |w_k - w^d_k| on each asset (skipped below the no-trade band; the first rebalance,
    the inception, trades nothing), costing c_k = tc_bps / 1e4 x 2 |w_k - w^d_k| of NAV.
    The month's gross return R^G_k = w_k R^E_k + (1 - w_k) R^A_k and the net return
    R_k = (1 - c_k)(1 + R^G_k) - 1. Turnover = sum |w_k - w^d_k| / years; cost drag =
    sum c_k / years; both over the evaluation's n_months / 12 years.
    """
    configs = tuple(configs)
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    starts = days[:-1]
    asset_return = _period_returns(market.equity, days)
    alt_return = _period_returns(market.alternative, days)
    cash_return = _period_returns(market.cash, days)

    targets = _targets(market.equity, starts, configs)
    n_configs, n_paths, n_months = targets.shape
    tc = np.array([c.tc_bps / 1e4 for c in configs])[:, None]
    band = np.array([c.no_trade_band for c in configs])[:, None]

    weights = np.empty_like(targets)
    trades = np.zeros_like(targets)
    gross = np.empty_like(targets)
    drifted = targets[:, :, 0]
    for k in range(n_months):
        wanted = targets[:, :, k]
        trade = wanted - drifted
        w = np.where(np.abs(trade) < band, drifted, wanted) if k else wanted
        trades[:, :, k] = np.abs(w - drifted)
        weights[:, :, k] = w
        gross[:, :, k] = w * asset_return[:, k] + (1.0 - w) * alt_return[:, k]
        drifted = w * (1.0 + asset_return[:, k]) / (1.0 + gross[:, :, k])
    costs = 2.0 * tc[:, :, None] * trades
    monthly = (1.0 - costs) * (1.0 + gross) - 1.0

    years = n_months / MONTHS_PER_YEAR
    excess = monthly - cash_return[None]
    var95, cvar95 = var_cvar(monthly)
    metrics = {
        "ann_return": annualised_return(monthly),
        "ann_vol": annualised_vol(monthly),
        "sharpe": sharpe_ratio(excess),
        "sortino": sortino_ratio(excess),
        "max_drawdown": _daily_max_drawdown(market, days, weights, monthly, costs),
        "var95": var95,
        "cvar95": cvar95,
        "turnover": trades.sum(axis=-1) / years,
        "cost_drag": costs.sum(axis=-1) / years,
        "tracking_error": _vol_tracking_error(market, days, weights, configs),
        "avg_equity_weight": weights.mean(axis=-1),
    }
    return StrategyRun(configs, monthly, weights, costs, metrics)


def _period_returns(levels: FloatArray, days: IntArray) -> FloatArray:
    """Simple returns between consecutive rebalance days, shape (n_paths, n_months)."""
    at = levels[:, days]
    return at[:, 1:] / at[:, :-1] - 1.0


def _targets(
    equity: FloatArray, starts: IntArray, configs: tuple[StrategyConfig, ...]
) -> FloatArray:
    """Target weights (n_configs, n_paths, n_months); one rolling-vol pass per window."""
    log_levels = np.log(equity)
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


def _daily_max_drawdown(
    market: Market, days: IntArray, weights: FloatArray, monthly: FloatArray, costs: FloatArray
) -> FloatArray:
    """Max drawdown of the daily NAV, (n_configs, n_paths), computed in config chunks.

    Within month k the holdings drift with prices: NAV_t = A_k (g^A_t + w_k (g^E_t - g^A_t))
    with g_t = level_t / level_{d_k} and A_k the NAV just after the rebalance's cost.
    """
    span = slice(days[0] + 1, days[-1] + 1)
    lengths = np.diff(days)
    month_of_day = np.repeat(np.arange(len(lengths)), lengths)
    month_start = days[:-1][month_of_day]
    growth_alt = market.alternative[:, span] / market.alternative[:, month_start]
    growth_gap = market.equity[:, span] / market.equity[:, month_start] - growth_alt

    nav_end = np.cumprod(1.0 + monthly, axis=-1)
    nav_start = np.concatenate([np.ones_like(nav_end[..., :1]), nav_end[..., :-1]], axis=-1)
    after_cost = nav_start * (1.0 - costs)

    n_configs, n_paths, _ = weights.shape
    chunk = max(1, DRAWDOWN_CHUNK_ELEMENTS // (n_paths * growth_alt.shape[1]))
    out = np.empty((n_configs, n_paths))
    for lo in range(0, n_configs, chunk):
        sl = slice(lo, lo + chunk)
        nav = after_cost[sl][..., month_of_day] * (
            growth_alt + weights[sl][..., month_of_day] * growth_gap
        )
        out[sl] = max_drawdown(nav, initial=1.0)
    return out


def _vol_tracking_error(
    market: Market, days: IntArray, weights: FloatArray, configs: tuple[StrategyConfig, ...]
) -> FloatArray:
    """RMS over months of (realized vol of the month's daily returns - target_vol).

    Notes
    -----
    The month's daily portfolio return is taken at the rebalanced weight,
    r^P_t = w_k r^E_t + (1 - w_k) r^A_t (intramonth drift of the weight is second
    order), so its variance is a quadratic form in w_k of per-path moment sums shared
    by all configs: s^2 = (S_PP - S_P^2 / n) / (n - 1), annualised by 252.
    """
    r_eq = np.diff(market.equity, axis=-1) / market.equity[:, :-1]
    r_alt = np.diff(market.alternative, axis=-1) / market.alternative[:, :-1]
    seg = days[:-1]

    def month_sums(x: FloatArray) -> FloatArray:
        return np.add.reduceat(x[:, days[0] : days[-1]], seg - days[0], axis=-1)

    n = np.diff(days).astype(np.float64)
    s_e, s_a = month_sums(r_eq), month_sums(r_alt)
    s_ee, s_aa, s_ea = month_sums(r_eq * r_eq), month_sums(r_alt * r_alt), month_sums(r_eq * r_alt)
    w = weights
    u = 1.0 - w
    s_p = w * s_e + u * s_a
    s_pp = w * w * s_ee + 2.0 * w * u * s_ea + u * u * s_aa
    var = np.maximum(s_pp - s_p * s_p / n, 0.0) / (n - 1.0)
    realized = np.sqrt(var * TRADING_DAYS_PER_YEAR)
    target = np.array([c.target_vol for c in configs])[:, None, None]
    return np.sqrt(np.mean((realized - target) ** 2, axis=-1))
