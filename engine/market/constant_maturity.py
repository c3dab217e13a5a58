"""A constant-maturity government-bond index built from daily zero yields by maturity.

The market-data counterpart of the simulated bond buckets (engine.portfolio.bonds): the
index holds a bond of maturity T bought on the curve of its roll date, revalues it on
the next date's curve, and rolls into a fresh T-year bond daily or at each new calendar
month. Time is ACT/365F: the year fraction between two dates is their calendar days /
365, so a weekend or a holiday accrues like any other day and a flat curve at y grows
the index by exactly e^{y days / 365}.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np

from engine.types import FloatArray

DAYS_PER_YEAR = 365.0
"""ACT/365F: calendar days per year of the yields' time axis."""


def interpolated_yields(tenors: FloatArray, yields: FloatArray, maturity: FloatArray) -> FloatArray:
    """Zero yield of each row at its own maturity, shape (n_rows,).

    Parameters
    ----------
    tenors : the curve's tenors in years, strictly increasing, shape (k,).
    yields : zero yields, continuously compounded decimals, shape (n_rows, k).
    maturity : the maturity in years wanted on each row, shape (n_rows,).

    Notes
    -----
    Linear in the zero yield between the two tenors around the maturity, flat beyond the
    shortest and the longest tenor: y(s) = y_i + (s - T_i) (y_{i+1} - y_i) / (T_{i+1} - T_i)
    for T_i <= s <= T_{i+1}.
    """
    t = np.asarray(tenors, dtype=np.float64)
    y = np.asarray(yields, dtype=np.float64)
    if t.size == 1:
        return y[:, 0].copy()
    s = np.clip(np.asarray(maturity, dtype=np.float64), t[0], t[-1])
    hi = np.clip(np.searchsorted(t, s, side="left"), 1, t.size - 1)
    lo = hi - 1
    rows = np.arange(y.shape[0])
    weight = (s - t[lo]) / (t[hi] - t[lo])
    return y[rows, lo] + weight * (y[rows, hi] - y[rows, lo])


def _log_price(tenors: FloatArray, yields: FloatArray, times: FloatArray, due: FloatArray,
               coupon_rate: float) -> FloatArray:
    """ln sum_j cf_j e^{-y(u_j) u_j} over the cash flows marked ``due``, shape (n_rows,):
    ``times`` (n_rows, m) in years from each row's date, the face and last coupon in the
    last column (cf = 1 + c), coupons c before it. A due flow whose time is <= 0 was paid
    during the step and is carried at e^{-y(u) u} too (reinvested at the shortest
    tenor's yield until the step's end)."""
    last = times[:, -1]
    if coupon_rate == 0.0:
        return -interpolated_yields(tenors, yields, last) * last
    value = np.zeros(times.shape[0])
    for j in range(times.shape[1]):
        u = times[:, j]
        flow = 1.0 + coupon_rate if j == times.shape[1] - 1 else coupon_rate
        value += np.where(due[:, j], flow * np.exp(-interpolated_yields(tenors, yields, u) * u),
                          0.0)
    return np.log(value)


def _coupon_times(remaining: FloatArray, coupon_rate: float) -> FloatArray:
    """Times to the bond's annual coupons and face (last column) for each remaining
    maturity s: s - m + 1, ..., s - 1, s with m = ceil(max s); just (s,) zero-coupon.
    Columns at times <= 0 on a row are coupons already paid before its date."""
    if coupon_rate == 0.0:
        return remaining[:, None]
    count = max(1, math.ceil(float(np.max(remaining))))
    offsets = np.arange(count - 1, -1, -1, dtype=np.float64)
    return remaining[:, None] - offsets[None, :]


def constant_maturity_log_returns(
    dates: Sequence[dt.date], tenors: FloatArray, yields: FloatArray, maturity: float, *,
    coupon_rate: float = 0.0, roll: str = "daily",
) -> FloatArray:
    """Log returns of the constant-maturity index between consecutive dates, (n - 1,).

    Parameters
    ----------
    dates : the curve's dates, strictly increasing, n of them.
    tenors : tenors in years, strictly increasing, shape (k,).
    yields : zero yields (continuously compounded, decimal), shape (n, k).
    maturity : the index's constant maturity T in years.
    coupon_rate : annual coupon c per unit face (0: zero-coupon).
    roll : "daily" or "monthly" (hold from the first date of a calendar month to the
        first date of the next one).

    Notes
    -----
    With Delta_t = (d_{t+1} - d_t) / 365 and m_t the held bond's maturity on d_t (T on a
    roll date, T - (d_t - d_roll) / 365 otherwise), the return from d_t to d_{t+1} is
    ln P_{t+1}(m_t - Delta_t) - ln P_t(m_t), P_t the price on d_t's curve
    (:func:`interpolated_yields`): the zero P_t(s) = e^{-y_t(s) s}; a coupon bond's price
    sums c P_t(s - j) over its coupons still due and P_t(s) for the face. A flat curve y
    gives y Delta_t exactly; a parallel shift dy gives y Delta_t - (T - Delta_t) dy for a
    zero-coupon bond, about -T dy (its duration). A coupon bond's maturity should leave
    no coupon due inside a hold (a fractional part of 0 or above a month, as
    engine.portfolio.spec asks), else that coupon is dropped at the next roll.
    """
    if roll not in ("daily", "monthly"):
        raise ValueError(f"roll = {roll!r} is not one of daily, monthly")
    days = np.array([d.toordinal() for d in dates], dtype=np.float64)
    y = np.asarray(yields, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] != days.size or np.any(np.diff(days) <= 0):
        raise ValueError("yields must be (n_dates, n_tenors) on strictly increasing dates")
    step = np.diff(days) / DAYS_PER_YEAR
    if roll == "daily":
        held = np.full(step.size, float(maturity))
    else:
        months = np.array([d.year * 12 + d.month for d in dates])
        is_roll = np.r_[True, months[1:] != months[:-1]]
        roll_day = np.maximum.accumulate(np.where(is_roll, days, -np.inf))
        held = float(maturity) - (days - roll_day)[:-1] / DAYS_PER_YEAR
    times_now = _coupon_times(held, coupon_rate)
    due = times_now > 0.0
    now = _log_price(tenors, y[:-1], times_now, due, coupon_rate)
    later = _log_price(tenors, y[1:], times_now - step[:, None], due, coupon_rate)
    return later - now


def constant_maturity_index(
    dates: Sequence[dt.date], tenors: FloatArray, yields: FloatArray, maturity: float, *,
    coupon_rate: float = 0.0, roll: str = "daily", start: float = 100.0,
) -> FloatArray:
    """Index levels on ``dates``, ``start`` on the first: start x exp(cumulative
    :func:`constant_maturity_log_returns`), shape (n,)."""
    returns = constant_maturity_log_returns(dates, tenors, yields, maturity,
                                            coupon_rate=coupon_rate, roll=roll)
    return start * np.exp(np.r_[0.0, np.cumsum(returns)])
