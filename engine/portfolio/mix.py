"""Base mixes of a sleeve: fixed weights, inverse volatility, equal risk contribution.

Each is computed at every rebalance of every path from the trailing covariance of the
sleeve's daily log returns (the same window the rule measures its vol over).

Reference for risk parity: S. Maillard, T. Roncalli and J. Teiletche, "The properties of
equally weighted risk contribution portfolios", Journal of Portfolio Management 36(4),
2010; the cyclical coordinate descent of F. Griveau-Billion, J.-C. Richard and
T. Roncalli, "A fast algorithm for computing high-dimensional risk parity portfolios",
2013.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.types import FloatArray, IntArray

ERC_TOLERANCE = 1e-12
ERC_MAX_SWEEPS = 10_000


def trailing_covariance(
    log_levels: FloatArray, ends: IntArray, window_days: int
) -> FloatArray:
    """Annualised sample covariance of the ``window_days`` daily log returns up to each end.

    Parameters
    ----------
    log_levels : ln of the levels, shape (n_assets, n_paths, n_days + 1).
    ends : day indices e >= window_days, shape (n_ends,).
    window_days : n >= 2.

    Returns
    -------
    (n_paths, n_ends, n_assets, n_assets): 252 (sum r_a r_b - sum r_a sum r_b / n) / (n - 1)
    over the window's returns (ddof = 1), the covariance form of
    :func:`engine.strategy.rolling.realized_vol_from_logs` (whose square is the diagonal).
    """
    n = int(window_days)
    ends = np.asarray(ends, dtype=np.int64)
    if n < 2 or ends.min() < n:
        raise ValueError(f"a trailing window of {n} days needs every end >= {n} and n >= 2")
    starts = ends - n
    n_assets, n_paths = log_levels.shape[:2]
    returns = np.diff(log_levels, axis=-1)
    sums = log_levels[:, :, ends] - log_levels[:, :, starts]
    out = np.empty((n_paths, len(ends), n_assets, n_assets))
    cross = np.zeros(log_levels.shape[1:])
    for a in range(n_assets):
        for b in range(a, n_assets):
            np.cumsum(returns[a] * returns[b], axis=-1, out=cross[:, 1:])
            products = cross[:, ends] - cross[:, starts]
            cov = (products - sums[a] * sums[b] / n) / (n - 1) * TRADING_DAYS_PER_YEAR
            out[:, :, a, b] = out[:, :, b, a] = cov
    return out


def inverse_vol_weights(covariance: FloatArray) -> FloatArray:
    """w_i = (1 / sigma_i) / sum_j (1 / sigma_j), over the last axis of the result.

    ``covariance`` has shape (..., n, n); an asset with sigma_i = 0 takes the whole
    sleeve (shared equally among such assets)."""
    vol = np.sqrt(np.maximum(np.diagonal(covariance, axis1=-2, axis2=-1), 0.0))
    zero = vol == 0.0
    with np.errstate(divide="ignore"):
        inverse = np.where(zero.any(axis=-1, keepdims=True), zero * 1.0, 1.0 / vol)
    return inverse / inverse.sum(axis=-1, keepdims=True)


def risk_parity_weights(covariance: FloatArray) -> FloatArray:
    """Long-only equal-risk-contribution weights, shape (..., n), summing to 1.

    Notes
    -----
    w_i (Sigma w)_i = w' Sigma w / n for every i. Solved for y > 0 with
    y_i (Sigma y)_i = 1 / n by cyclical coordinate descent (each coordinate is the
    positive root of Sigma_ii y_i^2 + (sum_{j != i} Sigma_ij y_j) y_i - 1/n = 0) until no
    coordinate moves by more than 1e-12 relative, then w = y / sum y. The diagonal case
    gives the inverse-vol weights. A singular sleeve (a zero-variance asset) falls back to
    :func:`inverse_vol_weights`.
    """
    cov = np.ascontiguousarray(covariance, dtype=np.float64)
    shape = cov.shape
    flat = cov.reshape(-1, shape[-1], shape[-1])
    weights = _erc(flat)
    singular = ~np.isfinite(weights).all(axis=-1)
    if singular.any():
        weights[singular] = inverse_vol_weights(flat[singular])
    return weights.reshape(shape[:-1])


@numba.njit(cache=True, nogil=True, parallel=True)
def _erc(cov: FloatArray) -> FloatArray:  # pragma: no cover - compiled
    m, n, _ = cov.shape
    out = np.empty((m, n))
    budget = 1.0 / n
    for s in numba.prange(m):
        c = cov[s]
        y = np.empty(n)
        ok = True
        for i in range(n):
            if not c[i, i] > 0.0:
                ok = False
            else:
                y[i] = 1.0 / np.sqrt(c[i, i] * n)
        if not ok:
            out[s, :] = np.nan
            continue
        for _ in range(ERC_MAX_SWEEPS):
            moved = 0.0
            for i in range(n):
                b = 0.0
                for j in range(n):
                    if j != i:
                        b += c[i, j] * y[j]
                new = (-b + np.sqrt(b * b + 4.0 * c[i, i] * budget)) / (2.0 * c[i, i])
                moved = max(moved, abs(new - y[i]) / new)
                y[i] = new
            if moved < ERC_TOLERANCE:
                break
        total = y.sum()
        for i in range(n):
            out[s, i] = y[i] / total
    return out


def base_mix_weights(
    mix: str, covariance: FloatArray, fixed: tuple[float, ...] | None
) -> FloatArray:
    """The sleeve's base mix at every (path, rebalance), shape covariance.shape[:-1].

    ``fixed`` is the portfolio spec's weights of the sleeve (None = equal); used by "fixed".
    """
    n = covariance.shape[-1]
    if n == 1:
        return np.ones(covariance.shape[:-1])
    match mix:
        case "fixed":
            weights = np.full(n, 1.0 / n) if fixed is None else np.asarray(fixed)
            return np.broadcast_to(weights, covariance.shape[:-1]).copy()
        case "inverse_vol":
            return inverse_vol_weights(covariance)
        case "risk_parity":
            return risk_parity_weights(covariance)
    raise ValueError(f"base mix {mix!r} is not one of fixed, inverse_vol, risk_parity")
