"""Compiled days of a portfolio scenario (numba): one loop per path carries every
equity's Heston variance and log-spot, the short rate and the cash account through a
block of days.

Bit-identity with the numpy code it replaced (tests/engine/test_portfolio_golden.py):
each expression keeps that code's order of operations, the Heston step is
engine.market.kernels.heston_step (the two-asset kernel's), and ``math.exp``
is the C library's, as numpy's float64 ufunc is on a CPU without AVX-512 (see
engine.market.kernels).
"""

from __future__ import annotations

import math

import numba

from engine.market.kernels import heston_step
from engine.types import FloatArray


@numba.njit(cache=True, nogil=True, parallel=True)
def portfolio_days(
    t0: int,
    shocks: FloatArray,
    levels: FloatArray,
    log_levels: FloatArray,
    variance: FloatArray,
    short_rate: FloatArray,
    cash: FloatArray,
    log_cash: FloatArray,
    heston: FloatArray,
    drift: FloatArray,
    rates: FloatArray,
    risk_neutral: bool,
) -> None:  # pragma: no cover - compiled
    """Advance every path of a portfolio scenario from day t0 through t0 + len(shocks).

    Parameters
    ----------
    t0 : the day the block starts from; columns t0 + 1 ... t0 + n_block are written.
    shocks : the correlated drivers (Z_v1..Z_vn, Z_S1..Z_Sn, Z_r) of each day,
        (n_block, 2n + 1, n_paths).
    levels : the assets' levels, (n_assets, n_paths, n_days + 1), the n equities first;
        the equities' are filled up to column t0, each exp of its log sum.
    log_levels : the equities' running log sums at t0, (n, n_paths); updated.
    variance : the equities' Heston variances, (n, n_paths, n_days + 1).
    short_rate, cash : (n_paths, n_days + 1); log_cash the cash account's running log
        sum at t0, (n_paths,), updated.
    heston : each equity's :func:`engine.market.kernels.heston_step` constants, (n, 14)
        (QE) or (n, 7) (Euler).
    drift : each equity's drift mu_i (physical), (n,).
    rates : rho_SV, 1 / sqrt(1 - rho_SV^2), dt, the dividend yield q, the rate dynamics'
        theta, e^{-kappa dt} and sqrt(Var r_dt) (engine.market.rates.Vasicek.step).
    risk_neutral : the equities drift at r_t - q, else at mu_i.

    Notes
    -----
    Per path: the rate and cash over the block, then each equity over it. Per day:
    Z_perp,i = (Z_Si - rho_SV Z_vi) / sqrt(1 - rho_SV^2) and equity i's
    Heston step; r_{t+1} = theta + (r_t - theta) e^{-kappa dt} + sqrt(Var) Z_r; the cash
    account's log return r_t dt (engine.portfolio.paths.simulate_portfolio gives the
    model). The bond buckets are repriced afterwards off the finished rate paths.
    """
    rho, perp_scale, dt, dividend = rates[0], rates[1], rates[2], rates[3]
    theta_r, decay_r, sd_r = rates[4], rates[5], rates[6]
    n_block, _, n_paths = shocks.shape
    n_eq = heston.shape[0]
    for p in numba.prange(n_paths):
        r_now = short_rate[p, t0]
        x_cash = log_cash[p]
        for i in range(n_block):
            r_next = theta_r + (r_now - theta_r) * decay_r + sd_r * shocks[i, 2 * n_eq, p]
            x_cash = x_cash + r_now * dt
            short_rate[p, t0 + i + 1] = r_next
            cash[p, t0 + i + 1] = math.exp(x_cash)
            r_now = r_next
        log_cash[p] = x_cash
        for e in range(n_eq):
            constants = heston[e]
            x = log_levels[e, p]
            v = variance[e, p, t0]
            for i in range(n_block):
                t = t0 + i
                z_v = shocks[i, e, p]
                mu = short_rate[p, t] - dividend if risk_neutral else drift[e]
                log_return, v = heston_step(v, z_v, (shocks[i, n_eq + e, p] - rho * z_v)
                                            * perp_scale, mu, constants)
                x = x + log_return
                levels[e, p, t + 1] = math.exp(x)
                variance[e, p, t + 1] = v
            log_levels[e, p] = x
