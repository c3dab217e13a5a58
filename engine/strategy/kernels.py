"""Compiled inner loops (numba) of the two-asset portfolio simulation.

The rebalancing is a sequential scan over months, the daily drawdown one over ~1300
days, for each of 10^5 (config, path) pairs; numpy would need several full-size
temporaries per step. Two passes, each parallel over paths: :func:`market_pass` computes
what every config reads of a path (trailing vols, month returns, tracking-error sums),
:func:`strategy_pass` weighs, rebalances and computes every metric of every config on a
path while the path's daily growth stays in cache.

Bit-identity with numpy: sums and means reproduce numpy's pairwise summation
(:func:`pairwise_sum`), powers numpy's shortcuts, and every expression keeps numpy's order
of operations (no fused multiply-add, numba's default), so these kernels give the same
bits as the numpy expressions their docstrings name (tests/engine/test_strategy_kernels.py
and tests/engine/test_metrics_golden.py hold the references). ``math.log``, ``log1p`` and
``exp`` call the C library, as numpy's float64 ufuncs do on a CPU without AVX-512 (as
engine.market.kernels relies on too); an AVX-512 numpy may differ from them in the last bit.

The kernels fill output arrays their caller allocates with numpy, so every large array
gets numpy's huge-page advice (``NUMPY_MADVISE_HUGEPAGE``) or none alike; numba's
allocator never gives it, and where huge pages are cheap a fresh 48 MB array first
touched from numba takes some 12,000 page faults, which cost more than the rebalancing
itself (docs/engine.md, "Memory", on machines where huge pages are the dear ones).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_YEAR
from engine.strategy.config import WEIGHT_FNS
from engine.strategy.drawdown import max_drawdowns
from engine.strategy.metrics import METRICS
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


INVERSE_VOL, INVERSE_VOL_SQUARED, LINEAR, SIGMOID = (
    WEIGHT_FNS.index(name) for name in ("inverse_vol", "inverse_vol_squared", "linear", "sigmoid")
)
(ANN_RETURN, ANN_VOL, SHARPE, SORTINO, MAX_DRAWDOWN, VAR, CVAR, TURNOVER, COST_DRAG,
 TRACKING_ERROR, AVG_WEIGHT) = (METRICS.index(name) for name in (
    "ann_return", "ann_vol", "sharpe", "sortino", "max_drawdown", "var95", "cvar95",
    "turnover", "cost_drag", "tracking_error", "avg_equity_weight"))


class Rules(NamedTuple):
    """Each config's rule as arrays of (n_configs,), for :func:`strategy_pass`.

    ``weight_fn`` is the index of the config's rule in engine.strategy.config.WEIGHT_FNS,
    ``window`` the row of its trailing window in the vols; ``slope`` is
    k = risk_aversion / target_vol (unused by the inverse rules), ``low`` and ``high`` the
    allocation range, ``tc`` the cost per unit traded (tc_bps / 1e4), ``band`` the no-trade
    band.
    """

    weight_fn: IntArray
    window: IntArray
    target_vol: FloatArray
    slope: FloatArray
    low: FloatArray
    high: FloatArray
    tc: FloatArray
    band: FloatArray


@numba.njit(cache=True, nogil=True, error_model="numpy")
def target_weight(
    rv: float, weight_fn: int, tv: float, slope: float, low: float, high: float
) -> float:  # pragma: no cover - compiled
    """engine.strategy.config.target_weights of one realized vol, bit for bit: tv / rv,
    (tv / rv)^2, max(0, 1 - k (rv - tv)) or 1 / (1 + exp(k (rv - tv))), clipped to
    [low, high] (NaN stays NaN, rv = 0 gives ``high`` for the inverse rules)."""
    if weight_fn == INVERSE_VOL:
        w = tv / rv
    elif weight_fn == INVERSE_VOL_SQUARED:
        ratio = tv / rv
        w = ratio * ratio
    elif weight_fn == LINEAR:
        w = 1.0 - slope * (rv - tv)
        if 0.0 >= w:
            w = 0.0
    else:
        w = 1.0 / (1.0 + math.exp(slope * (rv - tv)))
    if w != w:
        return w
    if not w > low:
        w = low
    return w if w < high else high


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _month_sum(x: FloatArray, n: int) -> float:  # pragma: no cover - compiled
    """``np.add.reduceat``'s sum of one segment x[0 : n]: x_0 + the pairwise sum of the rest."""
    if n == 1:
        return x[0]
    return x[0] + pairwise_sum(x, 1, n - 1)


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def market_pass(
    equity: FloatArray,
    alternative: FloatArray,
    cash: FloatArray,
    days: IntArray,
    windows: IntArray,
    vols: FloatArray,
    period_returns: FloatArray,
    variance_coefficients: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Every path's per-month inputs shared by all configs, one pass per path.

    Parameters
    ----------
    equity, alternative, cash : daily levels, (n_paths, n_days + 1).
    days : the rebalance days d_0 < ... < d_{n_months}, (n_months + 1,).
    windows : the trailing windows n in days, (n_windows,); d_0 >= max(windows).
    vols : filled with the trailing realized vol at each d_k, (n_windows, n_paths, n_months),
        as engine.strategy.rolling.realized_vol_from_logs gives it bit for bit:
        sqrt(252 max(Q_e - Q_{e-n} - (L_e - L_{e-n})^2 / n, 0) / (n - 1)) with L = ln S
        and Q_j = sum_{i<=j} (L_i - L_{i-1})^2 accumulated from day 1.
    period_returns : filled with the equity's, the alternative's and the cash account's
        return over each month, level_{d_{k+1}} / level_{d_k} - 1, (3, n_paths, n_months).
    variance_coefficients : filled with c0, c1, c2 of
        engine.strategy.portfolio._variance_coefficients, (3, n_paths, n_months); the month
        sums of the daily returns r_t = (S_{t+1} - S_t) / S_t are ``np.add.reduceat``'s.

    Notes
    -----
    ln S is ``math.log``, the C library's, which numpy's float64 log calls on a CPU
    without AVX-512 (engine.market.kernels relies on the same for exp).
    """
    n_paths = equity.shape[0]
    n_months = days.shape[0] - 1
    last_start = days[n_months - 1]
    longest_month = 0
    for k in range(n_months):
        longest_month = max(longest_month, days[k + 1] - days[k])
    for p in numba.prange(n_paths):
        log_level = np.empty(last_start + 1)
        cum_sq = np.empty(last_start + 1)
        log_level[0] = math.log(equity[p, 0])
        cum_sq[0] = 0.0
        for t in range(1, last_start + 1):
            log_level[t] = math.log(equity[p, t])
            step = log_level[t] - log_level[t - 1]
            cum_sq[t] = cum_sq[t - 1] + step * step
        for i in range(windows.shape[0]):
            n = windows[i]
            for k in range(n_months):
                end = days[k]
                sum_r = log_level[end] - log_level[end - n]
                variance = cum_sq[end] - cum_sq[end - n] - sum_r * sum_r / n
                if variance < 0.0:
                    variance = 0.0
                vols[i, p, k] = np.sqrt(variance / (n - 1) * TRADING_DAYS_PER_YEAR)
        sums = np.empty((5, longest_month))
        for k in range(n_months):
            d0, d1 = days[k], days[k + 1]
            period_returns[0, p, k] = equity[p, d1] / equity[p, d0] - 1.0
            period_returns[1, p, k] = alternative[p, d1] / alternative[p, d0] - 1.0
            period_returns[2, p, k] = cash[p, d1] / cash[p, d0] - 1.0
            for t in range(d0, d1):
                r_alt = (alternative[p, t + 1] - alternative[p, t]) / alternative[p, t]
                gap = (equity[p, t + 1] - equity[p, t]) / equity[p, t] - r_alt
                sums[0, t - d0] = r_alt
                sums[1, t - d0] = gap
                sums[2, t - d0] = r_alt * r_alt
                sums[3, t - d0] = r_alt * gap
                sums[4, t - d0] = gap * gap
            m = d1 - d0
            s_a, s_g = _month_sum(sums[0], m), _month_sum(sums[1], m)
            variance_coefficients[0, p, k] = _month_sum(sums[2], m) - s_a * s_a / m
            variance_coefficients[1, p, k] = 2.0 * (_month_sum(sums[3], m) - s_a * s_g / m)
            variance_coefficients[2, p, k] = _month_sum(sums[4], m) - s_g * s_g / m


@numba.njit(cache=True, nogil=True, error_model="numpy")
def annualised_return(monthly: FloatArray, scratch: FloatArray) -> float:  # pragma: no cover
    """engine.strategy.metrics.annualised_return of one path's monthly returns R (1-D,
    contiguous; ``scratch`` as long), bit for bit: exp(sum ln(1 + R))^(12 / n) - 1, the sum
    pairwise as numpy's, the power as numpy's ``array ** float`` (a square, square root or
    reciprocal for the exponents 2, 0.5 and -1, else the C library's pow)."""
    n = monthly.size
    for k in range(n):
        scratch[k] = math.log1p(monthly[k])
    growth = math.exp(0.0 + pairwise_sum(scratch, 0, n))
    exponent = MONTHS_PER_YEAR / n
    if exponent == 2.0:
        power = growth * growth
    elif exponent == 0.5:
        power = np.sqrt(growth)
    elif exponent == -1.0:
        power = 1.0 / growth
    else:
        power = growth**exponent
    return power - 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _before(a: float, b: float) -> bool:  # pragma: no cover - compiled
    """numpy's sort order of floats: a < b, NaN after every number."""
    return a < b or (b != b and a == a)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def var_cvar(
    monthly: FloatArray, k: int, worst: FloatArray
) -> tuple[float, float]:  # pragma: no cover - compiled
    """engine.strategy.metrics.var_cvar of one path's monthly returns with k tail months
    (``worst`` a scratch of k): the k lowest R_(1) <= ... <= R_(k), NaN last as numpy
    sorts; VaR = -R_(k), CVaR = -(sum_i R_(i)) / k summed in that ascending order.

    Notes
    -----
    numpy's ``partition`` selects k <= 3 values by selection sort, ascending, so the sums
    agree bit for bit there (60 months at 95%); for k > 3 its partition leaves the k
    values in another order and CVaR may differ by the rounding of a sum of k terms,
    a few ulp.
    """
    n_worst = 0
    for i in range(monthly.size):
        x = monthly[i]
        if n_worst == k:
            if not _before(x, worst[k - 1]):
                continue
            n_worst -= 1
        j = n_worst
        while j > 0 and _before(x, worst[j - 1]):
            worst[j] = worst[j - 1]
            j -= 1
        worst[j] = x
        n_worst += 1
    tail = worst[k - 1]
    for i in range(k - 1):
        if worst[i] != worst[i]:
            tail = worst[i]
    return -tail, -((0.0 + pairwise_sum(worst, 0, k)) / k)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def return_rows(
    out: FloatArray,
    c: int,
    p: int,
    returns: FloatArray,
    excess: FloatArray,
    worst: float,
    trades: FloatArray,
    cost: FloatArray,
    tail_months: int,
    scratch: FloatArray,
    tail: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Fill the rows of ``out[:, c, p]`` that follow from one config's month returns on
    one path: ann_return (:func:`annualised_return`); ann_vol, sharpe, sortino
    (:func:`return_metrics` of R_k and X_k = R_k - rf_k, ``excess``); max_drawdown =
    ``worst``; var95, cvar95 (:func:`var_cvar` over ``tail_months``); turnover =
    sum_k |w_k - w^d_k| / y and cost_drag = sum_k c_k / y, y = n_months / 12 years
    (``trades`` and ``cost`` per month, (n_months,)). ``scratch`` (n_months,) and
    ``tail`` (tail_months,) are overwritten."""
    n_months = returns.shape[0]
    years = n_months / MONTHS_PER_YEAR
    out[ANN_RETURN, c, p] = annualised_return(returns, scratch)
    out[ANN_VOL, c, p], out[SHARPE, c, p], out[SORTINO, c, p] = return_metrics(
        returns, excess, scratch)
    out[MAX_DRAWDOWN, c, p] = worst
    out[VAR, c, p], out[CVAR, c, p] = var_cvar(returns, tail_months, tail)
    out[TURNOVER, c, p] = (0.0 + pairwise_sum(trades, 0, n_months)) / years
    out[COST_DRAG, c, p] = (0.0 + pairwise_sum(cost, 0, n_months)) / years


@numba.njit(cache=True, nogil=True)
def copy_to_path(out: FloatArray, p: int, values: FloatArray) -> None:  # pragma: no cover
    """out[:, p, :] = values, (n_configs, n_months), element by element: a slice
    assignment compiles numba's shape-mismatch message, seconds more for each process
    that compiles the kernel calling it."""
    for c in range(values.shape[0]):
        for k in range(values.shape[1]):
            out[c, p, k] = values[c, k]


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def strategy_pass(
    vols: FloatArray,
    rules: Rules,
    period_returns: FloatArray,
    variance_coefficients: FloatArray,
    scale: FloatArray,
    equity: FloatArray,
    alternative: FloatArray,
    days: IntArray,
    tail_months: int,
    out: FloatArray,
    weights: FloatArray,
    costs: FloatArray,
    monthly_returns: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Weigh, rebalance and compute every metric of every config on every path, one pass
    per path.

    Parameters
    ----------
    vols, period_returns, variance_coefficients : filled by :func:`market_pass`.
    rules : the configs (:class:`Rules`).
    scale : 252 / (n_k - 1) of each month of n_k days, (n_months,).
    equity, alternative : daily levels, (n_paths, n_days + 1).
    days : the rebalance days d_0 < ... < d_{n_months}, (n_months + 1,).
    tail_months : k of VaR/CVaR (engine.strategy.metrics.var_cvar).
    out : filled with the metrics of engine.strategy.metrics.METRICS in that order,
        (len(METRICS), n_configs, n_paths).
    weights, costs, monthly_returns : filled with w_k, c_k and the net R_k,
        (n_configs, n_paths, n_months), or of size 0 to keep them per path only.

    Notes
    -----
    Per config and path: w*_k = :func:`target_weight` of the trailing vol; the rebalancing
    of :func:`rebalance_months`; the daily max drawdown of engine.strategy.drawdown; with
    y = n_months / 12 years and X_k = R_k - rf_k: ann_return (:func:`annualised_return`);
    ann_vol, sharpe, sortino (:func:`return_metrics`); var95, cvar95 (:func:`var_cvar`);
    turnover = sum_k |w_k - w^d_k| / y; cost_drag = sum_k c_k / y; tracking_error =
    sqrt(mean_k (sqrt(max(scale_k (c0 + c1 w_k + c2 w_k^2), 0)) - target_vol)^2);
    avg_equity_weight = mean_k w_k. Each is computed with numpy's order of operations
    (engine.strategy.metrics and engine.strategy.portfolio hold the numpy reference).

    Paths are the parallel axis: a path's targets, weights, returns and daily growth
    (2 x ~1300 floats) live in per-path scratch that stays in cache while every config
    reads it; nothing of size configs x paths x months is written unless asked for
    (:func:`copy_to_path`).
    """
    n_configs = rules.tc.shape[0]
    n_paths, n_months = period_returns.shape[1], period_returns.shape[2]
    first, last = days[0], days[-1]
    n_eval = last - first
    keep = weights.size > 0
    for p in numba.prange(n_paths):
        targets = np.empty((n_configs, n_months))
        for c in range(n_configs):
            row = vols[rules.window[c], p]
            for k in range(n_months):
                targets[c, k] = target_weight(row[k], rules.weight_fn[c], rules.target_vol[c],
                                              rules.slope[c], rules.low[c], rules.high[c])
        weight = np.empty((n_configs, n_months))
        trades = np.empty((n_configs, n_months))
        cost = np.empty((n_configs, n_months))
        monthly = np.empty((n_configs, n_months))
        _rebalance_path(targets, period_returns[0, p], period_returns[1, p], rules.tc,
                        rules.band, weight, trades, cost, monthly)
        growth_alt = np.empty(n_eval)
        growth_gap = np.empty(n_eval)
        for k in range(n_months):
            d0 = days[k]
            for t in range(d0 + 1, days[k + 1] + 1):
                g_alt = alternative[p, t] / alternative[p, d0]
                growth_alt[t - first - 1] = g_alt
                growth_gap[t - first - 1] = equity[p, t] / equity[p, d0] - g_alt
        worst = np.empty(n_configs)
        max_drawdowns(growth_alt, growth_gap, days, weight, cost, monthly, worst)
        excess = np.empty(n_months)
        scratch = np.empty(n_months)
        tail = np.empty(tail_months)
        cash_return = period_returns[2, p]
        c0, c1, c2 = variance_coefficients[0, p], variance_coefficients[1, p], \
            variance_coefficients[2, p]
        for c in range(n_configs):
            returns = monthly[c]
            for k in range(n_months):
                excess[k] = returns[k] - cash_return[k]
            return_rows(out, c, p, returns, excess, worst[c], trades[c], cost[c], tail_months,
                        scratch, tail)
            for k in range(n_months):
                w_k = weight[c, k]
                variance = ((c2[k] * w_k + c1[k]) * w_k + c0[k]) * scale[k]
                scratch[k] = np.sqrt(0.0 if 0.0 > variance else variance) - rules.target_vol[c]
            total = 0.0
            for k in range(n_months):
                total += scratch[k] * scratch[k]
            out[TRACKING_ERROR, c, p] = np.sqrt(total / n_months)
            out[AVG_WEIGHT, c, p] = _mean(weight[c])
        if keep:
            copy_to_path(weights, p, weight)
            copy_to_path(costs, p, cost)
            copy_to_path(monthly_returns, p, monthly)
