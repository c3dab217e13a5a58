"""Government-bond buckets priced off the Vasicek short-rate paths.

Every bucket is a constant-maturity bond index: at each roll it buys a bond of maturity
T and holds it until the next roll, when it sells it (now of maturity T - h) and buys a
fresh T-year bond. All buckets reprice the same short-rate path with the same closed-form
Vasicek prices, so the 2-, 5- and 10-year legs sit on one curve and move consistently.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from engine.arrays import kernel_input
from engine.conventions import DT_DAY, TRADING_DAYS_PER_MONTH
from engine.market.rates import Vasicek
from engine.portfolio.spec import Asset
from engine.types import FloatArray, IntArray


def price_table(model: Vasicek, tau: float, coupon_rate: float) -> FloatArray:
    """(ln A, B) of every zero-coupon price a bond of maturity ``tau`` years is made of.

    Row 0 is the face's, P(tau, r) = exp(ln A - B r) (engine.market.rates.Vasicek); with
    a coupon c != 0, rows 1 ... ceil(tau) are the coupon dates tau - j, j = 0 ... ceil(tau) - 1.
    """
    taus = [tau, *(tau - j for j in range(math.ceil(tau)) if coupon_rate != 0.0)]
    return np.array([model.zero_coupon_coefficients(x) for x in taus])


@numba.njit(cache=True, nogil=True, inline="always")
def table_log_price(r: float, tables: FloatArray, s: int, side: int, n_rows: int,
                    coupon_rate: float) -> float:  # pragma: no cover - compiled
    """ln P_c(tau, r) of one rate from the first ``n_rows`` rows of the
    :func:`price_table` at ``tables[s, side]``, indexed in place: through a view of it
    made per day, a zero-coupon bucket's pass took 2-3 times as long."""
    log_zero = tables[s, side, 0, 0] - tables[s, side, 0, 1] * r
    if coupon_rate == 0.0:
        return log_zero
    price = math.exp(log_zero)
    for m in range(1, n_rows):
        price = price + coupon_rate * math.exp(tables[s, side, m, 0] - tables[s, side, m, 1] * r)
    return math.log(price)


def bond_log_price(model: Vasicek, r: FloatArray, tau: float, coupon_rate: float) -> FloatArray:
    """ln of the (dirty) price of a bond of maturity ``tau`` years, per unit face.

    Notes
    -----
    Annual coupons c are paid at tau, tau - 1, ..., down to the last time above 0, and the
    face at tau: P_c(tau, r) = c sum_j P(tau - j, r) + P(tau, r) with P the Vasicek
    zero-coupon price (:meth:`engine.market.rates.Vasicek.log_zero_coupon`). c = 0 is the
    zero-coupon bond, ln P(tau, r) exactly. Compiled (:func:`table_log_price`), as the
    simulated buckets price it.
    """
    rates = np.asarray(r, dtype=np.float64)
    table = price_table(model, tau, coupon_rate)
    return _log_prices(rates.ravel(), table[None, None], coupon_rate).reshape(rates.shape)


@numba.njit(cache=True, nogil=True)
def _log_prices(r: FloatArray, tables: FloatArray,
                coupon_rate: float) -> FloatArray:  # pragma: no cover - compiled
    out = np.empty(r.shape[0])
    for i in range(r.shape[0]):
        out[i] = table_log_price(r[i], tables, 0, 0, tables.shape[2], coupon_rate)
    return out


def bucket_log_returns(model: Vasicek, short_rate: FloatArray, asset: Asset) -> FloatArray:
    """Daily log returns of one constant-maturity bucket, shape (n_paths, n_days).

    Parameters
    ----------
    model : the Vasicek model whose pricing measure prices the bonds.
    short_rate : simulated short rate, shape (n_paths, n_days + 1), day 0 a roll date.
    asset : a government_bond asset (maturity T, coupon c, roll daily or monthly).

    Notes
    -----
    Daily roll: ln P_c(T - dt, r_{t+1}) - ln P_c(T, r_t) every day. Monthly roll: on day
    t = 21 k + s of month k the bond bought at 21 k has T - s dt years left, so the day's
    return is ln P_c(T - (s + 1) dt, r_{t+1}) - ln P_c(T - s dt, r_t); over the month
    the returns sum to ln P_c(T - 21 dt, r_{21(k+1)}) - ln P_c(T, r_{21 k}). One
    compiled pass over the rate paths.
    """
    rates = kernel_input(short_rate)
    out = np.empty((rates.shape[0], rates.shape[1] - 1))
    _bucket_days(rates, *_bucket_tables(model, asset), out, False)
    return out


def bucket_levels(model: Vasicek, short_rate: FloatArray, asset: Asset,
                  out: FloatArray) -> None:
    """Fill ``out`` (n_paths, n_days + 1), C-contiguous, with the bucket's index levels:
    1 on day 0, then exp of the running sum of :func:`bucket_log_returns` (the sum in
    day order, as ``np.exp(np.cumsum(returns, axis=1))``, bit for bit), in the same
    compiled pass as the returns."""
    rates = kernel_input(short_rate)
    if out.shape != rates.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous array of shape {rates.shape}")
    _bucket_days(rates, *_bucket_tables(model, asset), out, True)


def _bucket_tables(model: Vasicek, asset: Asset) -> tuple[FloatArray, IntArray, float]:
    """The price tables of the bonds held on each slot of the roll, as ``_bucket_days``
    reads them, their row counts and the coupon."""
    maturity, coupon = float(asset.maturity_years), asset.coupon_rate  # type: ignore[arg-type]
    if asset.roll == "daily":
        held = [(maturity - DT_DAY, maturity)]
    else:
        held = [(maturity - (s + 1) * DT_DAY, maturity - s * DT_DAY)
                for s in range(TRADING_DAYS_PER_MONTH)]
    tables = [[price_table(model, tau, coupon) for tau in taus] for taus in held]
    rows = np.array([[len(t) for t in pair] for pair in tables], dtype=np.int64)
    padded = np.zeros((len(held), 2, int(rows.max()), 2))
    for s, pair in enumerate(tables):
        for side, table in enumerate(pair):
            padded[s, side, : len(table)] = table
    return padded, rows, coupon


@numba.njit(cache=True, nogil=True, parallel=True)
def _bucket_days(short_rate: FloatArray, tables: FloatArray, rows: IntArray,
                 coupon_rate: float, out: FloatArray,
                 as_levels: bool) -> None:  # pragma: no cover - compiled
    """Day t's return ln P_c(tau_1, r_{t+1}) - ln P_c(tau_0, r_t) with the tables of slot
    t mod n_slots: (tau_1, tau_0) at tables[s, 0], tables[s, 1]; written to out[p, t], or
    with ``as_levels`` out[p, 0] = 1 and out[p, t + 1] = exp(x_t), x_t = x_{t-1} + the
    return (x_{-1} = 0)."""
    n_paths, n_days = short_rate.shape[0], short_rate.shape[1] - 1
    n_slots = tables.shape[0]
    for p in numba.prange(n_paths):
        x = 0.0
        if as_levels:
            out[p, 0] = 1.0
        for t in range(n_days):
            s = t % n_slots
            ret = table_log_price(short_rate[p, t + 1], tables, s, 0, rows[s, 0],
                                  coupon_rate) - table_log_price(
                short_rate[p, t], tables, s, 1, rows[s, 1], coupon_rate)
            if as_levels:
                x = x + ret
                out[p, t + 1] = math.exp(x)
            else:
                out[p, t] = ret
