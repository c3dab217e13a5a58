"""Trailing realized volatility at rebalance dates, shared by all configs of a window."""

from __future__ import annotations

import numpy as np

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.types import FloatArray, IntArray


def trailing_realized_vol(levels: FloatArray, ends: IntArray, window_days: int) -> FloatArray:
    """Annualised realized vol of the ``window_days`` daily log returns up to each end.

    Parameters
    ----------
    levels : price levels, shape (n_paths, n_days + 1).
    ends : day indices e at which to measure, shape (n_ends,); each needs e >= window_days.
    window_days : n, the number of daily log returns r_{e-n+1}, ..., r_e in the window.

    Returns
    -------
    Array of shape (n_paths, n_ends): sqrt(252 * s^2) with s^2 the sample variance
    (ddof = 1) of the window's log returns r_j = ln(S_j / S_{j-1}).

    Notes
    -----
    With L = ln S and Q_j = sum_{i<=j} r_i^2: sum r = L_e - L_{e-n}, sum r^2 =
    Q_e - Q_{e-n}, s^2 = (sum r^2 - (sum r)^2 / n) / (n - 1). One cumulative sum serves
    every window and every end.
    """
    ends = np.asarray(ends, dtype=np.int64)
    n = int(window_days)
    if n < 2:
        raise ValueError(f"window_days = {n} must be at least 2")
    if ends.min() < n:
        raise ValueError(
            f"a trailing window of {n} days needs every end >= {n}; earliest end is {ends.min()}"
        )
    log_levels = np.log(levels)
    return realized_vol_from_logs(log_levels, cumulative_squared_returns(log_levels), ends, n)


def cumulative_squared_returns(log_levels: FloatArray) -> FloatArray:
    """Q_j = sum_{i<=j} (L_i - L_{i-1})^2 with Q_0 = 0, same shape as ``log_levels``."""
    out = np.zeros_like(log_levels)
    np.cumsum(np.diff(log_levels, axis=-1) ** 2, axis=-1, out=out[..., 1:])
    return out


def realized_vol_from_logs(
    log_levels: FloatArray, cum_sq: FloatArray, ends: IntArray, window_days: int
) -> FloatArray:
    """:func:`trailing_realized_vol` from precomputed ln S and Q (see its Notes)."""
    n = window_days
    starts = ends - n
    sum_r = log_levels[:, ends] - log_levels[:, starts]
    sum_r2 = cum_sq[:, ends] - cum_sq[:, starts]
    var = np.maximum(sum_r2 - sum_r * sum_r / n, 0.0) / (n - 1)
    return np.sqrt(var * TRADING_DAYS_PER_YEAR)
