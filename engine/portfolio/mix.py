"""Base mixes of a sleeve: fixed weights, inverse volatility, equal risk contribution.

Each is computed at every rebalance of every path from the trailing covariance of the
sleeve's daily log returns (the same window the rule measures its vol over).

Reference for risk parity: S. Maillard, T. Roncalli and J. Teiletche, "The properties of
equally weighted risk contribution portfolios", Journal of Portfolio Management 36(4),
2010, whose convex formulation (the minimum of y' Sigma y / 2 - sum ln(y_i) / n) is
solved here by Newton's method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from engine.arrays import kernel_input
from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.types import FloatArray, IntArray

ERC_TOLERANCE = 1e-13
ERC_FULL_STEP_TOLERANCE = 1e-8
"""A full Newton step moving no coordinate by more than this (relative) ends the solve:
the error left is about its square (see :func:`risk_parity_weights`)."""
ERC_MAX_ITERATIONS = 200


@dataclass(frozen=True, slots=True)
class CumulativeMoments:
    """Running sums of a sleeve's daily log returns at chosen days, shared by every window.

    ``days`` (sorted, unique) are the days kept; ``log_levels`` is ln S there,
    (n_assets, n_paths, n_days_kept), and ``cross`` the running sums
    Q_ab,j = sum_{i<=j} r_a,i r_b,i there, (n_assets, n_assets, n_paths, n_days_kept),
    both a <= b and b <= a filled. One compiled pass over the days builds them.
    """

    days: IntArray
    log_levels: FloatArray
    cross: FloatArray

    @classmethod
    def of(cls, log_levels: FloatArray, days: IntArray) -> CumulativeMoments:
        """From ln of the levels (n_assets, n_paths, n_days + 1), kept at ``days``."""
        kept = np.unique(np.asarray(days, dtype=np.int64))
        cross = _cumulative_cross(kernel_input(log_levels), kept)
        return cls(kept, log_levels[:, :, kept], cross)

    def covariance(self, ends: IntArray, window_days: int) -> FloatArray:
        """:func:`trailing_covariance` at ``ends`` for one window; ``ends`` and
        ``ends - window_days`` must be among the kept days."""
        n = int(window_days)
        ends = np.asarray(ends, dtype=np.int64)
        if n < 2 or ends.min() < n:
            raise ValueError(f"a trailing window of {n} days needs every end >= {n} and n >= 2")
        return _window_covariance(kernel_input(self.log_levels), self.cross, self._positions(ends),
                                  self._positions(ends - n), n)

    def _positions(self, days: IntArray) -> IntArray:
        where = np.minimum(np.searchsorted(self.days, days), len(self.days) - 1)
        if not np.array_equal(self.days[where], days):
            raise ValueError("CumulativeMoments: a requested day was not kept")
        return where


@numba.njit(cache=True, nogil=True, parallel=True)
def _window_covariance(
    log_levels: FloatArray, cross: FloatArray, at_end: IntArray, at_start: IntArray, n: int
) -> FloatArray:  # pragma: no cover - compiled
    n_assets, n_paths, _ = log_levels.shape
    n_ends = at_end.shape[0]
    out = np.empty((n_paths, n_ends, n_assets, n_assets))
    scale = TRADING_DAYS_PER_YEAR / (n - 1.0)
    for p in numba.prange(n_paths):
        for k in range(n_ends):
            e, s = at_end[k], at_start[k]
            for a in range(n_assets):
                sum_a = log_levels[a, p, e] - log_levels[a, p, s]
                for b in range(a, n_assets):
                    sum_b = log_levels[b, p, e] - log_levels[b, p, s]
                    products = cross[a, b, p, e] - cross[a, b, p, s]
                    cov = (products - sum_a * sum_b / n) * scale
                    out[p, k, a, b] = cov
                    out[p, k, b, a] = cov
    return out


def sleeve_vol(weights: FloatArray, covariance: FloatArray) -> FloatArray:
    """sqrt(w' Sigma w) over the last axes: weights (..., n), covariance (..., n, n)."""
    return np.sqrt(np.maximum(_quadratic_form(np.ascontiguousarray(weights).reshape(
        -1, weights.shape[-1]), np.ascontiguousarray(covariance).reshape(
        -1, *covariance.shape[-2:])), 0.0)).reshape(weights.shape[:-1])


@numba.njit(cache=True, nogil=True)
def _quadratic_form(w: FloatArray, cov: FloatArray) -> FloatArray:  # pragma: no cover
    out = np.empty(w.shape[0])
    for i in range(w.shape[0]):
        out[i] = quadratic_form(w[i], cov[i])
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def quadratic_form(w: FloatArray, cov: FloatArray) -> float:  # pragma: no cover - compiled
    """w' Sigma w of one (n,) and (n, n), summed row by row: sum_a w_a (sum_b Sigma_ab w_b).
    Inlined, as is :func:`inverse_vol`: a call per key and rebalance of the sleeve-mix pass
    (engine.portfolio.sleeve_mixes) measured some 13% of that pass."""
    n = w.shape[0]
    total = 0.0
    for a in range(n):
        row = 0.0
        for b in range(n):
            row += cov[a, b] * w[b]
        total += w[a] * row
    return total


@numba.njit(cache=True, nogil=True, parallel=True)
def _cumulative_cross(log_levels: FloatArray, days: IntArray) -> FloatArray:  # pragma: no cover
    n_assets, n_paths, _ = log_levels.shape
    out = np.empty((n_assets, n_assets, n_paths, days.shape[0]))
    for p in numba.prange(n_paths):
        total = np.zeros((n_assets, n_assets))
        r = np.empty(n_assets)
        j = 0
        for t in range(days[-1] + 1):
            if t > 0:
                for a in range(n_assets):
                    r[a] = log_levels[a, p, t] - log_levels[a, p, t - 1]
                for a in range(n_assets):
                    for b in range(a, n_assets):
                        total[a, b] += r[a] * r[b]
            if t == days[j]:
                for a in range(n_assets):
                    for b in range(a, n_assets):
                        out[a, b, p, j] = out[b, a, p, j] = total[a, b]
                j += 1
    return out


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
    Several windows share one :class:`CumulativeMoments`.
    """
    ends = np.asarray(ends, dtype=np.int64)
    kept = np.concatenate([ends, ends - int(window_days)])
    return CumulativeMoments.of(log_levels, kept[kept >= 0]).covariance(ends, window_days)


def inverse_vol_weights(covariance: FloatArray) -> FloatArray:
    """w_i = (1 / sigma_i) / sum_j (1 / sigma_j), over the last axis of the result.

    ``covariance`` has shape (..., n, n); an asset with sigma_i = 0 takes the whole
    sleeve (shared equally among such assets). One compiled pass; the sum runs left to
    right, numpy's order for n < 8."""
    cov = np.ascontiguousarray(covariance, dtype=np.float64)
    n = cov.shape[-1]
    return _inverse_vol(cov.reshape(-1, n, n)).reshape(cov.shape[:-1])


@numba.njit(cache=True, nogil=True)
def _inverse_vol(cov: FloatArray) -> FloatArray:  # pragma: no cover - compiled
    m, n, _ = cov.shape
    out = np.empty((m, n))
    for i in range(m):
        inverse_vol(cov[i], out[i])
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def inverse_vol(cov: FloatArray, out: FloatArray) -> None:  # pragma: no cover - compiled
    """:func:`inverse_vol_weights` of one (n, n) covariance, written to ``out`` (n,)."""
    n = cov.shape[0]
    zero = False
    for a in range(n):
        vol = np.sqrt(0.0 if cov[a, a] < 0.0 else cov[a, a])
        out[a] = vol
        zero = zero or vol == 0.0
    for a in range(n):
        vol = out[a]
        if zero:
            out[a] = 1.0 if vol == 0.0 else 0.0
        else:
            out[a] = 1.0 / vol
    total = out[0]
    for a in range(1, n):
        total += out[a]
    for a in range(n):
        out[a] /= total


def risk_parity_weights(covariance: FloatArray) -> FloatArray:
    """Long-only equal-risk-contribution weights, shape (..., n), summing to 1.

    Notes
    -----
    w_i (Sigma w)_i = w' Sigma w / n for every i. Solved for y > 0 with
    y_i (Sigma y)_i = 1 / n, the minimum of the strictly convex
    f(y) = y' Sigma y / 2 - sum_i ln(y_i) / n, by Newton's method (Jacobian
    Sigma + diag(1 / (n y^2)), a Cholesky solve; a step moving any coordinate by a quarter
    or more is halved until y stays positive and f does not rise) until a full Newton
    step moves no coordinate by 1e-8 relative, or any step none by 1e-13; w = y / sum y.
    Newton converges quadratically: in u_i = y_i / y*_i the Jacobian is at least
    I / n and the barrier's second derivative 2 / n, so a step of relative size delta
    leaves an error of about delta^2 <= 1e-16, rounding's. Along the second-to-last
    leading axis (the rebalances of a path) each solve starts from the previous solution
    rescaled to y' Sigma y = 1 (which the solution satisfies). The diagonal case gives
    the inverse-vol weights. A sleeve with a zero-variance asset falls back to
    :func:`inverse_vol_weights`.
    """
    cov = np.asarray(covariance, dtype=np.float64)
    shape = cov.shape
    n = shape[-1]
    runs = cov.reshape(-1, shape[-3] if cov.ndim > 2 else 1, n, n)
    weights = _erc(np.ascontiguousarray(runs)).reshape(shape[:-1])
    singular = ~np.isfinite(weights).all(axis=-1)
    if singular.any():
        weights[singular] = inverse_vol_weights(cov[singular])
    return weights


@numba.njit(cache=True, nogil=True)
def _erc_objective(c, y, budget):  # pragma: no cover - compiled
    n = y.shape[0]
    value = 0.0
    for i in range(n):
        row = 0.0
        for j in range(n):
            row += c[i, j] * y[j]
        value += 0.5 * y[i] * row - budget * np.log(y[i])
    return value


@numba.njit(cache=True, nogil=True, parallel=True)
def _erc(cov: FloatArray) -> FloatArray:  # pragma: no cover - compiled
    runs, length, n, _ = cov.shape
    out = np.empty((runs, length, n))
    for r in numba.prange(runs):
        y, work = np.empty(n), np.empty((n + 3, n))
        warm = False
        for k in range(length):
            warm = erc_solve(cov[r, k], y, work, warm, out[r, k])
            if not warm:
                out[r, k, :] = np.nan
    return out


@numba.njit(cache=True, nogil=True)
def erc_solve(c: FloatArray, y: FloatArray, work: FloatArray, warm: bool,
              out: FloatArray) -> bool:  # pragma: no cover - compiled
    """Equal-risk-contribution weights of one covariance ``c`` (n, n) by Newton's method
    (:func:`risk_parity_weights`), written to ``out`` (n,).

    ``y`` (n,) holds the unnormalised solution y; with ``warm`` the solve starts from it
    (the previous solve's), else from y_i = 1 / sqrt(n Sigma_ii). ``work`` is (n + 3, n)
    scratch. Returns False (``out`` untouched) on a non-positive variance or without
    convergence: the next solve must then start cold.
    """
    n = y.shape[0]
    trial, grad, step, chol = work[0], work[1], work[2], work[3:]
    budget = 1.0 / n
    for i in range(n):
        if not c[i, i] > 0.0:
            return False
    if warm:
        # at the solution y' Sigma y = sum_i y_i (Sigma y)_i = 1: rescale to it
        rescale = 1.0 / np.sqrt(quadratic_form(y, c))
        for i in range(n):
            y[i] *= rescale
    else:
        for i in range(n):
            y[i] = 1.0 / np.sqrt(c[i, i] * n)
    for _ in range(ERC_MAX_ITERATIONS):
        for i in range(n):
            row = 0.0
            for j in range(n):
                row += c[i, j] * y[j]
            grad[i] = row - budget / y[i]
        # Cholesky of J = Sigma + diag(budget / y^2), then J step = grad
        for i in range(n):
            for j in range(i + 1):
                total = c[i, j] + (budget / (y[i] * y[i]) if i == j else 0.0)
                for m in range(j):
                    total -= chol[i, m] * chol[j, m]
                if i == j:
                    chol[i, i] = np.sqrt(total)
                else:
                    chol[i, j] = total / chol[j, j]
        for i in range(n):
            total = grad[i]
            for m in range(i):
                total -= chol[i, m] * step[m]
            step[i] = total / chol[i, i]
        for i in range(n - 1, -1, -1):
            total = step[i]
            for m in range(i + 1, n):
                total -= chol[m, i] * step[m]
            step[i] = total / chol[i, i]
        # near the solution the full Newton step is taken as it is
        full = True
        for i in range(n):
            trial[i] = y[i] - step[i]
            if not abs(step[i]) < 0.25 * y[i]:
                full = False
        before = 0.0 if full else _erc_objective(c, y, budget)
        t = 1.0
        for _ in range(0 if full else 60):
            positive = True
            for i in range(n):
                trial[i] = y[i] - t * step[i]
                if not trial[i] > 0.0:
                    positive = False
            if positive and _erc_objective(c, trial, budget) <= before + 1e-15 * abs(
                before
            ):
                break
            t *= 0.5
        moved = 0.0
        for i in range(n):
            moved = max(moved, abs(trial[i] - y[i]) / trial[i])
            y[i] = trial[i]
        if moved < (ERC_FULL_STEP_TOLERANCE if full else ERC_TOLERANCE):
            total = y.sum()
            for i in range(n):
                out[i] = y[i] / total
            return True
    return False


def fixed_weights(n: int, fixed: tuple[float, ...] | None) -> FloatArray:
    """The "fixed" mix of an n-asset sleeve: the spec's weights, or 1 / n each (None)."""
    return np.full(n, 1.0 / n) if fixed is None else np.asarray(fixed, dtype=np.float64)


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
            return np.broadcast_to(fixed_weights(n, fixed), covariance.shape[:-1]).copy()
        case "inverse_vol":
            return inverse_vol_weights(covariance)
        case "risk_parity":
            return risk_parity_weights(covariance)
    raise ValueError(f"base mix {mix!r} is not one of fixed, inverse_vol, risk_parity")
