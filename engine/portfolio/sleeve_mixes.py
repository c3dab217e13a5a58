"""Every base mix a sweep asks for, at every (path, rebalance), in one compiled pass.

A sweep's configs share few (window, base mix) pairs per sleeve. Per path, one pass
keeps the running sums of each sleeve's daily log-return products at the days the
windows start and end; then, rebalance by rebalance for a group of ``PATHS_PER_SOLVE``
paths, it builds each sleeve's trailing covariance once per window and every mix of that
window from it: fixed weights, inverse volatility, risk parity (each solve warm-started
from the same mix's previous rebalance of its path, the group's solves side by side), and
the risky sleeve's vol sqrt(b' Sigma b). The numbers are those of
:class:`engine.portfolio.mix.CumulativeMoments`, :func:`engine.portfolio.mix.base_mix_weights`
and :func:`engine.portfolio.mix.sleeve_vol` on the same covariances, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from engine.arrays import kernel_input
from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.portfolio.erc_lanes import erc_lanes_workspace, erc_solve_lanes
from engine.portfolio.mix import fixed_weights, inverse_vol, quadratic_form
from engine.portfolio.spec import PortfolioSpec
from engine.types import BoolArray, FloatArray, IntArray

MIX_CODES = {"fixed": 0, "inverse_vol": 1, "risk_parity": 2}
"""Each base mix's code in the compiled pass."""

PATHS_PER_SOLVE = 4
"""Paths whose risk-parity solves of a rebalance run as the lanes of one
:func:`engine.portfolio.erc_lanes.erc_solve_lanes` call: one path's keys alone leave
too few lanes to fill the vector loops (a sweep's 15-20), and more paths make every lane
wait for the slowest of more solves (4: some 25% less time in the solves than 1 path)."""

SleeveKey = tuple[int, str]
"""(window_days, base mix) of a sleeve."""


@dataclass(frozen=True, slots=True)
class SleeveMixes:
    """``risky`` (n_risky_keys, n_paths, n_months, n_equities) and ``risky_vol``
    (n_risky_keys, n_paths, n_months) for each (window_days, mix) of ``risky_keys``;
    ``defensive`` (n_defensive_keys, n_paths, n_months, n_defensive) likewise."""

    risky_keys: tuple[SleeveKey, ...]
    risky: FloatArray
    risky_vol: FloatArray
    defensive_keys: tuple[SleeveKey, ...]
    defensive: FloatArray


@dataclass(frozen=True, slots=True)
class SleeveMixer:
    """What the compiled pass reads to build the mixes of the keys at the rebalance days:
    the days whose running moments it keeps, each (window, rebalance)'s place among them,
    each key's (window, mix code) and the sleeves' fixed weights (:meth:`of`)."""

    risky_keys: tuple[SleeveKey, ...]
    defensive_keys: tuple[SleeveKey, ...]
    kept: IntArray
    at_end: IntArray
    at_start: IntArray
    windows: IntArray
    risky_codes: IntArray
    defensive_codes: IntArray
    risky_fixed: FloatArray
    defensive_fixed: FloatArray

    @classmethod
    def of(cls, spec: PortfolioSpec, starts: IntArray, risky_keys: Sequence[SleeveKey],
           defensive_keys: Sequence[SleeveKey]) -> SleeveMixer:
        """The mixer of ``spec``'s sleeves at the rebalance days ``starts`` (arguments as
        :func:`sleeve_mixes`)."""
        starts = np.asarray(starts, dtype=np.int64)
        keys = (tuple(risky_keys), tuple(defensive_keys))
        windows = np.array(sorted({w for sleeve in keys for w, _ in sleeve}), dtype=np.int64)
        if windows.size == 0:
            raise ValueError("sleeve_mixes needs at least one (window_days, mix) key")
        if windows.min() < 2 or starts.min() < windows.max():
            raise ValueError(f"a trailing window of {windows.max()} days needs every"
                             f" rebalance day >= {windows.max()} and windows >= 2 days")
        kept = np.unique(np.concatenate([starts, *(starts - w for w in windows)]))
        codes = [np.array([[np.searchsorted(windows, w), MIX_CODES[m]] for w, m in sleeve],
                          dtype=np.int64).reshape(-1, 2) for sleeve in keys]
        return cls(keys[0], keys[1], kept, np.searchsorted(kept, starts),
                   np.stack([np.searchsorted(kept, starts - w) for w in windows]), windows,
                   codes[0], codes[1], fixed_weights(len(spec.equities), spec.risky_weights),
                   fixed_weights(len(spec.defensive), spec.defensive_weights))

    def empty(self, n_paths: int) -> SleeveMixes:
        """Uninitialised mixes of ``n_paths`` paths, for :meth:`fill`."""
        n_risky, n_months = len(self.risky_keys), self.at_end.size
        return SleeveMixes(
            self.risky_keys, np.empty((n_risky, n_paths, n_months, self.risky_fixed.size)),
            np.empty((n_risky, n_paths, n_months)), self.defensive_keys,
            np.empty((len(self.defensive_keys), n_paths, n_months, self.defensive_fixed.size)))

    def fill(self, levels: FloatArray, first: int, out: SleeveMixes) -> None:
        """Write the mixes of paths first, first + 1, ... of ``levels`` (a read-only view,
        engine.arrays.kernel_input) to ``out``'s paths 0, 1, ..., as many as both hold."""
        _sleeve_mixes(levels, first, self.risky_fixed.size, self.kept, self.at_end, self.at_start,
                      self.windows, self.risky_codes, self.defensive_codes, self.risky_fixed,
                      self.defensive_fixed, out.risky, out.risky_vol, out.defensive)


def sleeve_mixes(levels: FloatArray, spec: PortfolioSpec, starts: IntArray,
                 risky_keys: Sequence[SleeveKey],
                 defensive_keys: Sequence[SleeveKey]) -> SleeveMixes:
    """The base mixes of both sleeves at every rebalance day of ``starts``.

    Parameters
    ----------
    levels : (n_assets, n_paths, n_days + 1) positive levels, ``spec.ordered`` order.
    spec : the portfolio (its sleeves and fixed weights).
    starts : the rebalance days, each >= every key's window_days, (n_months,).
    risky_keys, defensive_keys : the (window_days, mix) pairs wanted for each sleeve.

    Notes
    -----
    At rebalance day e and window n the covariance is
    252 (sum r_a r_b - sum r_a sum r_b / n) / (n - 1) over the n daily log returns up to
    e (engine.portfolio.mix.trailing_covariance); a one-asset sleeve's mix is 1. A risk
    parity solve that fails (a zero variance) falls back to inverse volatility and the
    next one starts cold, as :func:`engine.portfolio.mix.risk_parity_weights` does.
    :class:`SleeveMixer` builds them for a chunk of paths at a time.
    """
    mixer = SleeveMixer.of(spec, starts, risky_keys, defensive_keys)
    out = mixer.empty(levels.shape[1])
    mixer.fill(kernel_input(levels), 0, out)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(code: int, covs: FloatArray, window: int, fixed: FloatArray, solved: FloatArray,
         lane: int, warm: BoolArray, out: FloatArray) -> None:  # pragma: no cover - compiled
    """Write one base mix to ``out``: risk parity is lane ``lane`` of ``solved`` if that
    solve converged (``warm[lane]``), else inverse volatility of ``covs[window]``.
    Inlined into the pass, element by element and taking the covariances and a window
    rather than a view: a call per mix with views measured some 15-20% of the pass's time."""
    if out.shape[0] == 1:
        out[0] = 1.0
    elif code == 0:
        for a in range(out.shape[0]):
            out[a] = fixed[a]
    elif code == 2 and warm[lane]:
        for a in range(out.shape[0]):
            out[a] = solved[a, lane]
    else:
        inverse_vol(covs[window], out)


@numba.njit(cache=True, nogil=True, inline="always")
def _mix_3(code: int, cov: FloatArray, fixed: FloatArray, solved: FloatArray, lane: int,
           warm: BoolArray, out: FloatArray) -> float:  # pragma: no cover - compiled
    """:func:`_mix` of a three-asset sleeve's covariance ``cov`` (3, 3), returning the mix's
    b' Sigma b: the operations of :func:`engine.portfolio.mix.inverse_vol` and
    :func:`engine.portfolio.mix.quadratic_form` in their order, written out for n = 3 so
    they run in registers rather than loops of a trip count known only at run time."""
    c00, c01, c02 = cov[0, 0], cov[0, 1], cov[0, 2]
    c10, c11, c12 = cov[1, 0], cov[1, 1], cov[1, 2]
    c20, c21, c22 = cov[2, 0], cov[2, 1], cov[2, 2]
    if code == 0:
        b0, b1, b2 = fixed[0], fixed[1], fixed[2]
    elif code == 2 and warm[lane]:
        b0, b1, b2 = solved[0, lane], solved[1, lane], solved[2, lane]
    else:
        s0 = np.sqrt(0.0 if c00 < 0.0 else c00)
        s1 = np.sqrt(0.0 if c11 < 0.0 else c11)
        s2 = np.sqrt(0.0 if c22 < 0.0 else c22)
        if s0 == 0.0 or s1 == 0.0 or s2 == 0.0:
            b0 = 1.0 if s0 == 0.0 else 0.0
            b1 = 1.0 if s1 == 0.0 else 0.0
            b2 = 1.0 if s2 == 0.0 else 0.0
        else:
            b0, b1, b2 = 1.0 / s0, 1.0 / s1, 1.0 / s2
        total = (b0 + b1) + b2
        b0, b1, b2 = b0 / total, b1 / total, b2 / total
    out[0], out[1], out[2] = b0, b1, b2
    r0 = ((0.0 + c00 * b0) + c01 * b1) + c02 * b2
    r1 = ((0.0 + c10 * b0) + c11 * b1) + c12 * b2
    r2 = ((0.0 + c20 * b0) + c21 * b1) + c22 * b2
    return ((0.0 + b0 * r0) + b1 * r1) + b2 * r2


@numba.njit(cache=True, nogil=True)
def _lanes(codes: IntArray) -> IntArray:  # pragma: no cover - compiled
    """Each key's lane among the sleeve's risk-parity keys (-1 for the other mixes)."""
    lanes = np.full(codes.shape[0], -1, dtype=np.int64)
    found = 0
    for i in range(codes.shape[0]):
        if codes[i, 1] == 2:
            lanes[i] = found
            found += 1
    return lanes


@numba.njit(cache=True, nogil=True, inline="always")
def _solve_lanes(codes: IntArray, lanes: IntArray, cov: FloatArray, c: FloatArray,
                 y: FloatArray, warm: BoolArray, out: FloatArray, work: FloatArray,
                 lane: FloatArray) -> None:  # pragma: no cover - compiled
    """Every risk-parity key's solve at one rebalance of every path of a group, side by
    side (erc_solve_lanes): path j's key of lane l is lane j L + l, L the keys' lanes,
    with ``cov`` (paths, windows, n, n)."""
    if y.shape[1] == 0 or y.shape[0] == 1:
        return
    n_lanes = y.shape[1] // cov.shape[0]
    for j in range(cov.shape[0]):
        for i in range(codes.shape[0]):
            if lanes[i] >= 0:
                for a in range(c.shape[0]):
                    for b in range(c.shape[1]):
                        c[a, b, j * n_lanes + lanes[i]] = cov[j, codes[i, 0], a, b]
    erc_solve_lanes(c, y, warm, out, work, lane)


@numba.njit(cache=True, nogil=True, inline="always")
def _running_moments(levels: FloatArray, p: int, n_eq: int, kept: IntArray, logs: FloatArray,
                     cross_eq: FloatArray,
                     cross_def: FloatArray) -> None:  # pragma: no cover - compiled
    """Path p's ln S_a at each kept day j, ``logs`` (n_assets, n_kept), and each sleeve's
    running sums of daily log-return products Q_ab,j = sum_{0 < t <= kept_j} r_a,t r_b,t,
    ``cross_eq`` (n_eq, n_eq, n_kept) and ``cross_def`` (n_def, n_def, n_kept)."""
    n_assets = levels.shape[0]
    n_def = n_assets - n_eq
    total_eq = np.zeros((n_eq, n_eq))
    total_def = np.zeros((n_def, n_def))
    previous = np.empty(n_assets)
    r = np.empty(n_assets)
    j = 0
    for t in range(kept[-1] + 1):
        for a in range(n_assets):
            current = math.log(levels[a, p, t])
            r[a] = current - previous[a]
            previous[a] = current
        if t > 0:
            for a in range(n_eq):
                for b in range(a, n_eq):
                    total_eq[a, b] += r[a] * r[b]
            for a in range(n_def):
                for b in range(a, n_def):
                    total_def[a, b] += r[n_eq + a] * r[n_eq + b]
        if t == kept[j]:
            for a in range(n_assets):
                logs[a, j] = previous[a]
            for a in range(n_eq):
                for b in range(a, n_eq):
                    cross_eq[a, b, j] = cross_eq[b, a, j] = total_eq[a, b]
            for a in range(n_def):
                for b in range(a, n_def):
                    cross_def[a, b, j] = cross_def[b, a, j] = total_def[a, b]
            j += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _covariance(logs: FloatArray, cross: FloatArray, lo: int, hi: int, e: int, s: int,
                n: int, out: FloatArray) -> None:  # pragma: no cover - compiled
    """The window (s, e]'s covariance of assets lo ... hi - 1 (cross's sleeve)."""
    scale = TRADING_DAYS_PER_YEAR / (n - 1.0)
    for a in range(hi - lo):
        sum_a = logs[lo + a, e] - logs[lo + a, s]
        for b in range(a, hi - lo):
            sum_b = logs[lo + b, e] - logs[lo + b, s]
            products = cross[a, b, e] - cross[a, b, s]
            cov = (products - sum_a * sum_b / n) * scale
            out[a, b] = cov
            out[b, a] = cov


@numba.njit(cache=True, nogil=True, parallel=True)
def _sleeve_mixes(
    levels: FloatArray, offset: int, n_eq: int, kept: IntArray, at_end: IntArray,
    at_start: IntArray, windows: IntArray, risky_codes: IntArray, defensive_codes: IntArray,
    risky_fixed: FloatArray, defensive_fixed: FloatArray,
    risky: FloatArray, risky_vol: FloatArray, defensive: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Path offset + j's mixes to row j of ``risky``, ``risky_vol``, ``defensive``."""
    n_assets = levels.shape[0]
    n_paths = min(risky_vol.shape[1], defensive.shape[1], levels.shape[1] - offset)
    n_def = n_assets - n_eq
    n_kept, n_months = kept.shape[0], at_end.shape[0]
    n_risky, n_defensive = risky_codes.shape[0], defensive_codes.shape[0]
    lanes_eq, lanes_def = _lanes(risky_codes), _lanes(defensive_codes)
    n_rp_eq, n_rp_def = int((lanes_eq >= 0).sum()), int((lanes_def >= 0).sum())
    wants_eq = np.zeros(windows.shape[0], dtype=np.bool_)
    wants_def = np.zeros(windows.shape[0], dtype=np.bool_)
    for i in range(n_risky):
        wants_eq[risky_codes[i, 0]] = True
    for i in range(n_defensive):
        wants_def[defensive_codes[i, 0]] = True
    n_windows = windows.shape[0]
    for group in numba.prange((n_paths + PATHS_PER_SOLVE - 1) // PATHS_PER_SOLVE):
        first = group * PATHS_PER_SOLVE
        size = min(PATHS_PER_SOLVE, n_paths - first)
        logs = np.empty((size, n_assets, n_kept))
        cross_eq = np.empty((size, n_eq, n_eq, n_kept))
        cross_def = np.empty((size, n_def, n_def, n_kept))
        for j in range(size):
            _running_moments(levels, offset + first + j, n_eq, kept, logs[j], cross_eq[j],
                             cross_def[j])
        cov_eq = np.empty((size, n_windows, n_eq, n_eq))
        cov_def = np.empty((size, n_windows, n_def, n_def))
        rp_eq, rp_def = size * n_rp_eq, size * n_rp_def
        c_eq, y_eq = np.empty((n_eq, n_eq, rp_eq)), np.empty((n_eq, rp_eq))
        c_def, y_def = np.empty((n_def, n_def, rp_def)), np.empty((n_def, rp_def))
        out_eq, out_def = np.empty((n_eq, rp_eq)), np.empty((n_def, rp_def))
        warm_eq = np.zeros(rp_eq, dtype=np.bool_)
        warm_def = np.zeros(rp_def, dtype=np.bool_)
        work_eq, lane_eq = erc_lanes_workspace(n_eq, rp_eq)
        work_def, lane_def = erc_lanes_workspace(n_def, rp_def)
        mix_eq, mix_def = np.empty(n_eq), np.empty(n_def)
        for k in range(n_months):
            e = at_end[k]
            for j in range(size):
                for w in range(n_windows):
                    if wants_eq[w]:
                        _covariance(logs[j], cross_eq[j], 0, n_eq, e, at_start[w, k],
                                    windows[w], cov_eq[j, w])
                    if wants_def[w]:
                        _covariance(logs[j], cross_def[j], n_eq, n_assets, e, at_start[w, k],
                                    windows[w], cov_def[j, w])
            _solve_lanes(risky_codes, lanes_eq, cov_eq, c_eq, y_eq, warm_eq, out_eq,
                         work_eq, lane_eq)
            _solve_lanes(defensive_codes, lanes_def, cov_def, c_def, y_def, warm_def,
                         out_def, work_def, lane_def)
            for j in range(size):
                p = first + j
                for i in range(n_risky):
                    w = risky_codes[i, 0]
                    if n_eq == 3:
                        q = _mix_3(risky_codes[i, 1], cov_eq[j, w], risky_fixed, out_eq,
                                   j * n_rp_eq + lanes_eq[i], warm_eq, mix_eq)
                    else:
                        _mix(risky_codes[i, 1], cov_eq[j], w, risky_fixed, out_eq,
                             j * n_rp_eq + lanes_eq[i], warm_eq, mix_eq)
                        q = quadratic_form(mix_eq, cov_eq[j, w])
                    risky_vol[i, p, k] = np.sqrt(0.0 if q < 0.0 else q)
                    for a in range(n_eq):
                        risky[i, p, k, a] = mix_eq[a]
                for i in range(n_defensive):
                    if n_def == 3:
                        _mix_3(defensive_codes[i, 1], cov_def[j, defensive_codes[i, 0]],
                               defensive_fixed, out_def, j * n_rp_def + lanes_def[i], warm_def,
                               mix_def)
                    else:
                        _mix(defensive_codes[i, 1], cov_def[j], defensive_codes[i, 0],
                             defensive_fixed, out_def, j * n_rp_def + lanes_def[i], warm_def,
                             mix_def)
                    for a in range(n_def):
                        defensive[i, p, k, a] = mix_def[a]
