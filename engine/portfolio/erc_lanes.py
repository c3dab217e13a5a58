"""Several equal-risk-contribution solves side by side, one per lane (numba).

:func:`engine.portfolio.mix.erc_solve` solves one covariance; a sweep asks for risk
parity at many windows of the same (path, rebalance). Here each lane is one solve with
the lanes the innermost axis of every array, so the compiler runs several lanes in one
vector instruction. Every lane performs the scalar solve's operations in its order, so
each result is :func:`engine.portfolio.mix.erc_solve`'s bit for bit: Newton's full steps
run side by side; a lane whose step would move a coordinate by a quarter or more (the
scalar solve's damped step, as on a cold start) is solved again from its start by
:func:`engine.portfolio.mix.erc_solve` itself.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.portfolio.mix import ERC_FULL_STEP_TOLERANCE, ERC_MAX_ITERATIONS, erc_solve
from engine.types import BoolArray, FloatArray

_PENDING, _SOLVED, _DAMPED, _FAILED = 0, 1, 2, 3


@numba.njit(cache=True, nogil=True)
def erc_lanes_workspace(n: int, lanes: int) -> tuple[FloatArray, FloatArray]:  # pragma: no cover
    """Scratch for :func:`erc_solve_lanes`: ``work`` (n + 4, n, lanes) and ``lane`` (4, lanes)."""
    return np.empty((n + 4, n, lanes)), np.empty((4, lanes))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def erc_solve_lanes(c: FloatArray, y: FloatArray, warm: BoolArray, out: FloatArray,
                    work: FloatArray, lane: FloatArray) -> int:  # pragma: no cover - compiled
    """Equal-risk-contribution weights of every lane's covariance (:func:`erc_solve` each).

    Parameters
    ----------
    c : covariances, lanes last, (n, n, L).
    y : each lane's unnormalised solution y, (n, L); with ``warm[v]`` lane v starts from
        it rescaled to y' Sigma y = 1, else from y_i = 1 / sqrt(n Sigma_ii).
    warm : (L,), read as the warm flags and overwritten with each lane's success; a lane
        that fails (a non-positive variance, no convergence) leaves ``out[:, v]``
        untouched and must start cold next time.
    out : the weights y / sum y, (n, L).
    work, lane : scratch from :func:`erc_lanes_workspace`, at least (n + 4, n, L) and (4, L).

    Returns
    -------
    How many lanes took a damped step and were solved again by :func:`erc_solve`.
    """
    n, lanes = y.shape
    start, trial, grad, step, chol = work[0], work[1], work[2], work[3], work[4:]
    status, moved, row, total = lane[0], lane[1], lane[2], lane[3]
    budget = 1.0 / n
    for v in range(lanes):
        status[v] = _PENDING
        total[v] = 0.0
    for i in range(n):
        for v in range(lanes):
            start[i, v] = y[i, v]
            if not c[i, i, v] > 0.0:
                status[v] = _FAILED
    # quadratic_form(y, c), the warm start's rescaling to y' Sigma y = 1
    for a in range(n):
        _covariance_row_times(c, y, a, row)
        for v in range(lanes):
            total[v] += y[a, v] * row[v]
    for v in range(lanes):
        total[v] = 1.0 / np.sqrt(total[v])
    for i in range(n):
        for v in range(lanes):
            y[i, v] = y[i, v] * total[v] if warm[v] else 1.0 / np.sqrt(c[i, i, v] * n)
    pending = _count(status, _PENDING)
    for _ in range(ERC_MAX_ITERATIONS):
        if pending == 0:
            break
        for i in range(n):
            _covariance_row_times(c, y, i, row)
            for v in range(lanes):
                grad[i, v] = row[v] - budget / y[i, v]
        for i in range(n):
            for j in range(i + 1):
                for v in range(lanes):
                    total[v] = c[i, j, v] + (budget / (y[i, v] * y[i, v]) if i == j else 0.0)
                for m in range(j):
                    for v in range(lanes):
                        total[v] -= chol[i, m, v] * chol[j, m, v]
                for v in range(lanes):
                    if i == j:
                        chol[i, i, v] = np.sqrt(total[v])
                    else:
                        chol[i, j, v] = total[v] / chol[j, j, v]
        for i in range(n):
            for v in range(lanes):
                total[v] = grad[i, v]
            for m in range(i):
                for v in range(lanes):
                    total[v] -= chol[i, m, v] * step[m, v]
            for v in range(lanes):
                step[i, v] = total[v] / chol[i, i, v]
        for i in range(n - 1, -1, -1):
            for v in range(lanes):
                total[v] = step[i, v]
            for m in range(i + 1, n):
                for v in range(lanes):
                    total[v] -= chol[m, i, v] * step[m, v]
            for v in range(lanes):
                step[i, v] = total[v] / chol[i, i, v]
        for v in range(lanes):
            moved[v] = 0.0
            row[v] = 1.0
        for i in range(n):
            for v in range(lanes):
                trial[i, v] = y[i, v] - step[i, v]
                row[v] = row[v] if abs(step[i, v]) < 0.25 * y[i, v] else 0.0
                moved[v] = max(moved[v], abs(trial[i, v] - y[i, v]) / trial[i, v])
        for v in range(lanes):
            full = row[v] != 0.0
            row[v] = 1.0 if status[v] == _PENDING and full else 0.0
            if status[v] == _PENDING:
                if not full:
                    status[v] = _DAMPED
                elif moved[v] < ERC_FULL_STEP_TOLERANCE:
                    status[v] = _SOLVED
        for i in range(n):
            for v in range(lanes):
                y[i, v] = trial[i, v] if row[v] != 0.0 else y[i, v]
        pending = _count(status, _PENDING)
    return _finish(c, y, warm, out, start, status)


@numba.njit(cache=True, nogil=True, inline="always")
def _covariance_row_times(c: FloatArray, y: FloatArray, a: int,
                          row: FloatArray) -> None:  # pragma: no cover - compiled
    """row[v] = sum_b c[a, b, v] y[b, v] for every lane v, summed in b's order (the
    scalar solve's (Sigma y)_a). Inlined: a call per row measured some 7% of the solves."""
    n, lanes = y.shape
    for v in range(lanes):
        row[v] = 0.0
    for b in range(n):
        for v in range(lanes):
            row[v] += c[a, b, v] * y[b, v]


@numba.njit(cache=True, nogil=True)
def _count(status: FloatArray, value: int) -> int:  # pragma: no cover - compiled
    found = 0
    for v in range(status.shape[0]):
        found += status[v] == value
    return found


@numba.njit(cache=True, nogil=True)
def _finish(c: FloatArray, y: FloatArray, warm: BoolArray, out: FloatArray,
            start: FloatArray, status: FloatArray) -> int:  # pragma: no cover - compiled
    """Normalise the solved lanes, solve the damped ones again by the scalar Newton;
    returns how many were damped."""
    n, lanes = y.shape
    damped = 0
    for v in range(lanes):
        if status[v] == _SOLVED:
            total = y[:, v].sum()
            for i in range(n):
                out[i, v] = y[i, v] / total
            warm[v] = True
        elif status[v] == _DAMPED:
            damped += 1
            solution = start[:, v].copy()
            weights = np.empty(n)
            warm[v] = erc_solve(np.ascontiguousarray(c[:, :, v]), solution,
                                np.empty((n + 3, n)), warm[v], weights)
            for i in range(n):
                y[i, v] = solution[i]
                if warm[v]:
                    out[i, v] = weights[i]
        else:
            warm[v] = False
    return damped
