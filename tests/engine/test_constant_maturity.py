"""engine.market.constant_maturity: a constant-maturity bond index from zero yields by
tenor, against hand-computed returns and the closed-form Vasicek bond prices."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from engine.market.constant_maturity import (
    constant_maturity_index,
    constant_maturity_log_returns,
    interpolated_yields,
)
from engine.market.rates import Vasicek
from engine.portfolio.bonds import bond_log_price

START = dt.date(2020, 1, 1)


def _weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days = (start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


@pytest.mark.parametrize(("coupon", "roll"), [(0.0, "daily"), (0.0, "monthly"),
                                              (0.04, "daily"), (0.04, "monthly")])
def test_a_flat_curve_grows_the_index_at_its_yield_per_calendar_year(coupon, roll) -> None:
    # flat y on every date: every bond returns y per year of ACT/365F time, weekends
    # included, whatever its maturity, coupon or roll
    dates = _weekdays(dt.date(2020, 1, 1), dt.date(2020, 12, 31))
    y = np.full((len(dates), 3), 0.03)
    index = constant_maturity_index(dates, np.array([1.0, 5.0, 10.0]), y, 5.0,
                                    coupon_rate=coupon, roll=roll)
    days = (dates[-1] - dates[0]).days
    np.testing.assert_allclose(np.log(index[-1] / index[0]), 0.03 * days / 365.0,
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(index[0], 100.0, rtol=0, atol=0)


def test_a_parallel_shift_costs_the_duration() -> None:
    # Friday -> Monday (3 days), the flat curve 3% -> 3.1%: ln P_1(T - 3/365) - ln P_0(T)
    # = 0.03 T - 0.031 (T - 3/365), by hand = 0.03 * 3/365 - (T - 3/365) * 0.001
    dates = [dt.date(2020, 1, 3), dt.date(2020, 1, 6)]
    yields = np.array([[0.03, 0.03], [0.031, 0.031]])
    for maturity in (2.0, 7.0):
        r = constant_maturity_log_returns(dates, np.array([1.0, 10.0]), yields, maturity)
        hand = 0.03 * 3 / 365 - (maturity - 3 / 365) * 0.001
        np.testing.assert_allclose(r, [hand], rtol=1e-12, atol=0)


def test_yields_are_linear_between_tenors_and_flat_beyond() -> None:
    tenors = np.array([2.0, 10.0])
    curve = np.array([[0.02, 0.04]] * 4)
    got = interpolated_yields(tenors, curve, np.array([0.5, 2.0, 5.0, 30.0]))
    np.testing.assert_allclose(got, [0.02, 0.02, 0.02 + 3 / 8 * 0.02, 0.04], rtol=0,
                               atol=1e-15)
    # a curve that does not move: the daily return is the roll-down of a 5y zero,
    # -(5 - d) y(5 - d) + 5 y(5) with y linear between 2y and 10y, by hand
    dates = [dt.date(2020, 3, 2), dt.date(2020, 3, 3)]
    r = constant_maturity_log_returns(dates, tenors, curve[:2], 5.0)
    d = 1 / 365
    y5, slope = 0.0275, 0.02 / 8
    np.testing.assert_allclose(r, [5 * y5 - (5 - d) * (y5 - slope * d)], rtol=1e-12, atol=0)


def test_monthly_roll_holds_the_bond_from_month_start_to_month_start() -> None:
    # a sloped curve fixed in time: over a hold the returns sum to the roll-down
    # ln P(T - h) - ln P(T), h = days from the month's first date to the next month's
    dates = _weekdays(dt.date(2020, 1, 2), dt.date(2020, 3, 31))
    tenors = np.array([1.0, 3.0, 10.0])
    curve = np.tile([0.01, 0.02, 0.035], (len(dates), 1))
    r = constant_maturity_log_returns(dates, tenors, curve, 3.0, roll="monthly")
    february = dates.index(dt.date(2020, 2, 3))
    march = dates.index(dt.date(2020, 3, 2))
    h = (dates[march] - dates[february]).days / 365

    def log_price(s: float) -> float:
        return -float(interpolated_yields(tenors, curve[:1], np.array([s]))[0]) * s

    np.testing.assert_allclose(r[february:march].sum(), log_price(3.0 - h) - log_price(3.0),
                               rtol=1e-12, atol=0)
    daily = constant_maturity_log_returns(dates, tenors, curve, 3.0)
    assert not np.allclose(daily[february:march].sum(), r[february:march].sum())


@pytest.mark.parametrize(("maturity", "coupon"), [(5.0, 0.0), (7.0, 0.0), (5.0, 0.03),
                                                  (2.5, 0.05)])
def test_vasicek_curves_give_the_closed_form_bond_returns(maturity, coupon) -> None:
    # each day's yields are the Vasicek zero curve at that day's short rate, at tenors
    # that hold every cash-flow time exactly (T - j and T - j - 1/365), so the index's
    # daily return is the closed-form ln P_c(T - dt, r_1) - ln P_c(T, r_0) of
    # engine.portfolio.bonds (the simulated buckets' prices), with dt = 1/365
    model = Vasicek(0.15, 0.03, 0.01, 0.25)
    dates = [START + dt.timedelta(days=i) for i in range(40)]
    rates = 0.03 + 0.004 * np.sin(np.arange(40) / 3.0)
    step = 1 / 365
    times = sorted({maturity - j - k * step for j in range(int(np.ceil(maturity)))
                    for k in (0, 1) if maturity - j - k * step > 0})
    tenors = np.array(times)
    yields = np.stack([[float(model.zero_yield(np.array(r), t)) for t in tenors]
                       for r in rates])
    got = constant_maturity_log_returns(dates, tenors, yields, maturity, coupon_rate=coupon)
    want = (bond_log_price(model, rates[1:], maturity - step, coupon)
            - bond_log_price(model, rates[:-1], maturity, coupon))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_bad_arguments_are_refused() -> None:
    dates = [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]
    with pytest.raises(ValueError, match="roll"):
        constant_maturity_log_returns(dates, np.array([1.0]), np.zeros((2, 1)), 1.0,
                                      roll="weekly")
    with pytest.raises(ValueError, match="increasing"):
        constant_maturity_log_returns(dates[::-1], np.array([1.0]), np.zeros((2, 1)), 1.0)
