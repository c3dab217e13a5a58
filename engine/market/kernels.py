"""Compiled time steps (numba) of the scenario simulation.

A day of a scenario is a few dozen floating-point operations per path; numpy spends
more on dispatching some sixty array operations a day than on the arithmetic. Here one
compiled loop per path carries the Heston variance, the log-spot, the short rate, the
bond index and the cash account through a block of days, in registers.

Bit-identity with numpy: every expression is written in the order of additions and
multiplications of the numpy code it replaced (no fused multiply-add, numba's default),
``math.log``/``math.exp``/``math.sqrt`` call the C library as numpy's float64 ufuncs do
on a CPU without AVX-512, and the exponential branch's uniform is scipy's own ``ndtr``,
called through its C entry point (tests/engine/test_two_asset_golden.py holds the
reference).
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numba
import numpy as np
from numba.core import types
from numba.extending import get_cython_function_address

from engine.types import FloatArray

llvm.add_symbol(
    "engine_scipy_ndtr",
    get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1ndtr"),
)
_ndtr = types.ExternalFunction("engine_scipy_ndtr", types.float64(types.float64, types.intc))
"""scipy.special.ndtr(x) for a double, ``_ndtr(x, 0)`` (the 0 is Cython's skip_dispatch);
an external symbol, not a ctypes pointer, so the kernels that call it can be cached."""

PSI_CRITICAL = 1.5
"""Andersen's switch: psi <= 1.5 takes the quadratic branch, above it the exponential."""

QE, EULER = 0, 1
"""Scheme codes of :func:`heston_step` (``HestonStepper.scheme`` "qe", "euler")."""

@numba.njit(cache=True, nogil=True)
def heston_step(
    v: float, z_v: float, z_perp: float, drift: float, c: FloatArray
) -> tuple[float, float]:  # pragma: no cover - compiled
    """One Heston step of one path: (ln(S_{t+dt} / S_t), v_{t+dt}).

    ``c`` holds, in order: scheme (QE or EULER), dt, kappa, theta, sigma, and for QE
    decay = e^{-kappa dt}, the variance coefficients s2 = v c[6] + c[7], K1, K2, K3, K4,
    A = K2 + K4 / 2 and K1 + K3 / 2 (Andersen eq. 33); for Euler c[5] = rho and
    c[6] = sqrt(1 - rho^2). engine.market.heston.HestonStepper builds it and gives the
    formulas.
    """
    dt = c[1]
    if c[0] == EULER:
        kappa, theta, sigma, rho, rho_perp = c[2], c[3], c[4], c[5], c[6]
        v_pos = v if v > 0.0 else 0.0
        sqrt_vdt = math.sqrt(v_pos * dt)
        z_s = rho * z_v + rho_perp * z_perp
        v_next = v + kappa * (theta - v_pos) * dt + sigma * sqrt_vdt * z_v
        log_return = (drift - 0.5 * v_pos) * dt + sqrt_vdt * z_s
        return log_return, (v_next if v_next > 0.0 else 0.0)
    theta, decay, s2_v, s2_c = c[3], c[5], c[6], c[7]
    k1, k2, k3, k4, big_a, k_v = c[8], c[9], c[10], c[11], c[12], c[13]
    m = theta + (v - theta) * decay
    s2 = v * s2_v + s2_c
    psi = s2 / (m * m)
    if psi <= PSI_CRITICAL:
        inv_psi = 2.0 / psi
        b2 = inv_psi - 1.0 + math.sqrt(inv_psi) * math.sqrt(inv_psi - 1.0)
        a = m / (1.0 + b2)
        root = math.sqrt(b2) + z_v
        v_next = a * (root * root)
        log_mgf = big_a * b2 * a / (1.0 - 2.0 * big_a * a) - 0.5 * math.log(
            1.0 - 2.0 * big_a * a
        )
    else:
        p = (psi - 1.0) / (psi + 1.0)
        beta = (1.0 - p) / m
        u = _ndtr(z_v, 0)
        if u <= p:
            v_next = 0.0
        else:
            v_next = math.log((1.0 - p) / max(1.0 - u, 1e-300)) / beta
        log_mgf = math.log(p + beta * (1.0 - p) / (beta - big_a))
    k0_star = -log_mgf - k_v * v
    log_return = (
        drift * dt + k0_star + k1 * v + k2 * v_next + math.sqrt(k3 * v + k4 * v_next) * z_perp
    )
    return log_return, v_next


@numba.njit(cache=True, nogil=True)
def heston_steps(
    v: FloatArray, z_v: FloatArray, z_perp: FloatArray, drift: FloatArray, c: FloatArray
) -> tuple[FloatArray, FloatArray]:  # pragma: no cover - compiled
    """:func:`heston_step` for every path: (log returns, next variances), each (n_paths,)."""
    n = v.shape[0]
    log_return = np.empty(n)
    v_next = np.empty(n)
    for i in range(n):
        log_return[i], v_next[i] = heston_step(v[i], z_v[i], z_perp[i], drift[i], c)
    return log_return, v_next


@numba.njit(cache=True, nogil=True, parallel=True)
def scenario_days(
    t0: int,
    shocks: FloatArray,
    equity: FloatArray,
    variance: FloatArray,
    short_rate: FloatArray,
    bond: FloatArray,
    cash: FloatArray,
    log_levels: FloatArray,
    heston: FloatArray,
    rates: FloatArray,
    risk_neutral: bool,
) -> None:  # pragma: no cover - compiled
    """Advance every path of a two-asset scenario from day t0 through t0 + len(shocks).

    Parameters
    ----------
    t0 : the day the block starts from; columns t0 + 1 ... t0 + n_block are written.
    shocks : the correlated (Z_v, Z_S, Z_r) of each day, (n_block, 3, n_paths).
    equity, variance, short_rate, bond, cash : the paths, (n_paths, n_steps + 1), filled
        up to column t0; the index levels are exp of their log sums (ln S_t = sum of the
        log returns), taken as numpy's exp takes them.
    log_levels : ln of the equity, bond and cash levels at t0, (3, n_paths); updated to
        the block's last day.
    heston : :func:`heston_step`'s constants.
    rates : rho_SV, 1 / sqrt(1 - rho_SV^2), dt, the equity drift's constant (mu, or the
        dividend yield q under ``risk_neutral``), the rate dynamics' theta, e^{-kappa dt}
        and sqrt(Var r_dt) (engine.market.rates.Vasicek.step), the bond's ln A and B at
        maturity - dt and at maturity (Vasicek.zero_coupon_coefficients).
    risk_neutral : the equity drifts at r_t - q, else at mu.

    Notes
    -----
    Per path and day: Z_perp = (Z_S - rho_SV Z_v) / sqrt(1 - rho_SV^2) and the Heston
    step; r_{t+1} = theta + (r_t - theta) e^{-kappa dt} + sqrt(Var) Z_r; the bond index's
    log return (ln A_1 - B_1 r_{t+1}) - (ln A_0 - B_0 r_t); the cash account's r_t dt.
    """
    rho, perp_scale, dt, drift_constant = rates[0], rates[1], rates[2], rates[3]
    theta_r, decay_r, sd_r = rates[4], rates[5], rates[6]
    log_a1, b1, log_a0, b0 = rates[7], rates[8], rates[9], rates[10]
    n_block, _, n_paths = shocks.shape
    for p in numba.prange(n_paths):
        v = variance[p, t0]
        r_now = short_rate[p, t0]
        x_equity, x_bond, x_cash = log_levels[0, p], log_levels[1, p], log_levels[2, p]
        for i in range(n_block):
            z_v, z_s, z_r = shocks[i, 0, p], shocks[i, 1, p], shocks[i, 2, p]
            drift = r_now - drift_constant if risk_neutral else drift_constant
            log_return, v = heston_step(v, z_v, (z_s - rho * z_v) * perp_scale, drift, heston)
            x_equity = x_equity + log_return
            r_next = theta_r + (r_now - theta_r) * decay_r + sd_r * z_r
            x_bond = x_bond + ((log_a1 - b1 * r_next) - (log_a0 - b0 * r_now))
            x_cash = x_cash + r_now * dt
            t = t0 + i + 1
            equity[p, t] = math.exp(x_equity)
            variance[p, t] = v
            short_rate[p, t] = r_next
            bond[p, t] = math.exp(x_bond)
            cash[p, t] = math.exp(x_cash)
            r_now = r_next
        log_levels[0, p], log_levels[1, p], log_levels[2, p] = x_equity, x_bond, x_cash
