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

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.strategy.config import StrategyConfig, target_weights
from engine.strategy.kernels import PASS_METRICS, rebalance_months, strategy_pass
from engine.strategy.metrics import METRICS, annualised_return, var_cvar
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

    The two stages, :func:`target_weights_for` and :func:`simulate`, are public so a
    benchmark can time them apart.
    """
    configs = tuple(configs)
    return simulate(market, target_weights_for(market, configs), configs)


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
    weights, trades, costs, monthly = (np.empty(targets.shape) for _ in range(4))
    rebalance_months(
        np.ascontiguousarray(targets),
        _period_returns(market.equity, days),
        _period_returns(market.alternative, days),
        np.array([c.tc_bps / 1e4 for c in configs]),
        np.array([c.no_trade_band for c in configs]),
        weights, trades, costs, monthly,
    )
    return Rebalanced(weights, trades, costs, monthly)


def simulate(
    market: Market, targets: FloatArray, configs: Sequence[StrategyConfig]
) -> StrategyRun:
    """Rebalance as :func:`rebalance` does and compute every metric of
    engine.strategy.metrics.METRICS per config and path, (n_configs, n_paths).

    Turnover = sum_k |w_k - w^d_k| / years and cost drag = sum_k c_k / years over the
    evaluation's n_months / 12 years.

    Notes
    -----
    One compiled pass per path (engine.strategy.kernels.strategy_pass) rebalances and
    computes all but the annualised return and VaR/CVaR, which need log1p/exp/pow and a
    partial sort and stay numpy's (engine.strategy.metrics); the results are those of
    :func:`rebalance` and the metrics module's functions bit for bit.
    """
    configs = tuple(configs)
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    c0, c1, c2, scale = _variance_coefficients(market, days)
    weights, costs, monthly = (np.empty(targets.shape) for _ in range(3))
    fused = np.empty((len(PASS_METRICS), *targets.shape[:2]))
    strategy_pass(
        np.ascontiguousarray(targets),
        _period_returns(market.equity, days),
        _period_returns(market.alternative, days),
        np.array([c.tc_bps / 1e4 for c in configs]),
        np.array([c.no_trade_band for c in configs]),
        _period_returns(market.cash, days), market.equity, market.alternative, days,
        c0, c1, c2, scale, np.array([c.target_vol for c in configs]),
        weights, costs, monthly, fused,
    )
    var95, cvar95 = var_cvar(monthly)
    metrics = dict(zip(PASS_METRICS, fused, strict=True))
    metrics |= {"ann_return": annualised_return(monthly), "var95": var95, "cvar95": cvar95}
    return StrategyRun(configs, monthly, weights, costs,
                       {name: metrics[name] for name in METRICS})


def _period_returns(levels: FloatArray, days: IntArray) -> FloatArray:
    """Simple returns between consecutive rebalance days, shape (n_paths, n_months)."""
    at = levels[:, days]
    return at[:, 1:] / at[:, :-1] - 1.0


def _variance_coefficients(
    market: Market, days: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """c0, c1, c2 (n_paths, n_months) and scale (n_months,) of the vol tracking error.

    Notes
    -----
    The tracking error is the RMS over months of (realized vol of the month's daily
    portfolio returns - target_vol). The month's daily portfolio return is taken at the
    rebalanced weight, r^P_t = r^A_t + w_k (r^E_t - r^A_t) (intramonth drift of the
    weight is second order), so (n - 1) s^2 = sum (r^P)^2 - (sum r^P)^2 / n is a quadratic
    c0 + c1 w + c2 w^2 whose coefficients are per-path month sums shared by all configs;
    realized vol = sqrt(scale (c0 + c1 w + c2 w^2)) with scale = 252 / (n - 1).
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
    return c0, c1, c2, TRADING_DAYS_PER_YEAR / (n - 1.0)
