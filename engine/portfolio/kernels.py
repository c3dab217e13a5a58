"""Compiled month-by-month simulation of the multi-asset rule (numba).

One pass per (config, path) sets the target weights of every asset, applies the
no-trade band, pays costs, compounds the month, tracks the daily NAV's drawdown and the
month's realised vol against the target, so no (configs x paths x months x assets) array
is ever stored.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.types import FloatArray, IntArray


@numba.njit(cache=True, nogil=True, parallel=True)
def run_rule(
    scale: FloatArray,
    risky_index: IntArray,
    risky_mix: FloatArray,
    defensive_index: IntArray,
    defensive_mix: FloatArray,
    period_returns: FloatArray,
    growth: FloatArray,
    month_bounds: IntArray,
    month_covariance: FloatArray,
    target_vol: FloatArray,
    tc: FloatArray,
    band: FloatArray,
):  # pragma: no cover - compiled
    """Simulate every config on every path.

    Parameters
    ----------
    scale : risky-sleeve weight s_k of each config, path and rebalance, (C, P, K).
    risky_index, defensive_index : row of ``risky_mix`` / ``defensive_mix`` each config
        uses, (C,).
    risky_mix : equity base mixes b_k, (M_r, P, K, n_e); defensive_mix d_k, (M_d, P, K, n_d).
    period_returns : simple return R_a,k of each asset over month k, (P, K, A), A = n_e + n_d.
    growth : g_a,t = level_a,t / level_a,d_k on each evaluation day t of month k, (P, D, A).
    month_bounds : day offsets where each month starts, plus the end, (K + 1,).
    month_covariance : annualised covariance of the month's daily simple returns, (P, K, A, A).
    target_vol, tc (cost per unit traded), band : per config, (C,).

    Returns
    -------
    monthly, costs, trades, risky : (C, P, K) net return, cost paid (fraction of NAV),
    one-way turnover and equity-sleeve weight; weight_sum (C, P, A) the sum over months of
    each asset's weight; max_drawdown and tracking_error (C, P). See
    engine.portfolio.evaluation.run_portfolio for the formulas.
    """
    n_configs, n_paths, n_months = scale.shape
    n_eq = risky_mix.shape[-1]
    n_assets = period_returns.shape[-1]
    monthly = np.empty((n_configs, n_paths, n_months))
    costs = np.zeros((n_configs, n_paths, n_months))
    trades = np.zeros((n_configs, n_paths, n_months))
    risky = np.empty((n_configs, n_paths, n_months))
    weight_sum = np.zeros((n_configs, n_paths, n_assets))
    max_drawdown = np.empty((n_configs, n_paths))
    tracking_error = np.empty((n_configs, n_paths))
    for c in numba.prange(n_configs):
        w = np.empty(n_assets)
        drifted = np.empty(n_assets)
        ri, di = risky_index[c], defensive_index[c]
        for p in range(n_paths):
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
                    gross += w[a] * period_returns[p, k, a]
                    weight_sum[c, p, a] += w[a]
                for a in range(n_eq):
                    held += w[a]
                risky[c, p, k] = held
                monthly[c, p, k] = (1.0 - cost) * (1.0 + gross) - 1.0
                after_cost = nav_start * (1.0 - cost)
                for t in range(month_bounds[k], month_bounds[k + 1]):
                    value = 0.0
                    for a in range(n_assets):
                        value += w[a] * growth[p, t, a]
                    nav = after_cost * value
                    peak = max(peak, nav)
                    worst = max(worst, 1.0 - nav / peak)
                nav_start *= 1.0 + monthly[c, p, k]
                variance = 0.0
                for a in range(n_assets):
                    row = 0.0
                    for b in range(n_assets):
                        row += month_covariance[p, k, a, b] * w[b]
                    variance += w[a] * row
                gap = np.sqrt(max(variance, 0.0)) - target_vol[c]
                te_total += gap * gap
                for a in range(n_assets):
                    drifted[a] = w[a] * (1.0 + period_returns[p, k, a]) / (1.0 + gross)
            max_drawdown[c, p] = worst
            tracking_error[c, p] = np.sqrt(te_total / n_months)
    return monthly, costs, trades, risky, weight_sum, max_drawdown, tracking_error
