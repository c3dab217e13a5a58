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

from engine.arrays import kernel_input
from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.strategy.config import (
    RISK_AVERSION_FNS,
    WEIGHT_FNS,
    StrategyConfig,
    target_weights,
    weight_slope,
)
from engine.strategy.kernels import Rules, market_pass, rebalance_months, strategy_pass
from engine.strategy.metrics import METRICS, tail_count
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
    (fraction of NAV paid at each rebalance) have shape (n_configs, n_paths, n_months), or
    are None when the run was asked for its metrics only; ``metrics`` maps each name of
    :data:`engine.strategy.metrics.METRICS` to (n_configs, n_paths).
    """

    configs: tuple[StrategyConfig, ...]
    monthly_returns: FloatArray | None
    weights: FloatArray | None
    costs: FloatArray | None
    metrics: dict[str, FloatArray]

    @property
    def n_paths(self) -> int:
        return next(iter(self.metrics.values())).shape[1]


@dataclass(frozen=True, slots=True)
class MonthInputs:
    """What every config reads of the market, per path and month (engine.strategy.kernels.
    market_pass): ``vols`` the trailing realized vol at each rebalance for each window of
    ``windows`` (days, ascending), (n_windows, n_paths, n_months); ``period_returns`` the
    equity's, the alternative's and the cash account's return over each month and
    ``variance_coefficients`` c0, c1, c2 of the tracking error (:func:`simulate`), each
    (3, n_paths, n_months)."""

    windows: IntArray
    vols: FloatArray
    period_returns: FloatArray
    variance_coefficients: FloatArray


@dataclass(frozen=True, slots=True)
class Rebalanced:
    """The monthly rebalancing of configs x paths, each (n_configs, n_paths, n_months):
    equity weight after each rebalance, |weight traded|, cost paid (fraction of NAV)
    and net monthly return."""

    weights: FloatArray
    trades: FloatArray
    costs: FloatArray
    monthly_returns: FloatArray


def run_strategies(
    market: Market, configs: Sequence[StrategyConfig], *, per_month: bool = True
) -> StrategyRun:
    """Simulate every config on every path and compute the per-path metrics; with
    ``per_month`` False only the metrics are kept.

    The two stages, :func:`month_inputs` and :func:`simulate`, are public so a benchmark
    can time them apart.
    """
    configs = tuple(configs)
    return simulate(market, month_inputs(market, configs), configs, per_month=per_month)


def month_inputs(market: Market, configs: Sequence[StrategyConfig]) -> MonthInputs:
    """The trailing vols of the configs' windows and the per-path month sums, computed once
    for all configs (engine.strategy.kernels.market_pass).

    The trailing vol at rebalance day d_k is engine.strategy.rolling's, bit for bit; the
    first rebalance must come after the longest window (else a ValueError naming it).
    """
    days = _checked_days(market, configs)
    windows = np.array(sorted({c.window_days for c in configs}), dtype=np.int64)
    n_paths, n_months = market.equity.shape[0], len(days) - 1
    inputs = MonthInputs(windows, np.empty((len(windows), n_paths, n_months)),
                         np.empty((3, n_paths, n_months)), np.empty((3, n_paths, n_months)))
    market_pass(kernel_input(market.equity), kernel_input(market.alternative),
                kernel_input(market.cash), days, windows, inputs.vols, inputs.period_returns,
                inputs.variance_coefficients)
    return inputs


def _checked_days(market: Market, configs: Sequence[StrategyConfig]) -> IntArray:
    """The rebalance days, once the first is known to follow a full trailing window of
    every config."""
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    longest = max(c.window_days for c in configs)
    if days[:-1].min() < longest:
        raise ValueError(
            f"the first rebalance (day {days[:-1].min()}) comes before a full trailing window"
            f" of {longest} days; simulate a longer warm-up or shorten vol_window_months"
        )
    return days


def target_weights_for(market: Market, configs: Sequence[StrategyConfig]) -> FloatArray:
    """Target weights w*_k = f(rv_k), shape (n_configs, n_paths, n_months).

    rv_k is the trailing realized vol at rebalance day d_k (engine.strategy.rolling); configs
    sharing a window share that work.
    """
    configs = tuple(configs)
    starts = _checked_days(market, configs)[:-1]
    log_levels = np.log(market.equity)
    cum_sq = cumulative_squared_returns(log_levels)
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
    market: Market,
    inputs: MonthInputs,
    configs: Sequence[StrategyConfig],
    *,
    per_month: bool = True,
) -> StrategyRun:
    """Weigh and rebalance as :func:`target_weights_for` and :func:`rebalance` do and compute
    every metric of engine.strategy.metrics.METRICS per config and path, (n_configs, n_paths);
    ``inputs`` from :func:`month_inputs` on the same market and configs. With ``per_month``
    False the run keeps the metrics only (no configs x paths x months arrays).

    Turnover = sum_k |w_k - w^d_k| / years and cost drag = sum_k c_k / years over the
    evaluation's n_months / 12 years.

    Notes
    -----
    The tracking error is the RMS over months of (realized vol of the month's daily
    portfolio returns - target_vol). The month's daily portfolio return is taken at the
    rebalanced weight, r^P_t = r^A_t + w_k (r^E_t - r^A_t) (intramonth drift of the
    weight is second order), so (n - 1) s^2 = sum (r^P)^2 - (sum r^P)^2 / n is a quadratic
    c0 + c1 w + c2 w^2 whose coefficients are per-path month sums shared by all configs;
    realized vol = sqrt(scale (c0 + c1 w + c2 w^2)) with scale = 252 / (n - 1).

    One compiled pass per path (engine.strategy.kernels.strategy_pass) does it all; the
    results are those of the numpy expressions of engine.strategy.metrics, bit for bit
    (VaR/CVaR: see engine.strategy.kernels.var_cvar).
    """
    configs = tuple(configs)
    days = np.asarray(market.rebalance_days, dtype=np.int64)
    n_paths, n_months = market.equity.shape[0], len(days) - 1
    per_path = (len(configs), n_paths, n_months) if per_month else (0, 0, 0)
    weights, costs, monthly = (np.empty(per_path) for _ in range(3))
    out = np.empty((len(METRICS), len(configs), n_paths))
    strategy_pass(inputs.vols, _rules(configs, inputs.windows), inputs.period_returns,
                  inputs.variance_coefficients,
                  TRADING_DAYS_PER_YEAR / (np.diff(days).astype(np.float64) - 1.0),
                  kernel_input(market.equity), kernel_input(market.alternative), days,
                  tail_count(n_months), out,
                  weights, costs, monthly)
    metrics = dict(zip(METRICS, out, strict=True))
    if not per_month:
        return StrategyRun(configs, None, None, None, metrics)
    return StrategyRun(configs, monthly, weights, costs, metrics)


def _rules(configs: tuple[StrategyConfig, ...], windows: IntArray) -> Rules:
    """The configs as the compiled pass reads them (engine.strategy.kernels.Rules)."""
    row = {int(n): i for i, n in enumerate(windows)}
    return compiled_rules(configs, [row[c.window_days] for c in configs])


def compiled_rules(configs: Sequence[StrategyConfig], rows: Sequence[int]) -> Rules:
    """The configs as the compiled passes read them (engine.strategy.kernels.Rules), each
    config's ``window`` its row of the trailing vols (``rows``)."""
    return Rules(
        weight_fn=np.array([WEIGHT_FNS.index(c.weight_fn) for c in configs], dtype=np.int64),
        window=np.array(rows, dtype=np.int64),
        target_vol=np.array([c.target_vol for c in configs]),
        slope=np.array([weight_slope(c) if c.weight_fn in RISK_AVERSION_FNS else 0.0
                         for c in configs]),
        low=np.array([c.min_allocation for c in configs]),
        high=np.array([c.max_allocation for c in configs]),
        tc=np.array([c.tc_bps / 1e4 for c in configs]),
        band=np.array([c.no_trade_band for c in configs]),
    )


def _period_returns(levels: FloatArray, days: IntArray) -> FloatArray:
    """Simple returns between consecutive rebalance days, shape (n_paths, n_months)."""
    at = levels[:, days]
    return at[:, 1:] / at[:, :-1] - 1.0
