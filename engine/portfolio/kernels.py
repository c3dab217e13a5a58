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

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.strategy.kernels import (
    AVG_WEIGHT,
    TRACKING_ERROR,
    Rules,
    copy_to_path,
    pairwise_sum,
    return_rows,
    target_weight,
)
from engine.types import BoolArray, FloatArray, IntArray


@numba.njit(cache=True, nogil=True, parallel=True)
def run_rule(
    risky_vol: FloatArray,
    rules: Rules,
    risky_mix: FloatArray,
    defensive_index: IntArray,
    defensive_mix: FloatArray,
    levels: FloatArray,
    first: int,
    days: IntArray,
    cash_returns: FloatArray,
    tail_months: int,
    monthly_returns: FloatArray,
    costs: FloatArray,
    risky: FloatArray,
    weight_sum: FloatArray,
    out: FloatArray,
    weight_paths: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Simulate every config on paths first, first + 1, ... and compute their per-path
    metrics: as many paths as the base mixes hold (their path j is path first + j).

    Parameters
    ----------
    risky_vol : the risky sleeve's trailing vol rv_k of each risky (window, mix) key,
        (M_r, P_m, K); each config's sleeve weight is s_k =
        engine.strategy.kernels.target_weight of it.
    rules : the configs (engine.strategy.kernels.Rules, ``window`` the config's row of
        ``risky_vol`` and ``risky_mix``).
    defensive_index : the row of ``defensive_mix`` each config uses, (C,).
    risky_mix : equity base mixes b_k, (M_r, P_m, K, n_e); defensive_mix d_k,
        (M_d, P_m, K, n_d).
    levels : daily levels of the A = n_e + n_d assets, (A, P, n_days + 1).
    first : the path of ``levels`` and of the outputs that the mixes' path 0 is.
    days : rebalance days d_0 < ... < d_K, (K + 1,).
    cash_returns : the risk-free's return over each month, (P, K).
    tail_months : k of VaR/CVaR (engine.strategy.metrics.var_cvar).

    monthly_returns, costs, risky : filled with the (C, P, K) net return, cost paid
        (fraction of NAV) and equity-sleeve weight, or of size 0 to keep them per path
        only; weight_sum (C, P, A) with the sum over months of each asset's weight.
    out : filled with the metrics of engine.strategy.metrics.METRICS in that order,
        (len(METRICS), C, P): the rows of engine.strategy.kernels.return_rows (ann_return,
        ann_vol, sharpe, sortino, max_drawdown, var95, cvar95, turnover, cost_drag, as the
        two-asset pass computes them); tracking_error; avg_equity_weight. See
        engine.portfolio.evaluation.run_portfolio for the formulas.
    weight_paths : filled with every asset's weight w_a,k after each rebalance, (C, P, K, A),
        or an empty (0, 0, 0, 0) array to keep none.

    Notes
    -----
    Per path, once for all configs: the month's simple returns R_a,k, the growth
    g_a,t = level_a,t / level_a,d_k on the days t of month k, and the annualised
    covariance S_k = 252 (sum r_a r_b - sum r_a sum r_b / n) / (n - 1) of the month's n
    daily simple returns. Then month by month every config side by side (the configs
    the innermost loop, so the compiler runs several in one vector instruction): the
    rebalance, the daily NAV A_k V_t, V_t = sum_a w_a g_a,t summed in asset order, and
    its running peak and drawdown, each config's operations in the order of a config
    simulated alone.
    """
    n_configs, n_months = rules.tc.shape[0], days.shape[0] - 1
    n_paths = min(risky_vol.shape[1], defensive_mix.shape[1], levels.shape[1] - first)
    n_eq = risky_mix.shape[-1]
    n_assets = levels.shape[0]
    n_days = days[-1] - days[0]
    longest = 0
    for k in range(n_months):
        longest = max(longest, days[k + 1] - days[k])
    record = weight_paths.shape[0] > 0
    keep = monthly_returns.size > 0
    # Paths outermost: one path's growth and month covariances stay in cache for every config.
    for q in numba.prange(n_paths):
        p = first + q
        period = np.empty((n_months, n_assets))
        growth = np.empty((n_assets, n_days))
        month_cov = np.empty((n_months, n_assets, n_assets))
        sums = np.empty(n_assets)
        targets = np.empty((n_configs, n_months))
        for c in range(n_configs):
            trailing = risky_vol[rules.window[c], q]
            for k in range(n_months):
                targets[c, k] = target_weight(trailing[k], rules.weight_fn[c],
                                              rules.target_vol[c], rules.slope[c],
                                              rules.low[c], rules.high[c])
        monthly = np.empty((n_configs, n_months))
        month_cost = np.empty((n_configs, n_months))
        month_risky = np.empty((n_configs, n_months))
        # the month's daily returns r[a, i], one asset at a time (contiguous in its levels)
        r = np.empty((n_assets, longest))
        for k in range(n_months):
            d0, n = days[k], days[k + 1] - days[k]
            for a in range(n_assets):
                level = levels[a, p]
                for i in range(n):
                    r[a, i] = level[d0 + i + 1] / level[d0 + i] - 1.0
                    growth[a, d0 - days[0] + i] = level[d0 + i + 1] / level[d0]
            for a in range(n_assets):
                total = 0.0
                for i in range(n):
                    total += r[a, i]
                sums[a] = total
            annualise = TRADING_DAYS_PER_YEAR / (n - 1.0)
            for a in range(n_assets):
                period[k, a] = levels[a, p, days[k + 1]] / levels[a, p, d0] - 1.0
                for b in range(a, n_assets):
                    total = 0.0
                    for i in range(n):
                        total += r[a, i] * r[b, i]
                    cov = (total - sums[a] * sums[b] / n) * annualise
                    month_cov[k, a, b] = cov
                    month_cov[k, b, a] = cov
        # per config, configs last: w[a, c], the weights; drifted[a, c] before the rebalance
        w = np.empty((n_assets, n_configs))
        drifted = np.empty((n_assets, n_configs))
        held_sum = np.zeros((n_assets, n_configs))
        trades = np.empty((n_configs, n_months))
        peak = np.ones(n_configs)
        worst = np.zeros(n_configs)
        nav_start = np.ones(n_configs)
        te_total = np.zeros(n_configs)
        turnover = np.empty(n_configs)
        cost = np.empty(n_configs)
        gross = np.empty(n_configs)
        after_cost = np.empty(n_configs)
        value = np.empty(n_configs)
        previous_peak = np.empty(n_configs)
        deeper = np.empty(n_configs, dtype=np.bool_)
        row = np.empty(n_configs)
        variance = np.empty(n_configs)
        # the day's value V_t: the first ``head`` assets' sum, the last one or two in _nav_day
        head = n_assets - 2 + n_assets % 2
        for k in range(n_months):
            for c in range(n_configs):
                s = targets[c, k]
                ri, di = rules.window[c], defensive_index[c]
                for a in range(n_eq):
                    w[a, c] = s * risky_mix[ri, q, k, a]
                for a in range(n_assets - n_eq):
                    w[n_eq + a, c] = (1.0 - s) * defensive_mix[di, q, k, a]
            if k > 0:
                turnover[:] = 0.0
                for a in range(n_assets):
                    for c in range(n_configs):
                        turnover[c] += abs(w[a, c] - drifted[a, c])
                for c in range(n_configs):
                    if 0.5 * turnover[c] < rules.band[c]:
                        for a in range(n_assets):
                            w[a, c] = drifted[a, c]
                        turnover[c] = 0.0
                    trades[c, k] = 0.5 * turnover[c]
                    cost[c] = rules.tc[c] * turnover[c]
            else:
                for c in range(n_configs):
                    trades[c, k] = 0.0
                    cost[c] = 0.0
            gross[:] = 0.0
            for a in range(n_assets):
                ra = period[k, a]
                for c in range(n_configs):
                    gross[c] += w[a, c] * ra
                    held_sum[a, c] += w[a, c]
            for c in range(n_configs):
                held = 0.0
                for a in range(n_eq):
                    held += w[a, c]
                month_risky[c, k] = held
                month_cost[c, k] = cost[c]
                monthly[c, k] = (1.0 - cost[c]) * (1.0 + gross[c]) - 1.0
                after_cost[c] = nav_start[c] * (1.0 - cost[c])
                if record:
                    for a in range(n_assets):
                        weight_paths[c, p, k, a] = w[a, c]
            for t in range(days[k] - days[0], days[k + 1] - days[0]):
                _weighted_sums(w, growth, t, value, head)
                if head + 1 < n_assets:
                    any_deeper = _nav_day(w, head, growth[head, t], growth[head + 1, t], True,
                                          after_cost, value, peak, worst, previous_peak,
                                          deeper)
                else:
                    any_deeper = _nav_day(w, head, growth[head, t], 0.0, False, after_cost,
                                          value, peak, worst, previous_peak, deeper)
                if any_deeper:
                    for c in range(n_configs):
                        if deeper[c]:
                            worst[c] = 1.0 - value[c] / previous_peak[c]
            variance[:] = 0.0
            for a in range(n_assets):
                _weighted_sums(w, month_cov[k], a, row, n_assets)
                for c in range(n_configs):
                    variance[c] += w[a, c] * row[c]
            for c in range(n_configs):
                nav_start[c] *= 1.0 + monthly[c, k]
                gap = np.sqrt(max(variance[c], 0.0)) - rules.target_vol[c]
                te_total[c] += gap * gap
                gross[c] = 1.0 / (1.0 + gross[c])
            for a in range(n_assets):
                ra = 1.0 + period[k, a]
                for c in range(n_configs):
                    drifted[a, c] = w[a, c] * ra * gross[c]
        excess = np.empty(n_months)
        scratch = np.empty(n_months)
        tail = np.empty(tail_months)
        for c in range(n_configs):
            returns = monthly[c]
            for a in range(n_assets):
                weight_sum[c, p, a] = held_sum[a, c]
            for k in range(n_months):
                excess[k] = returns[k] - cash_returns[p, k]
            return_rows(out, c, p, returns, excess, worst[c], trades[c], month_cost[c],
                        tail_months, scratch, tail)
            out[TRACKING_ERROR, c, p] = np.sqrt(te_total[c] / n_months)
            out[AVG_WEIGHT, c, p] = (0.0 + pairwise_sum(month_risky[c], 0, n_months)) / n_months
        if keep:
            copy_to_path(monthly_returns, p, monthly)
            copy_to_path(costs, p, month_cost)
            copy_to_path(risky, p, month_risky)


@numba.njit(cache=True, nogil=True)
def _weighted_sums(w: FloatArray, coefficients: FloatArray, j: int, out: FloatArray,
                   n_assets: int) -> None:  # pragma: no cover - compiled
    """out[c] = sum_a w[a, c] coefficients[a, j] over the first ``n_assets`` assets, for
    every config c, summed from 0.0 in asset order (a row of S_k w with the symmetric S_k;
    the day's value V_t with the growths g_a,t, finished by :func:`_nav_day`); w is
    (>= n_assets, n_configs), n_assets 0 (out[c] = 0.0) or at least 2. Two assets per
    loop over the configs, so ``out`` is stored half as often as with one."""
    n_configs = w.shape[1]
    if n_assets == 0:
        out[:] = 0.0
        return
    g0, g1 = coefficients[0, j], coefficients[1, j]
    for c in range(n_configs):
        out[c] = (0.0 + w[0, c] * g0) + w[1, c] * g1
    for a in range(2, n_assets - 1, 2):
        ga, gb = coefficients[a, j], coefficients[a + 1, j]
        for c in range(n_configs):
            out[c] = (out[c] + w[a, c] * ga) + w[a + 1, c] * gb
    if n_assets % 2 == 1:
        ga = coefficients[n_assets - 1, j]
        for c in range(n_configs):
            out[c] = out[c] + w[n_assets - 1, c] * ga


@numba.njit(cache=True, nogil=True, inline="always")
def _nav_day(w: FloatArray, head: int, ga: float, gb: float, pair: bool,
             after_cost: FloatArray, value: FloatArray, peak: FloatArray, worst: FloatArray,
             previous_peak: FloatArray,
             deeper: BoolArray) -> bool:  # pragma: no cover - compiled
    """One day of every config's NAV and peak: V_t from its sum ``value`` of the first
    ``head`` assets (:func:`_weighted_sums`) plus w_head g_a (and, with ``pair``,
    w_head+1 g_b), in that order; value becomes the NAV A_k V_t, peak the running peak;
    where the NAV fell below the deepest drawdown so far, deeper is set and
    previous_peak holds the peak it fell from. Whether any config went deeper.
    Inlined with ``pair`` a constant, so each loop over the configs is one vector loop."""
    any_deeper = False
    for c in range(value.shape[0]):
        total = value[c] + w[head, c] * ga
        if pair:
            total = total + w[head + 1, c] * gb
        nav = after_cost[c] * total
        top = peak[c]
        higher = nav > top
        lower = nav < top * (1.0 - worst[c]) and not higher
        deeper[c] = lower
        any_deeper |= lower
        value[c] = nav
        previous_peak[c] = top
        peak[c] = nav if higher else top
    return any_deeper
