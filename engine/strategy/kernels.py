"""Compiled inner loops (numba) of the two-asset portfolio simulation.

The rebalancing is a sequential scan over months, the daily drawdown one over ~1300
days, for each of 10^5 (config, path) pairs; numpy would need several full-size
temporaries per step. :func:`strategy_pass` rebalances and computes the per-path metrics
in one pass per path, the path's daily growth kept in cache while every config reads it.

Bit-identity with numpy: sums and means reproduce numpy's pairwise summation
(:func:`pairwise_sum`), so these kernels give the same bits as the numpy expressions
their docstrings name (tests/engine/test_metrics_golden.py holds the reference).
Transcendental functions and sorting (log1p, exp, power, partition) stay in numpy,
whose SIMD implementations may differ from libm in the last bit.

The kernels fill output arrays their caller allocates with numpy: numpy advises the
kernel to back large arrays with huge pages, numba's allocator does not, and where huge
pages are left to that advice (``transparent_hugepage=madvise``, as here) the first
touch of a fresh 48 MB array from numba takes some 12,000 page faults, which cost more
than the rebalancing itself.
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
    weights: FloatArray,
    trades: FloatArray,
    costs: FloatArray,
    monthly: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Month-by-month rebalancing with drift, no-trade band and costs.

    Parameters
    ----------
    targets : target weight w*_k, shape (n_configs, n_paths, n_months).
    asset_return, alt_return : R^E_k and R^A_k of each month, shape (n_paths, n_months).
    tc : cost per unit traded (tc_bps / 1e4), shape (n_configs,).
    band : no-trade band, shape (n_configs,).
    weights, trades, costs, monthly : filled with w_k, |w_k - w^d_k|, c_k and the net
        R_k, each (n_configs, n_paths, n_months); see engine.strategy.portfolio.rebalance
        for the formulas.
    """
    for p in numba.prange(targets.shape[1]):
        _rebalance_path(targets[:, p], asset_return[p], alt_return[p], tc, band,
                        weights[:, p], trades[:, p], costs[:, p], monthly[:, p])


@numba.njit(cache=True, nogil=True)
def _rebalance_path(
    targets: FloatArray,
    asset_return: FloatArray,
    alt_return: FloatArray,
    tc: FloatArray,
    band: FloatArray,
    weights: FloatArray,
    trades: FloatArray,
    costs: FloatArray,
    monthly: FloatArray,
) -> None:  # pragma: no cover - compiled
    """:func:`rebalance_months` on one path: ``targets`` and the outputs (n_configs,
    n_months), the returns (n_months,).

    The configs are the inner loop: the drift w^d_k = w_{k-1} (1 + R^E) / (1 + R^G) chains
    each config's months through a division, and independent configs side by side keep
    the processor busy while one chain waits.
    """
    n_configs, n_months = targets.shape
    drifted = np.empty(n_configs)
    for c in range(n_configs):
        drifted[c] = targets[c, 0]
    for k in range(n_months):
        r_e, r_a = asset_return[k], alt_return[k]
        for c in range(n_configs):
            w = targets[c, k]
            trade = 0.0
            cost = 0.0
            if k > 0:
                if abs(w - drifted[c]) < band[c]:
                    w = drifted[c]
                trade = abs(w - drifted[c])
                cost = 2.0 * tc[c] * trade
            weights[c, k] = w
            trades[c, k] = trade
            costs[c, k] = cost
            gross = r_a + w * (r_e - r_a)
            monthly[c, k] = (1.0 - cost) * (1.0 + gross) - 1.0
            drifted[c] = w * (1.0 + r_e) / (1.0 + gross)


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


@numba.njit(cache=True, nogil=True)
def return_metrics(
    monthly: FloatArray, excess: FloatArray, scratch: FloatArray
) -> tuple[float, float, float]:  # pragma: no cover - compiled
    """(ann_vol, sharpe, sortino) of one path's monthly returns R and excess returns X
    (1-D, contiguous; ``scratch`` as long), bit for bit engine.strategy.metrics'
    annualised_vol, sharpe_ratio and sortino_ratio: sqrt(12) std(R) (ddof 1);
    sqrt(12) mean(X) / std(X), NaN when std(X) = 0; sqrt(12) mean(X) /
    sqrt(mean(min(X, 0)^2)), NaN when that is 0."""
    sqrt12 = np.sqrt(float(MONTHS_PER_YEAR))
    ann_vol = _std(monthly, _mean(monthly), scratch) * sqrt12
    mean_x = _mean(excess)
    std_x = _std(excess, mean_x, scratch)
    sharpe = mean_x / std_x * sqrt12 if std_x > 0 else np.nan
    for k in range(excess.size):
        low = min(excess[k], 0.0)
        scratch[k] = low * low
    downside = np.sqrt(_mean(scratch))
    sortino = mean_x / downside * sqrt12 if downside > 0 else np.nan
    return ann_vol, sharpe, sortino


PASS_METRICS: tuple[str, ...] = (
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "turnover",
    "cost_drag",
    "tracking_error",
    "avg_equity_weight",
)
"""The metrics :func:`strategy_pass` returns, in the order of its last output's first axis."""


@numba.njit(cache=True, nogil=True, parallel=True)
def strategy_pass(
    targets: FloatArray,
    asset_return: FloatArray,
    alt_return: FloatArray,
    tc: FloatArray,
    band: FloatArray,
    cash_returns: FloatArray,
    equity: FloatArray,
    alternative: FloatArray,
    days: IntArray,
    c0: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    scale: FloatArray,
    target_vol: FloatArray,
    weights: FloatArray,
    costs: FloatArray,
    monthly_returns: FloatArray,
    out: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Rebalance every config on every path and compute its metrics, one pass per path.

    Parameters
    ----------
    targets, asset_return, alt_return, tc, band : as :func:`rebalance_months`.
    cash_returns : the risk-free's return over each month, (n_paths, n_months).
    equity, alternative : daily levels, (n_paths, n_days + 1).
    days : the rebalance days d_0 < ... < d_{n_months}, (n_months + 1,).
    c0, c1, c2 : the month's variance coefficients of the daily portfolio return,
        (n_paths, n_months); ``scale`` (n_months,) annualises them; ``target_vol``
        (n_configs,). See engine.strategy.portfolio._variance_coefficients.

    weights, costs, monthly_returns : filled as :func:`rebalance_months` fills them,
        each (n_configs, n_paths, n_months).
    out : filled with the metrics of :data:`PASS_METRICS`,
        (len(PASS_METRICS), n_configs, n_paths), with y = n_months / 12 years and
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
    and stays in cache while every config reads it, and the trades live only in a per-path
    scratch. The daily drawdown scan, the largest share, runs the configs in the inner
    loop (A_k and w_k laid out months x configs), so the compiler computes several configs'
    NAV, peak and division per instruction; each config's operations are those of a
    scalar scan, in the same order, so the bits are too.
    """
    n_configs, n_paths, n_months = targets.shape
    first, last = days[0], days[-1]
    n_eval = last - first
    years = n_months / MONTHS_PER_YEAR
    for p in numba.prange(n_paths):
        trades = np.empty((n_configs, n_months))
        _rebalance_path(targets[:, p], asset_return[p], alt_return[p], tc, band,
                        weights[:, p], trades, costs[:, p], monthly_returns[:, p])
        growth_alt = np.empty(n_eval)
        growth_gap = np.empty(n_eval)
        worst = np.empty(n_configs)
        for k in range(n_months):
            d0 = days[k]
            for t in range(d0 + 1, days[k + 1] + 1):
                g_alt = alternative[p, t] / alternative[p, d0]
                growth_alt[t - first - 1] = g_alt
                growth_gap[t - first - 1] = equity[p, t] / equity[p, d0] - g_alt
        _max_drawdowns(growth_alt, growth_gap, days, weights[:, p], costs[:, p],
                       monthly_returns[:, p], worst)
        excess = np.empty(n_months)
        scratch = np.empty(n_months)
        for c in range(n_configs):
            monthly = monthly_returns[c, p]
            for k in range(n_months):
                excess[k] = monthly[k] - cash_returns[p, k]
            out[0, c, p], out[1, c, p], out[2, c, p] = return_metrics(monthly, excess, scratch)
            out[3, c, p] = worst[c]
            out[4, c, p] = (0.0 + pairwise_sum(trades[c], 0, n_months)) / years
            out[5, c, p] = (0.0 + pairwise_sum(costs[c, p], 0, n_months)) / years
            total = 0.0
            for k in range(n_months):
                w_k = weights[c, p, k]
                variance = ((c2[p, k] * w_k + c1[p, k]) * w_k + c0[p, k]) * scale[k]
                gap = np.sqrt(max(variance, 0.0)) - target_vol[c]
                total += gap * gap
            out[6, c, p] = np.sqrt(total / n_months)
            out[7, c, p] = _mean(weights[c, p])


@numba.njit(cache=True, nogil=True)
def _month_growth_bounds(
    growth_alt: FloatArray, growth_gap: FloatArray, days: IntArray
) -> FloatArray:  # pragma: no cover - compiled
    """Per month k: min and max over its days of g^A_t and of g^E_t - g^A_t, (n_months, 4)
    as (min g^A, max g^A, min gap, max gap)."""
    n_months = days.shape[0] - 1
    out = np.empty((n_months, 4))
    for k in range(n_months):
        lo, hi = days[k] - days[0], days[k + 1] - days[0]
        out[k, 0] = out[k, 1] = growth_alt[lo]
        out[k, 2] = out[k, 3] = growth_gap[lo]
        for t in range(lo + 1, hi):
            out[k, 0] = min(out[k, 0], growth_alt[t])
            out[k, 1] = max(out[k, 1], growth_alt[t])
            out[k, 2] = min(out[k, 2], growth_gap[t])
            out[k, 3] = max(out[k, 3], growth_gap[t])
    return out


@numba.njit(cache=True, nogil=True)
def _max_drawdowns(
    growth_alt: FloatArray,
    growth_gap: FloatArray,
    days: IntArray,
    weights: FloatArray,
    costs: FloatArray,
    monthly: FloatArray,
    worst: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Fill ``worst`` (n_configs,) with max_t (1 - NAV_t / max(1, max_{s<=t} NAV_s)) of
    each config on one path (``weights``, ``costs``, ``monthly``: (n_configs, n_months)),
    as the day-by-day scan peak = max(peak, NAV_t), worst = max(worst, 1 - NAV_t / peak)
    gives it, bit for bit, skipping the days that cannot change it.

    Notes
    -----
    In month k, NAV_t = A_k (g^A_t + w_k gap_t) with A_k = (1 - c_k) prod_{j<k} (1 + R_j).
    For A_k > 0 and w_k >= 0 every rounded operation of that expression is non-decreasing
    in g^A_t and gap_t, so the month's (min, max) of g^A and of the gap give a rounded
    U >= NAV_t and L <= NAV_t on each of its days. When U <= peak no day sets a new peak;
    the peak stays and 1 - NAV_t / peak, non-increasing in NAV_t in rounded arithmetic
    too, is largest on the month's lowest NAV: the month changes worst only through
    1 - min_t NAV_t / peak, and not at all when 1 - L / peak <= worst. The other months
    (a possible new peak, A_k <= 0, w_k < 0, NaN) take the day-by-day scan, the month's
    scanned configs packed side by side so the compiler runs several per instruction.
    """
    n_configs, n_months = weights.shape
    first = days[0]
    bounds = _month_growth_bounds(growth_alt, growth_gap, days)
    peak = np.ones(n_configs)
    nav_start = np.ones(n_configs)
    worst[:] = 0.0
    scanned = np.empty(n_configs, dtype=np.int64)
    scan_a = np.empty(n_configs)
    scan_w = np.empty(n_configs)
    scan_peak = np.empty(n_configs)
    scan_worst = np.empty(n_configs)
    for k in range(n_months):
        lo, hi = days[k] - first, days[k + 1] - first
        n_scanned = 0
        for c in range(n_configs):
            a = nav_start[c] * (1.0 - costs[c, k])
            nav_start[c] *= 1.0 + monthly[c, k]
            w = weights[c, k]
            if a > 0.0 and w >= 0.0 and a * (bounds[k, 1] + w * bounds[k, 3]) <= peak[c]:
                if 1.0 - a * (bounds[k, 0] + w * bounds[k, 2]) / peak[c] <= worst[c]:
                    continue
                low = a * (growth_alt[lo] + w * growth_gap[lo])
                for t in range(lo + 1, hi):
                    low = min(low, a * (growth_alt[t] + w * growth_gap[t]))
                worst[c] = max(worst[c], 1.0 - low / peak[c])
                continue
            scanned[n_scanned] = c
            scan_a[n_scanned], scan_w[n_scanned] = a, w
            scan_peak[n_scanned], scan_worst[n_scanned] = peak[c], worst[c]
            n_scanned += 1
        for t in range(lo, hi):
            g_alt, g_gap = growth_alt[t], growth_gap[t]
            for j in range(n_scanned):
                nav = scan_a[j] * (g_alt + scan_w[j] * g_gap)
                top = max(scan_peak[j], nav)
                scan_peak[j] = top
                scan_worst[j] = max(scan_worst[j], 1.0 - nav / top)
        for j in range(n_scanned):
            peak[scanned[j]] = scan_peak[j]
            worst[scanned[j]] = scan_worst[j]
