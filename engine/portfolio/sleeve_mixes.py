"""Every base mix a sweep asks for, at every (path, rebalance), in one compiled pass.

A sweep's configs share few (window, base mix) pairs per sleeve. Per path, one pass
keeps the running sums of each sleeve's daily log-return products at the days the
windows start and end, and for every window and rebalance builds each sleeve's trailing
covariance once and every mix of that window from it: fixed weights, inverse volatility,
risk parity (each solve warm-started from the same mix's previous rebalance), and the
risky sleeve's vol sqrt(b' Sigma b). The numbers are those of
:class:`engine.portfolio.mix.CumulativeMoments`, :func:`engine.portfolio.mix.base_mix_weights`
and :func:`engine.portfolio.mix.sleeve_vol` on the same covariances, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.portfolio.mix import erc_solve, fixed_weights, inverse_vol, quadratic_form
from engine.portfolio.spec import PortfolioSpec
from engine.types import FloatArray, IntArray

MIX_CODES = {"fixed": 0, "inverse_vol": 1, "risk_parity": 2}
"""Each base mix's code in the compiled pass."""

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
    """
    starts = np.asarray(starts, dtype=np.int64)
    n_eq = len(spec.equities)
    keys = (tuple(risky_keys), tuple(defensive_keys))
    windows = np.array(sorted({w for sleeve in keys for w, _ in sleeve}), dtype=np.int64)
    if windows.size == 0:
        raise ValueError("sleeve_mixes needs at least one (window_days, mix) key")
    if windows.min() < 2 or starts.min() < windows.max():
        raise ValueError(f"a trailing window of {windows.max()} days needs every rebalance"
                         f" day >= {windows.max()} and windows >= 2 days")
    kept = np.unique(np.concatenate([starts, *(starts - w for w in windows)]))
    at_start = np.stack([np.searchsorted(kept, starts - w) for w in windows])
    codes = [np.array([[np.searchsorted(windows, w), MIX_CODES[m]] for w, m in sleeve],
                      dtype=np.int64).reshape(-1, 2) for sleeve in keys]
    n_paths, n_months = levels.shape[1], starts.size
    risky = np.empty((len(keys[0]), n_paths, n_months, n_eq))
    risky_vol = np.empty((len(keys[0]), n_paths, n_months))
    defensive = np.empty((len(keys[1]), n_paths, n_months, len(spec.defensive)))
    _sleeve_mixes(np.ascontiguousarray(levels, dtype=np.float64), n_eq, kept,
                  np.searchsorted(kept, starts), at_start, windows, codes[0], codes[1],
                  fixed_weights(n_eq, spec.risky_weights),
                  fixed_weights(len(spec.defensive), spec.defensive_weights),
                  risky, risky_vol, defensive)
    return SleeveMixes(keys[0], risky, risky_vol, keys[1], defensive)


@numba.njit(cache=True, nogil=True)
def _mix(code: int, cov: FloatArray, fixed: FloatArray, y: FloatArray, work: FloatArray,
         warm: bool, out: FloatArray) -> bool:  # pragma: no cover - compiled
    """Write one base mix to ``out``; returns the risk-parity warm flag for the next."""
    if out.shape[0] == 1:
        out[0] = 1.0
        return warm
    if code == 0:
        out[:] = fixed
        return warm
    if code == 2:
        if erc_solve(cov, y, work, warm, out):
            return True
        warm = False
    inverse_vol(cov, out)
    return warm


@numba.njit(cache=True, nogil=True)
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
    levels: FloatArray, n_eq: int, kept: IntArray, at_end: IntArray, at_start: IntArray,
    windows: IntArray, risky_codes: IntArray, defensive_codes: IntArray,
    risky_fixed: FloatArray, defensive_fixed: FloatArray,
    risky: FloatArray, risky_vol: FloatArray, defensive: FloatArray,
) -> None:  # pragma: no cover - compiled
    n_assets, n_paths, _ = levels.shape
    n_def = n_assets - n_eq
    n_kept, n_months = kept.shape[0], at_end.shape[0]
    n_risky, n_defensive = risky_codes.shape[0], defensive_codes.shape[0]
    for p in numba.prange(n_paths):
        logs = np.empty((n_assets, n_kept))
        cross_eq = np.empty((n_eq, n_eq, n_kept))
        cross_def = np.empty((n_def, n_def, n_kept))
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
                logs[:, j] = previous
                for a in range(n_eq):
                    for b in range(a, n_eq):
                        cross_eq[a, b, j] = cross_eq[b, a, j] = total_eq[a, b]
                for a in range(n_def):
                    for b in range(a, n_def):
                        cross_def[a, b, j] = cross_def[b, a, j] = total_def[a, b]
                j += 1
        cov_eq = np.empty((n_eq, n_eq))
        cov_def = np.empty((n_def, n_def))
        y_eq, y_def = np.empty((n_risky, n_eq)), np.empty((n_defensive, n_def))
        work_eq, work_def = np.empty((n_eq + 3, n_eq)), np.empty((n_def + 3, n_def))
        warm_eq = np.zeros(n_risky, dtype=np.bool_)
        warm_def = np.zeros(n_defensive, dtype=np.bool_)
        for w in range(windows.shape[0]):
            n = windows[w]
            wants_eq = wants_def = False
            for i in range(n_risky):
                wants_eq = wants_eq or risky_codes[i, 0] == w
            for i in range(n_defensive):
                wants_def = wants_def or defensive_codes[i, 0] == w
            for k in range(n_months):
                e, s = at_end[k], at_start[w, k]
                if wants_eq:
                    _covariance(logs, cross_eq, 0, n_eq, e, s, n, cov_eq)
                if wants_def:
                    _covariance(logs, cross_def, n_eq, n_assets, e, s, n, cov_def)
                for i in range(n_risky):
                    if risky_codes[i, 0] == w:
                        out = risky[i, p, k]
                        warm_eq[i] = _mix(risky_codes[i, 1], cov_eq, risky_fixed, y_eq[i],
                                          work_eq, warm_eq[i], out)
                        q = quadratic_form(out, cov_eq)
                        risky_vol[i, p, k] = np.sqrt(0.0 if q < 0.0 else q)
                for i in range(n_defensive):
                    if defensive_codes[i, 0] == w:
                        warm_def[i] = _mix(defensive_codes[i, 1], cov_def, defensive_fixed,
                                           y_def[i], work_def, warm_def[i], defensive[i, p, k])
