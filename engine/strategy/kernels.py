"""Compiled inner loops (numba) for the sequential scans numpy cannot vectorise well.

A running maximum over ~1300 days for each of 10^5 (config, path) pairs is a
sequential scan: ``np.maximum.accumulate`` runs it at ~4 ns per element with three
full-size temporaries around it, numba fuses it into one pass at ~0.2 ns per element
per core. bench/engine_sweep.py prints the effect.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.types import FloatArray, IntArray


@numba.njit(cache=True, nogil=True, parallel=True)
def drifting_nav_max_drawdown(
    weights: FloatArray,
    monthly_returns: FloatArray,
    costs: FloatArray,
    growth_alt: FloatArray,
    growth_gap: FloatArray,
    month_bounds: IntArray,
) -> FloatArray:  # pragma: no cover - compiled
    """Max drawdown of the daily NAV of a monthly-rebalanced two-asset portfolio.

    Parameters
    ----------
    weights : equity weight set at each rebalance, shape (n_configs, n_paths, n_months).
    monthly_returns : net return R_k of each month, same shape.
    costs : cost c_k paid at rebalance k as a fraction of NAV, same shape.
    growth_alt : g^A_t = alt_t / alt_{d_k} for each evaluation day t of month k,
        shape (n_paths, n_days).
    growth_gap : g^E_t - g^A_t, the equity's growth in excess of the alternative's.
    month_bounds : day offsets into the day axis where each month starts, plus the end,
        shape (n_months + 1,).

    Returns
    -------
    (n_configs, n_paths): max_t (1 - NAV_t / max(1, max_{s<=t} NAV_s)), where
    NAV_t = A_k (g^A_t + w_k (g^E_t - g^A_t)) on the days t of month k, with
    A_k = (1 - c_k) prod_{j<k} (1 + R_j) the NAV just after rebalance k's cost.
    """
    n_configs, n_paths, n_months = weights.shape
    out = np.empty((n_configs, n_paths))
    for c in numba.prange(n_configs):
        for p in range(n_paths):
            peak = 1.0
            worst = 0.0
            nav_start = 1.0
            for k in range(n_months):
                a = nav_start * (1.0 - costs[c, p, k])
                nav_start *= 1.0 + monthly_returns[c, p, k]
                w = weights[c, p, k]
                for t in range(month_bounds[k], month_bounds[k + 1]):
                    nav = a * (growth_alt[p, t] + w * growth_gap[p, t])
                    peak = max(peak, nav)
                    worst = max(worst, 1.0 - nav / peak)
            out[c, p] = worst
    return out


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


@numba.njit(cache=True, nogil=True, parallel=True)
def vol_tracking_error(
    weights: FloatArray, c0: FloatArray, c1: FloatArray, c2: FloatArray, scale: FloatArray,
    target_vol: FloatArray,
) -> FloatArray:  # pragma: no cover - compiled
    """sqrt(mean_k (sqrt(scale_k (c0 + c1 w + c2 w^2)) - tv)^2) per config and path.

    ``weights`` is (n_configs, n_paths, n_months); c0, c1, c2 (n_paths, n_months) are the
    month's variance coefficients, ``scale`` (n_months,) turns them into an annualised
    variance and ``target_vol`` is (n_configs,). See engine.strategy.portfolio._vol_tracking_error.
    """
    n_configs, n_paths, n_months = weights.shape
    out = np.empty((n_configs, n_paths))
    for c in numba.prange(n_configs):
        for p in range(n_paths):
            total = 0.0
            for k in range(n_months):
                w = weights[c, p, k]
                variance = ((c2[p, k] * w + c1[p, k]) * w + c0[p, k]) * scale[k]
                gap = np.sqrt(max(variance, 0.0)) - target_vol[c]
                total += gap * gap
            out[c, p] = np.sqrt(total / n_months)
    return out
