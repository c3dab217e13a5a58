"""Government-bond buckets priced off the Vasicek short-rate paths.

Every bucket is a constant-maturity bond index: at each roll it buys a bond of maturity
T and holds it until the next roll, when it sells it (now of maturity T - h) and buys a
fresh T-year bond. All buckets reprice the same short-rate path with the same closed-form
Vasicek prices, so the 2-, 5- and 10-year legs sit on one curve and move consistently.
"""

from __future__ import annotations

import math

import numpy as np

from engine.conventions import DT_DAY, TRADING_DAYS_PER_MONTH
from engine.market.rates import Vasicek
from engine.portfolio.spec import Asset
from engine.types import FloatArray


def bond_log_price(model: Vasicek, r: FloatArray, tau: float, coupon_rate: float) -> FloatArray:
    """ln of the (dirty) price of a bond of maturity ``tau`` years, per unit face.

    Notes
    -----
    Annual coupons c are paid at tau, tau - 1, ..., down to the last time above 0, and the
    face at tau: P_c(tau, r) = c sum_j P(tau - j, r) + P(tau, r) with P the Vasicek
    zero-coupon price (:meth:`engine.market.rates.Vasicek.log_zero_coupon`). c = 0 is the
    zero-coupon bond, ln P(tau, r) exactly.
    """
    log_zero = model.log_zero_coupon(r, tau)
    if coupon_rate == 0.0:
        return log_zero
    price = np.exp(log_zero)
    for j in range(math.ceil(tau)):
        price = price + coupon_rate * np.exp(model.log_zero_coupon(r, tau - j))
    return np.log(price)


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
    the returns sum to ln P_c(T - 21 dt, r_{21(k+1)}) - ln P_c(T, r_{21 k}).
    """
    maturity, coupon = float(asset.maturity_years), asset.coupon_rate  # type: ignore[arg-type]
    if asset.roll == "daily":
        return bond_log_price(model, short_rate[:, 1:], maturity - DT_DAY, coupon) - (
            bond_log_price(model, short_rate[:, :-1], maturity, coupon)
        )
    out = np.empty((short_rate.shape[0], short_rate.shape[1] - 1))
    for s in range(TRADING_DAYS_PER_MONTH):
        days = slice(s, out.shape[1], TRADING_DAYS_PER_MONTH)
        nexts = slice(s + 1, short_rate.shape[1], TRADING_DAYS_PER_MONTH)
        r_now, r_next = short_rate[:, days], short_rate[:, nexts]
        out[:, days] = bond_log_price(model, r_next, maturity - (s + 1) * DT_DAY, coupon) - (
            bond_log_price(model, r_now[:, : r_next.shape[1]], maturity - s * DT_DAY, coupon)
        )
    return out
