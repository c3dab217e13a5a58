"""Performance and risk metrics on per-path series; the last axis is time.

Conventions (docs/engine.md): simple returns; geometric annualised return; volatility
annualised by sqrt(12) from monthly returns; Sharpe on monthly excess returns over the
path's risk-free; max drawdown on the daily NAV; VaR95/CVaR95 on monthly returns,
reported as positive losses.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from engine.conventions import MONTHS_PER_YEAR
from engine.types import FloatArray

METRICS: tuple[str, ...] = (
    "ann_return",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "var95",
    "cvar95",
    "turnover",
    "cost_drag",
    "tracking_error",
    "avg_equity_weight",
)
"""Per-path metrics, in table order. Units: annualised decimals, except var95/cvar95
(monthly loss), turnover (weight traded per year) and avg_equity_weight (a weight)."""

STATISTICS: tuple[str, ...] = ("mean", "median", "p5", "p95")
SQRT12 = math.sqrt(MONTHS_PER_YEAR)


def annualised_return(monthly_returns: FloatArray) -> FloatArray:
    """(prod(1 + R_m))^(12 / n) - 1 over the last axis of n monthly returns."""
    n = monthly_returns.shape[-1]
    growth = np.exp(np.log1p(monthly_returns).sum(axis=-1))
    return growth ** (MONTHS_PER_YEAR / n) - 1.0


def annualised_vol(monthly_returns: FloatArray) -> FloatArray:
    """sqrt(12) x sample standard deviation (ddof = 1) of monthly returns."""
    return monthly_returns.std(axis=-1, ddof=1) * SQRT12


def sharpe_ratio(excess_returns: FloatArray) -> FloatArray:
    """sqrt(12) x mean / std (ddof = 1) of monthly excess returns; NaN when std = 0."""
    std = excess_returns.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, excess_returns.mean(axis=-1) / std * SQRT12, np.nan)


def sortino_ratio(excess_returns: FloatArray) -> FloatArray:
    """sqrt(12) x mean / downside deviation of monthly excess returns.

    Downside deviation = sqrt(mean(min(R - rf, 0)^2)) (target = the risk-free); NaN
    for a path with no month below the risk-free.
    """
    downside = np.sqrt(np.mean(np.minimum(excess_returns, 0.0) ** 2, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(downside > 0, excess_returns.mean(axis=-1) / downside * SQRT12, np.nan)


def max_drawdown(nav: FloatArray, *, initial: float | None = None) -> FloatArray:
    """max_t (1 - NAV_t / max_{s<=t} NAV_s), a positive fraction, over the last axis.

    ``initial``, when given, is a NAV before the first column (the running peak starts there).
    """
    peak = np.maximum.accumulate(nav, axis=-1)
    if initial is not None:
        np.maximum(peak, initial, out=peak)
    return np.max(1.0 - nav / peak, axis=-1)


def var_cvar(monthly_returns: FloatArray, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
    """Historical VaR and CVaR of monthly returns as positive losses.

    Notes
    -----
    With n returns sorted ascending R_(1) <= ... <= R_(n) and k = ceil((1 - level) n):
    VaR = -R_(k), CVaR = -(1/k) sum_{i<=k} R_(i). CVaR >= VaR always. For n = 60 and
    level 0.95, k = 3.
    """
    k = tail_count(monthly_returns.shape[-1], level)
    worst = np.partition(monthly_returns, k - 1, axis=-1)[..., :k]
    return -worst.max(axis=-1), -worst.mean(axis=-1)


def tail_count(n_months: int, level: float = 0.95) -> int:
    """k = ceil((1 - level) n), at least 1: how many of n monthly returns VaR/CVaR look at
    (:func:`var_cvar`)."""
    return max(1, math.ceil(round((1.0 - level) * n_months, 12)))


def path_mean(per_path: FloatArray) -> FloatArray:
    """Mean across paths (axis -1), ignoring NaN (NaN where a row is all NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(per_path, dtype=np.float64), axis=-1)


def summarise(per_path: FloatArray) -> dict[str, FloatArray]:
    """Mean, median, 5th and 95th percentile across paths (axis -1), ignoring NaN.

    Rows without NaN take numpy's vectorised ``percentile`` (linear interpolation), the
    others ``nanpercentile`` row by row: the same values, without a Python-level loop
    over every row.
    """
    per_path = np.asarray(per_path, dtype=np.float64)
    rows = per_path.reshape(-1, per_path.shape[-1])
    with_nan = np.isnan(rows).any(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        quantiles = np.percentile(rows, [5.0, 50.0, 95.0], axis=-1)
        if with_nan.any():
            quantiles[:, with_nan] = np.nanpercentile(rows[with_nan], [5.0, 50.0, 95.0],
                                                      axis=-1)
        p5, median, p95 = quantiles.reshape((3, *per_path.shape[:-1]))
    return {"mean": path_mean(per_path), "median": median, "p5": p5, "p95": p95}
