"""Compiled inner loops (numba) of the two-asset portfolio simulation.

The rebalancing is a sequential scan over months, the daily drawdown one over ~1300
days, for each of 10^5 (config, path) pairs; numpy would need several full-size
temporaries per step. :func:`path_metric_pass` computes the per-path metrics in one pass
per path, the path's daily growth kept in cache while every config reads it.

Bit-identity with numpy: sums and means reproduce numpy's pairwise summation
(:func:`pairwise_sum`), so these kernels give the same bits as the numpy expressions
their docstrings name (tests/engine/test_metrics_golden.py holds the reference).
Transcendental functions and sorting (log1p, exp, power, partition) stay in numpy,
whose SIMD implementations may differ from libm in the last bit.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.conventions import MONTHS_PER_YEAR
from engine.types import FloatArray, IntArray


@numba.njit(cache=True, nogil=True, parallel=True)
def rebalance_months(
    targets: FloatArray,
    asset_return: FloatArray,
    alt_return: FloatArray,
    tc: FloatArray,
    band: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:  # pragma: no cover - compiled
    """Month-by-month rebalancing with drift, no-trade band and costs.

    Parameters
    ----------
    targets : target weight w*_k, shape (n_configs, n_paths, n_months).
    asset_return, alt_return : R^E_k and R^A_k of each month, shape (n_paths, n_months).
    tc : cost per unit traded (tc_bps / 1e4), shape (n_configs,).
    band : no-trade band, shape (n_configs,).

    Returns
    -------
    weights, trades, costs, monthly_returns, each (n_configs, n_paths, n_months); see
    engine.strategy.portfolio.rebalance for the formulas.
    """
    n_configs, n_paths, n_months = targets.shape
    weights = np.empty_like(targets)
    trades = np.zeros_like(targets)
    costs = np.zeros_like(targets)
    monthly = np.empty_like(targets)
    for c in numba.prange(n_configs):
        for p in range(n_paths):
            drifted = targets[c, p, 0]
            for k in range(n_months):
                w = targets[c, p, k]
                if k > 0:
                    if abs(w - drifted) < band[c]:
                        w = drifted
                    trades[c, p, k] = abs(w - drifted)
                    costs[c, p, k] = 2.0 * tc[c] * trades[c, p, k]
                weights[c, p, k] = w
                gross = alt_return[p, k] + w * (asset_return[p, k] - alt_return[p, k])
                monthly[c, p, k] = (1.0 - costs[c, p, k]) * (1.0 + gross) - 1.0
                drifted = w * (1.0 + asset_return[p, k]) / (1.0 + gross)
    return weights, trades, costs, monthly


PAIRWISE_BLOCK = 128
"""numpy's PW_BLOCKSIZE: below it a sum runs on eight interleaved accumulators."""


@numba.njit(cache=True, nogil=True)
def _block_sum(a: FloatArray, start: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise sum of n <= 128 values (see :func:`pairwise_sum`)."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = 8
    while i < n - n % 8:
        j = start + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a: FloatArray, start: int, n: int) -> float:  # pragma: no cover - compiled
    """sum(a[start : start + n]) in numpy's order of additions (``np.add.reduce``).

    Notes
    -----
    numpy (loops_utils.h, pairwise_sum): n < 8 sums left to right; n <= 128 keeps eight
    accumulators r_j = a_j + a_{j+8} + ..., combines them as
    ((r_0 + r_1) + (r_2 + r_3)) + ((r_4 + r_5) + (r_6 + r_7)) and adds the n mod 8 tail;
    above 128 it splits at n2 = floor(n / 2) rounded down to a multiple of 8 and adds
    the two halves' sums. ``np.sum`` along a contiguous axis is 0.0 + that sum. The
    split is walked with an explicit stack: numba's cache cannot reload a recursive
    function (the reloaded code crashes).
    """
    if n <= PAIRWISE_BLOCK:
        return _block_sum(a, start, n)
    # (start, n) of pending halves; n = -1 marks "add the two sums on top of values".
    pending = np.empty((2 * 64, 2), dtype=np.int64)
    values = np.empty(64)
    top, n_values = 0, 0
    pending[0, 0], pending[0, 1] = start, n
    top = 1
    while top > 0:
        top -= 1
        lo, size = pending[top, 0], pending[top, 1]
        if size < 0:
            n_values -= 1
            values[n_values - 1] = values[n_values - 1] + values[n_values]
        elif size <= PAIRWISE_BLOCK:
            values[n_values] = _block_sum(a, lo, size)
            n_values += 1
        else:
            half = size // 2
            half -= half % 8
            pending[top, 0], pending[top, 1] = 0, -1
            pending[top + 1, 0], pending[top + 1, 1] = lo + half, size - half
            pending[top + 2, 0], pending[top + 2, 1] = lo, half
            top += 3
    return values[0]


@numba.njit(cache=True, nogil=True)
def _mean(a: FloatArray) -> float:  # pragma: no cover - compiled
    """``a.mean()`` of a 1-D contiguous array, bit for bit."""
    return (0.0 + pairwise_sum(a, 0, a.size)) / a.size


@numba.njit(cache=True, nogil=True)
def _std(a: FloatArray, mean: float, scratch: FloatArray) -> float:  # pragma: no cover
    """``a.std(ddof=1)`` given ``mean = a.mean()``, bit for bit (numpy's _var: the
    squared deviations summed pairwise, divided by n - 1, square root)."""
    n = a.size
    for i in range(n):
        d = a[i] - mean
        scratch[i] = d * d
    return np.sqrt((0.0 + pairwise_sum(scratch, 0, n)) / (n - 1))


PATH_METRIC_PASS: tuple[str, ...] = (
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "turnover",
    "cost_drag",
    "tracking_error",
    "avg_equity_weight",
)
"""The metrics :func:`path_metric_pass` returns, in the order of its first axis."""


@numba.njit(cache=True, nogil=True, parallel=True)
def path_metric_pass(
    weights: FloatArray,
    trades: FloatArray,
    costs: FloatArray,
    monthly_returns: FloatArray,
    cash_returns: FloatArray,
    equity: FloatArray,
    alternative: FloatArray,
    days: IntArray,
    c0: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    scale: FloatArray,
    target_vol: FloatArray,
) -> FloatArray:  # pragma: no cover - compiled
    """The per-path metrics of :data:`PATH_METRIC_PASS` in one pass per path.

    Parameters
    ----------
    weights, trades, costs, monthly_returns : the rebalancing's w_k, |w_k - w^d_k|, c_k
        and net R_k, each (n_configs, n_paths, n_months).
    cash_returns : the risk-free's return over each month, (n_paths, n_months).
    equity, alternative : daily levels, (n_paths, n_days + 1).
    days : the rebalance days d_0 < ... < d_{n_months}, (n_months + 1,).
    c0, c1, c2 : the month's variance coefficients of the daily portfolio return,
        (n_paths, n_months); ``scale`` (n_months,) annualises them; ``target_vol``
        (n_configs,). See engine.strategy.portfolio._variance_coefficients.

    Returns
    -------
    (len(PATH_METRIC_PASS), n_configs, n_paths), with y = n_months / 12 years and
    X_k = R_k - rf_k the excess returns:
    ann_vol = sqrt(12) std(R) (ddof 1); sharpe = sqrt(12) mean(X) / std(X), NaN when
    std(X) = 0; sortino = sqrt(12) mean(X) / sqrt(mean(min(X, 0)^2)), NaN when that is 0;
    max_drawdown = max_t (1 - NAV_t / max(1, max_{s<=t} NAV_s)) on the daily NAV
    NAV_t = A_k (g^A_t + w_k (g^E_t - g^A_t)), g_t = level_t / level_{d_k} on the days t of
    month k, A_k = (1 - c_k) prod_{j<k} (1 + R_j); turnover = sum_k |w_k - w^d_k| / y;
    cost_drag = sum_k c_k / y; tracking_error =
    sqrt(mean_k (sqrt(max(scale_k (c0 + c1 w_k + c2 w_k^2), 0)) - target_vol)^2);
    avg_equity_weight = mean_k w_k.

    Notes
    -----
    Paths are the parallel axis: a path's daily growth (2 x ~1300 floats) is computed once
    and stays in cache while every config reads it. The drawdown keeps the branch-free
    max/max form: tracking the trough since the last peak (one division per new peak)
    gives the same bits but ran 1.7x slower here, its branches mispredicted.
    """
    n_configs, n_paths, n_months = weights.shape
    first, last = days[0], days[-1]
    n_eval = last - first
    years = n_months / MONTHS_PER_YEAR
    sqrt12 = np.sqrt(float(MONTHS_PER_YEAR))
    out = np.empty((8, n_configs, n_paths))
    for p in numba.prange(n_paths):
        growth_alt = np.empty(n_eval)
        growth_gap = np.empty(n_eval)
        for k in range(n_months):
            d0 = days[k]
            for t in range(d0 + 1, days[k + 1] + 1):
                g_alt = alternative[p, t] / alternative[p, d0]
                growth_alt[t - first - 1] = g_alt
                growth_gap[t - first - 1] = equity[p, t] / equity[p, d0] - g_alt
        excess = np.empty(n_months)
        scratch = np.empty(n_months)
        for c in range(n_configs):
            monthly = monthly_returns[c, p]
            mean = _mean(monthly)
            out[0, c, p] = _std(monthly, mean, scratch) * sqrt12
            for k in range(n_months):
                excess[k] = monthly[k] - cash_returns[p, k]
            mean_x = _mean(excess)
            std_x = _std(excess, mean_x, scratch)
            out[1, c, p] = mean_x / std_x * sqrt12 if std_x > 0 else np.nan
            for k in range(n_months):
                low = min(excess[k], 0.0)
                scratch[k] = low * low
            downside = np.sqrt(_mean(scratch))
            out[2, c, p] = mean_x / downside * sqrt12 if downside > 0 else np.nan

            peak = 1.0
            worst = 0.0
            nav_start = 1.0
            for k in range(n_months):
                a = nav_start * (1.0 - costs[c, p, k])
                nav_start *= 1.0 + monthly[k]
                w = weights[c, p, k]
                for t in range(days[k] - first, days[k + 1] - first):
                    nav = a * (growth_alt[t] + w * growth_gap[t])
                    peak = max(peak, nav)
                    worst = max(worst, 1.0 - nav / peak)
            out[3, c, p] = worst

            out[4, c, p] = (0.0 + pairwise_sum(trades[c, p], 0, n_months)) / years
            out[5, c, p] = (0.0 + pairwise_sum(costs[c, p], 0, n_months)) / years
            total = 0.0
            for k in range(n_months):
                w = weights[c, p, k]
                variance = ((c2[p, k] * w + c1[p, k]) * w + c0[p, k]) * scale[k]
                gap = np.sqrt(max(variance, 0.0)) - target_vol[c]
                total += gap * gap
            out[6, c, p] = np.sqrt(total / n_months)
            out[7, c, p] = _mean(weights[c, p])
    return out
