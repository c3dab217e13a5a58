"""Bond buckets against closed-form Vasicek prices (QuantLib's Vasicek model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql

from engine.conventions import DT_DAY
from engine.market.rates import Vasicek
from engine.portfolio.bonds import bond_log_price, bucket_levels, bucket_log_returns
from engine.portfolio.spec import Asset

MODEL = Vasicek(kappa=0.15, theta=0.03, sigma=0.01, lam=0.25)
QL_MODEL = ql.Vasicek(0.03, MODEL.kappa, MODEL.theta, MODEL.sigma, MODEL.lam)


def _ql_log_price(r: float, tau: float, coupon: float) -> float:
    price = QL_MODEL.discountBond(0.0, tau, r)
    j = 0
    while tau - j > 0:
        price += coupon * QL_MODEL.discountBond(0.0, tau - j, r)
        j += 1
    return math.log(price)


@pytest.mark.parametrize("coupon", [0.0, 0.04])
@pytest.mark.parametrize("tau", [2.0, 5.0, 10.0, 7.5])
def test_price_matches_quantlib(tau, coupon):
    rates = np.array([-0.01, 0.0, 0.025, 0.08])
    expected = [_ql_log_price(r, tau, coupon) for r in rates]
    np.testing.assert_allclose(bond_log_price(MODEL, rates, tau, coupon), expected,
                               rtol=0, atol=1e-12)


def _rate_paths(n_paths=5, n_days=63, seed=3):
    rng = np.random.default_rng(seed)
    r = np.empty((n_paths, n_days + 1))
    r[:, 0] = 0.03
    for t in range(n_days):
        r[:, t + 1] = MODEL.step(r[:, t], rng.standard_normal(n_paths), DT_DAY)
    return r


@pytest.mark.parametrize("maturity", [2.0, 5.0, 10.0])
def test_daily_roll_zero_is_the_two_asset_index(maturity):
    r = _rate_paths()
    bucket = Asset("b", "government_bond", maturity_years=maturity)
    got = bucket_log_returns(MODEL, r, bucket)
    expected = MODEL.index_log_return(r[:, :-1], r[:, 1:], maturity, DT_DAY)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("coupon", [0.0, 0.03])
@pytest.mark.parametrize("maturity", [2.0, 5.0, 10.0])
def test_monthly_roll_month_return_is_the_held_bond_repriced(maturity, coupon):
    # Over each month the bucket holds one bond bought at the month's start: the month's
    # log return is ln P_c(T - 21 dt, r_end) - ln P_c(T, r_start), QuantLib's prices.
    r = _rate_paths()
    bucket = Asset("b", "government_bond", maturity_years=maturity, coupon_rate=coupon,
                   roll="monthly")
    month = bucket_log_returns(MODEL, r, bucket).reshape(r.shape[0], 3, 21).sum(axis=-1)
    for p in range(r.shape[0]):
        for k in range(3):
            start, end = r[p, 21 * k], r[p, 21 * (k + 1)]
            expected = (_ql_log_price(end, maturity - 21 * DT_DAY, coupon)
                        - _ql_log_price(start, maturity, coupon))
            np.testing.assert_allclose(month[p, k], expected, rtol=0, atol=1e-12)


def test_daily_roll_coupon_matches_quantlib():
    r = _rate_paths(n_paths=2, n_days=5)
    bucket = Asset("b", "government_bond", maturity_years=5.0, coupon_rate=0.05)
    got = bucket_log_returns(MODEL, r, bucket)
    for p in range(2):
        for t in range(5):
            expected = (_ql_log_price(r[p, t + 1], 5.0 - DT_DAY, 0.05)
                        - _ql_log_price(r[p, t], 5.0, 0.05))
            np.testing.assert_allclose(got[p, t], expected, rtol=0, atol=1e-12)


def test_buckets_sit_on_one_curve():
    # Every bucket reprices the same rate: a parallel fall of the rate lifts the longer
    # bucket more (duration B(T) grows with T) and all zero yields are the model curve's.
    r = np.array([[0.03, 0.02]])
    returns = [bucket_log_returns(MODEL, r, Asset("b", "government_bond", maturity_years=m))
               for m in (2.0, 5.0, 10.0)]
    assert returns[0][0, 0] < returns[1][0, 0] < returns[2][0, 0]
    for m, ret in zip((2.0, 5.0, 10.0), returns, strict=True):
        carry_free = ret[0, 0] - (MODEL.log_zero_coupon(0.03, m - DT_DAY)
                                  - MODEL.log_zero_coupon(0.03, m))
        np.testing.assert_allclose(carry_free, -MODEL.b(m - DT_DAY) * (0.02 - 0.03),
                                   rtol=1e-12)


@pytest.mark.parametrize(("roll", "coupon"), [("daily", 0.0), ("monthly", 0.0), ("monthly", 0.03)])
def test_bucket_levels_are_exp_of_the_cumulated_returns(roll, coupon):
    r = _rate_paths()
    bucket = Asset("b", "government_bond", maturity_years=5.0, coupon_rate=coupon, roll=roll)
    expected = np.ones_like(r)
    expected[:, 1:] = np.exp(np.cumsum(bucket_log_returns(MODEL, r, bucket), axis=1))
    got = np.full_like(r, np.nan)
    bucket_levels(MODEL, r, bucket, got)
    assert np.array_equal(got, expected)


def test_bucket_levels_needs_a_c_contiguous_array_of_the_rates_shape():
    r = _rate_paths()
    bucket = Asset("b", "government_bond", maturity_years=5.0)
    for out in (np.empty((r.shape[0], r.shape[1] - 1)), np.empty(r.shape[::-1]).T):
        with pytest.raises(ValueError, match="C-contiguous"):
            bucket_levels(MODEL, r, bucket, out)
