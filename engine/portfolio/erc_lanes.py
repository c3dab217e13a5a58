"""Several equal-risk-contribution solves side by side, one per lane (numba).

:func:`engine.portfolio.mix.erc_solve` solves one covariance; a sweep asks for risk
parity at many windows of the same (path, rebalance). Here each lane is one solve with
the lanes the innermost axis of every array, so the compiler runs several lanes in one
vector instruction. Every lane performs the scalar solve's operations in its order, so
each result is :func:`engine.portfolio.mix.erc_solve`'s bit for bit: Newton's full steps
run side by side; a lane whose step would move a coordinate by a quarter or more (the
scalar solve's damped step, as on a cold start) is solved again from its start by
:func:`engine.portfolio.mix.erc_solve` itself. For three assets (each sleeve of
:data:`engine.portfolio.examples.GLOBAL_SIX`) a lane's whole Newton step is written out in
one loop over the lanes, its intermediates in registers rather than one small loop per
operation through memory (some 45% less time in the solves); any other n runs the loops.
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
    n = y.shape[0]
    start, status = work[0], lane[0]
    if n == 3:
        _start_lanes_3(c, y, warm, start, status)
        _newton_lanes_3(c, y, status)
    else:
        _start_lanes(c, y, warm, start, lane)
        _newton_lanes(c, y, status, work, lane)
    return _finish(c, y, warm, out, start, lane)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _start_lanes(c: FloatArray, y: FloatArray, warm: BoolArray, start: FloatArray,
                 lane: FloatArray) -> None:  # pragma: no cover - compiled
    """Keep each lane's y in ``start``, mark the lanes with a non-positive variance failed
    and the others pending, and set each lane's first iterate (any n)."""
    n, lanes = y.shape
    status, row, total = lane[0], lane[2], lane[3]
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _start_lanes_3(c: FloatArray, y: FloatArray, warm: BoolArray, start: FloatArray,
                   status: FloatArray) -> None:  # pragma: no cover - compiled
    """:func:`_start_lanes` for n = 3, a lane at a time (as :func:`_newton_lanes_3`)."""
    for v in range(y.shape[1]):
        y0, y1, y2 = y[0, v], y[1, v], y[2, v]
        start[0, v], start[1, v], start[2, v] = y0, y1, y2
        positive = (c[0, 0, v] > 0.0) & (c[1, 1, v] > 0.0) & (c[2, 2, v] > 0.0)
        status[v] = _PENDING if positive else _FAILED
        r0 = ((0.0 + c[0, 0, v] * y0) + c[0, 1, v] * y1) + c[0, 2, v] * y2
        r1 = ((0.0 + c[1, 0, v] * y0) + c[1, 1, v] * y1) + c[1, 2, v] * y2
        r2 = ((0.0 + c[2, 0, v] * y0) + c[2, 1, v] * y1) + c[2, 2, v] * y2
        rescale = 1.0 / np.sqrt(((0.0 + y0 * r0) + y1 * r1) + y2 * r2)
        y[0, v] = y0 * rescale if warm[v] else 1.0 / np.sqrt(c[0, 0, v] * 3.0)
        y[1, v] = y1 * rescale if warm[v] else 1.0 / np.sqrt(c[1, 1, v] * 3.0)
        y[2, v] = y2 * rescale if warm[v] else 1.0 / np.sqrt(c[2, 2, v] * 3.0)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _newton_lanes(c: FloatArray, y: FloatArray, status: FloatArray, work: FloatArray,
                  lane: FloatArray) -> None:  # pragma: no cover - compiled
    """Newton's full steps of every pending lane until none is pending, loop by loop
    (any n)."""
    n, lanes = y.shape
    trial, grad, step, chol = work[1], work[2], work[3], work[4:]
    moved, row, total = lane[1], lane[2], lane[3]
    budget = 1.0 / n
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


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _newton_lanes_3(c: FloatArray, y: FloatArray,
                    status: FloatArray) -> None:  # pragma: no cover - compiled
    """:func:`_newton_lanes` for n = 3: a lane's whole step (gradient, Cholesky factor,
    both triangular solves, the full-step test) in one pass over the lanes, the same
    operations in the same order held in registers."""
    lanes = y.shape[1]
    budget = 1.0 / 3
    pending = _count(status, _PENDING)
    for _ in range(ERC_MAX_ITERATIONS):
        if pending == 0:
            break
        pending = 0
        for v in range(lanes):
            y0, y1, y2 = y[0, v], y[1, v], y[2, v]
            g0 = ((0.0 + c[0, 0, v] * y0) + c[0, 1, v] * y1) + c[0, 2, v] * y2 - budget / y0
            g1 = ((0.0 + c[1, 0, v] * y0) + c[1, 1, v] * y1) + c[1, 2, v] * y2 - budget / y1
            g2 = ((0.0 + c[2, 0, v] * y0) + c[2, 1, v] * y1) + c[2, 2, v] * y2 - budget / y2
            l00 = np.sqrt(c[0, 0, v] + budget / (y0 * y0))
            l10 = (c[1, 0, v] + 0.0) / l00
            l11 = np.sqrt(c[1, 1, v] + budget / (y1 * y1) - l10 * l10)
            l20 = (c[2, 0, v] + 0.0) / l00
            l21 = (c[2, 1, v] + 0.0 - l20 * l10) / l11
            l22 = np.sqrt(c[2, 2, v] + budget / (y2 * y2) - l20 * l20 - l21 * l21)
            s0 = g0 / l00
            s1 = (g1 - l10 * s0) / l11
            s2 = (g2 - l20 * s0 - l21 * s1) / l22
            s2 = s2 / l22
            s1 = (s1 - l21 * s2) / l11
            s0 = (s0 - l10 * s1 - l20 * s2) / l00
            t0, t1, t2 = y0 - s0, y1 - s1, y2 - s2
            full = (abs(s0) < 0.25 * y0) & (abs(s1) < 0.25 * y1) & (abs(s2) < 0.25 * y2)
            moved = max(max(max(0.0, abs(t0 - y0) / t0), abs(t1 - y1) / t1), abs(t2 - y2) / t2)
            was = status[v] == _PENDING
            take = was & full
            done = moved < ERC_FULL_STEP_TOLERANCE
            status[v] = _DAMPED if was & (not full) else (_SOLVED if take & done else status[v])
            y[0, v] = t0 if take else y0
            y[1, v] = t1 if take else y1
            y[2, v] = t2 if take else y2
            pending += take & (not done)


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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish(c: FloatArray, y: FloatArray, warm: BoolArray, out: FloatArray,
            start: FloatArray, lane: FloatArray) -> int:  # pragma: no cover - compiled
    """Normalise the solved lanes (w = y / sum y, summed in i's order), solve the damped
    ones again by the scalar Newton; returns how many were damped."""
    n, lanes = y.shape
    status, total = lane[0], lane[3]
    for v in range(lanes):
        total[v] = 0.0
    for i in range(n):
        for v in range(lanes):
            total[v] += y[i, v]
    for i in range(n):
        for v in range(lanes):
            out[i, v] = y[i, v] / total[v] if status[v] == _SOLVED else out[i, v]
    damped = 0
    for v in range(lanes):
        if status[v] == _DAMPED:
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
            warm[v] = status[v] == _SOLVED
    return damped
