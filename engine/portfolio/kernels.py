"""Compiled month-by-month simulation of the multi-asset rule and its metrics (numba).

One pass per path sets every config's target weights of every asset, applies the
no-trade band, pays costs, compounds the month, tracks the daily NAV's drawdown and the
month's realised vol against the target, then computes the config's per-path metrics,
so no (configs x paths x months x assets) array is ever stored. The outputs are
allocated by the caller with numpy (see engine.strategy.kernels on huge pages).
"""

from __future__ import annotations

import numba
import numpy as np

from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_YEAR
from engine.strategy.kernels import pairwise_sum, return_metrics
from engine.types import FloatArray, IntArray


@numba.njit(cache=True, nogil=True, parallel=True)
def run_rule(
    scale: FloatArray,
    risky_index: IntArray,
    risky_mix: FloatArray,
    defensive_index: IntArray,
    defensive_mix: FloatArray,
    levels: FloatArray,
    days: IntArray,
    target_vol: FloatArray,
    tc: FloatArray,
    band: FloatArray,
    cash_returns: FloatArray,
    monthly: FloatArray,
    costs: FloatArray,
    risky: FloatArray,
    weight_sum: FloatArray,
    out: FloatArray,
    weight_paths: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Simulate every config on every path and compute its per-path metrics.

    Parameters
    ----------
    scale : risky-sleeve weight s_k of each config, path and rebalance, (C, P, K).
    risky_index, defensive_index : row of ``risky_mix`` / ``defensive_mix`` each config
        uses, (C,).
    risky_mix : equity base mixes b_k, (M_r, P, K, n_e); defensive_mix d_k, (M_d, P, K, n_d).
    levels : daily levels of the A = n_e + n_d assets, (A, P, n_days + 1).
    days : rebalance days d_0 < ... < d_K, (K + 1,).
    target_vol, tc (cost per unit traded), band : per config, (C,).
    cash_returns : the risk-free's return over each month, (P, K).

    monthly, costs, risky : filled with the (C, P, K) net return, cost paid (fraction of
        NAV) and equity-sleeve weight; weight_sum (C, P, A) with the sum over months of
        each asset's weight.
    out : filled with the metrics of engine.strategy.kernels.PASS_METRICS, (8, C, P):
        ann_vol, sharpe, sortino as engine.strategy.kernels.return_metrics; max_drawdown;
        turnover and cost_drag (the sums of the one-way turnover and of the costs over
        the n_months / 12 years); tracking_error; avg_equity_weight. See
        engine.portfolio.evaluation.run_portfolio for the formulas.
    weight_paths : filled with every asset's weight w_a,k after each rebalance, (C, P, K, A),
        or an empty (0, 0, 0, 0) array to keep none.

    Notes
    -----
    Per path, once for all configs: the month's simple returns R_a,k, the growth
    g_a,t = level_a,t / level_a,d_k on the days t of month k with its per-month minimum
    and maximum, and the annualised covariance
    S_k = 252 (sum r_a r_b - sum r_a sum r_b / n) / (n - 1) of the month's n daily simple
    returns.

    The daily NAV A_k V_t, V_t = sum_a w_a g_a,t summed in asset order, is scanned day by
    day only in the months where it may set a new peak or a new drawdown. Every rounded
    operation of A_k V_t is monotone in each g_a,t (non-decreasing for w_a >= 0,
    non-increasing for w_a < 0, A_k > 0), so the same sum over each asset's month
    maximum (minimum for w_a < 0) bounds every day's NAV from above and the opposite one
    from below, in rounded arithmetic too; when the upper bound is at most the peak and
    the lower one is not below peak (1 - worst), no day of the month changes the peak or
    the drawdown and the month is skipped. The drawdown is the scan's bit for bit.
    """
    n_configs, n_paths, n_months = scale.shape
    n_eq = risky_mix.shape[-1]
    n_assets = levels.shape[0]
    n_days = days[-1] - days[0]
    years = n_months / MONTHS_PER_YEAR
    record = weight_paths.shape[0] > 0
    longest = 0
    for k in range(n_months):
        longest = max(longest, days[k + 1] - days[k])
    # Paths outermost: one path's growth and month covariances stay in cache for every config.
    for p in numba.prange(n_paths):
        period = np.empty((n_months, n_assets))
        growth = np.empty((n_assets, n_days))
        low = np.empty((n_months, n_assets))
        high = np.empty((n_months, n_assets))
        month_cov = np.zeros((n_months, n_assets, n_assets))
        sums = np.empty(n_assets)
        r = np.empty(n_assets)
        for k in range(n_months):
            n = days[k + 1] - days[k]
            sums[:] = 0.0
            for t in range(days[k], days[k + 1]):
                for a in range(n_assets):
                    r[a] = levels[a, p, t + 1] / levels[a, p, t] - 1.0
                    sums[a] += r[a]
                    growth[a, t - days[0]] = levels[a, p, t + 1] / levels[a, p, days[k]]
                for a in range(n_assets):
                    for b in range(a, n_assets):
                        month_cov[k, a, b] += r[a] * r[b]
            annualise = TRADING_DAYS_PER_YEAR / (n - 1.0)
            for a in range(n_assets):
                period[k, a] = levels[a, p, days[k + 1]] / levels[a, p, days[k]] - 1.0
                for b in range(a, n_assets):
                    cov = (month_cov[k, a, b] - sums[a] * sums[b] / n) * annualise
                    month_cov[k, a, b] = cov
                    month_cov[k, b, a] = cov
                lo = days[k] - days[0]
                low[k, a] = high[k, a] = growth[a, lo]
                for t in range(lo + 1, lo + n):
                    low[k, a] = min(low[k, a], growth[a, t])
                    high[k, a] = max(high[k, a], growth[a, t])
        w = np.empty(n_assets)
        drifted = np.empty(n_assets)
        value = np.empty(longest)
        trades = np.empty(n_months)
        excess = np.empty(n_months)
        scratch = np.empty(n_months)
        for c in range(n_configs):
            ri, di = risky_index[c], defensive_index[c]
            peak, worst, nav_start, te_total = 1.0, 0.0, 1.0, 0.0
            weight_sum[c, p, :] = 0.0
            for k in range(n_months):
                s = scale[c, p, k]
                for a in range(n_eq):
                    w[a] = s * risky_mix[ri, p, k, a]
                for a in range(n_assets - n_eq):
                    w[n_eq + a] = (1.0 - s) * defensive_mix[di, p, k, a]
                cost = 0.0
                trades[k] = 0.0
                if k > 0:
                    turnover = 0.0
                    for a in range(n_assets):
                        turnover += abs(w[a] - drifted[a])
                    if 0.5 * turnover < band[c]:
                        for a in range(n_assets):
                            w[a] = drifted[a]
                        turnover = 0.0
                    trades[k] = 0.5 * turnover
                    cost = tc[c] * turnover
                costs[c, p, k] = cost
                gross = 0.0
                held = 0.0
                for a in range(n_assets):
                    gross += w[a] * period[k, a]
                    weight_sum[c, p, a] += w[a]
                if record:
                    for a in range(n_assets):
                        weight_paths[c, p, k, a] = w[a]
                for a in range(n_eq):
                    held += w[a]
                risky[c, p, k] = held
                monthly[c, p, k] = (1.0 - cost) * (1.0 + gross) - 1.0
                after_cost = nav_start * (1.0 - cost)
                top, bottom = 0.0, 0.0
                for a in range(n_assets):
                    if w[a] >= 0.0:
                        top += w[a] * high[k, a]
                        bottom += w[a] * low[k, a]
                    else:
                        top += w[a] * low[k, a]
                        bottom += w[a] * high[k, a]
                quiet = (after_cost > 0.0 and after_cost * top <= peak
                         and not after_cost * bottom < peak * (1.0 - worst))
                if not quiet:
                    lo, hi = days[k] - days[0], days[k + 1] - days[0]
                    value[: hi - lo] = 0.0
                    for a in range(n_assets):
                        wa = w[a]
                        for t in range(lo, hi):
                            value[t - lo] += wa * growth[a, t]
                    for t in range(hi - lo):
                        nav = after_cost * value[t]
                        if nav > peak:
                            peak = nav
                        elif nav < peak * (1.0 - worst):
                            worst = 1.0 - nav / peak
                nav_start *= 1.0 + monthly[c, p, k]
                variance = 0.0
                for a in range(n_assets):
                    row = 0.0
                    for b in range(n_assets):
                        row += month_cov[k, a, b] * w[b]
                    variance += w[a] * row
                gap = np.sqrt(max(variance, 0.0)) - target_vol[c]
                te_total += gap * gap
                inverse = 1.0 / (1.0 + gross)
                for a in range(n_assets):
                    drifted[a] = w[a] * (1.0 + period[k, a]) * inverse
            for k in range(n_months):
                excess[k] = monthly[c, p, k] - cash_returns[p, k]
            out[0, c, p], out[1, c, p], out[2, c, p] = return_metrics(
                monthly[c, p], excess, scratch)
            out[3, c, p] = worst
            out[4, c, p] = (0.0 + pairwise_sum(trades, 0, n_months)) / years
            out[5, c, p] = (0.0 + pairwise_sum(costs[c, p], 0, n_months)) / years
            out[6, c, p] = np.sqrt(te_total / n_months)
            out[7, c, p] = (0.0 + pairwise_sum(risky[c, p], 0, n_months)) / n_months
