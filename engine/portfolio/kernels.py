"""Compiled month-by-month simulation of the multi-asset rule (numba).

One pass per (config, path) sets the target weights of every asset, applies the
no-trade band, pays costs, compounds the month, tracks the daily NAV's drawdown and the
month's realised vol against the target, so no (configs x paths x months x assets) array
is ever stored.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.conventions import TRADING_DAYS_PER_YEAR
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
    weight_paths: FloatArray,
):  # pragma: no cover - compiled
    """Simulate every config on every path.

    Parameters
    ----------
    scale : risky-sleeve weight s_k of each config, path and rebalance, (C, P, K).
    risky_index, defensive_index : row of ``risky_mix`` / ``defensive_mix`` each config
        uses, (C,).
    risky_mix : equity base mixes b_k, (M_r, P, K, n_e); defensive_mix d_k, (M_d, P, K, n_d).
    levels : daily levels of the A = n_e + n_d assets, (A, P, n_days + 1).
    days : rebalance days d_0 < ... < d_K, (K + 1,).
    target_vol, tc (cost per unit traded), band : per config, (C,).
    weight_paths : filled with every asset's weight w_a,k after each rebalance, (C, P, K, A),
        or an empty (0, 0, 0, 0) array to keep none.

    Returns
    -------
    monthly, costs, trades, risky : (C, P, K) net return, cost paid (fraction of NAV),
    one-way turnover and equity-sleeve weight; weight_sum (C, P, A) the sum over months of
    each asset's weight; max_drawdown and tracking_error (C, P). See
    engine.portfolio.evaluation.run_portfolio for the formulas.

    Notes
    -----
    Per path, once for all configs: the month's simple returns R_a,k, the growth
    g_a,t = level_a,t / level_a,d_k on the days t of month k, and the annualised covariance
    S_k = 252 (sum r_a r_b - sum r_a sum r_b / n) / (n - 1) of the month's n daily simple
    returns.
    """
    n_configs, n_paths, n_months = scale.shape
    n_eq = risky_mix.shape[-1]
    n_assets = levels.shape[0]
    n_days = days[-1] - days[0]
    monthly = np.empty((n_configs, n_paths, n_months))
    costs = np.zeros((n_configs, n_paths, n_months))
    trades = np.zeros((n_configs, n_paths, n_months))
    risky = np.empty((n_configs, n_paths, n_months))
    weight_sum = np.zeros((n_configs, n_paths, n_assets))
    max_drawdown = np.empty((n_configs, n_paths))
    tracking_error = np.empty((n_configs, n_paths))
    record = weight_paths.shape[0] > 0
    longest = 0
    for k in range(n_months):
        longest = max(longest, days[k + 1] - days[k])
    # Paths outermost: one path's growth and month covariances stay in cache for every config.
    for p in numba.prange(n_paths):
        period = np.empty((n_months, n_assets))
        growth = np.empty((n_assets, n_days))
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
        w = np.empty(n_assets)
        drifted = np.empty(n_assets)
        value = np.empty(longest)
        for c in range(n_configs):
            ri, di = risky_index[c], defensive_index[c]
            peak, worst, nav_start, te_total = 1.0, 0.0, 1.0, 0.0
            for k in range(n_months):
                s = scale[c, p, k]
                for a in range(n_eq):
                    w[a] = s * risky_mix[ri, p, k, a]
                for a in range(n_assets - n_eq):
                    w[n_eq + a] = (1.0 - s) * defensive_mix[di, p, k, a]
                cost = 0.0
                if k > 0:
                    turnover = 0.0
                    for a in range(n_assets):
                        turnover += abs(w[a] - drifted[a])
                    if 0.5 * turnover < band[c]:
                        for a in range(n_assets):
                            w[a] = drifted[a]
                        turnover = 0.0
                    trades[c, p, k] = 0.5 * turnover
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
            max_drawdown[c, p] = worst
            tracking_error[c, p] = np.sqrt(te_total / n_months)
    return monthly, costs, trades, risky, weight_sum, max_drawdown, tracking_error
