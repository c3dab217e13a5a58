"""engine.market.yield_curve: par bootstrap against QuantLib and hand computation; the
Vasicek fit against simulated histories of known parameters."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.market.rates import Vasicek
from engine.market.yield_curve import (
    bootstrap_par_curve,
    coupon_schedule,
    curve_from_frame,
    curve_from_zero_rates,
    fit_vasicek,
)

TENORS = np.array([0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0])
PAR = np.array([0.030, 0.032, 0.035, 0.037, 0.040, 0.041, 0.042])


def test_one_year_annual_par_rate_by_hand() -> None:
    # a 1-year annual par bond: 1 = (1 + c) P(1) -> z = ln(1 + c)
    curve = bootstrap_par_curve([1.0, 2.0], [0.04, 0.05], frequency=1)
    assert curve.zero_rates[0] == pytest.approx(math.log(1.04), abs=1e-14)
    # 2 years: 1 = 0.05 P(1) + 1.05 P(2) -> P(2) = (1 - 0.05 / 1.04) / 1.05
    p2 = (1.0 - 0.05 / 1.04) / 1.05
    assert curve.discount(2.0) == pytest.approx(p2, abs=1e-14)
    # log-linear between nodes: P(1.5) = sqrt(P(1) P(2))
    assert curve.discount(1.5) == pytest.approx(math.sqrt(p2 / 1.04), abs=1e-14)


def test_bootstrapped_curve_reprices_every_par_bond() -> None:
    curve = bootstrap_par_curve(TENORS, PAR, frequency=2)
    for tenor, coupon in zip(TENORS, PAR, strict=True):
        times, accrual = coupon_schedule(tenor, 2)
        price = coupon * (accrual * curve.discount(times)).sum() + curve.discount(tenor)
        assert price == pytest.approx(1.0, abs=1e-13)


def test_matches_quantlib_piecewise_log_linear_discount() -> None:
    ql = pytest.importorskip("QuantLib", reason="QuantLib (the dev extra) is the reference")
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    # SimpleDayCounter on a null calendar: a 6-month period is exactly 0.5 years, so the
    # schedules are those of coupon_schedule(T, 2)
    day_count = ql.SimpleDayCounter()
    helpers = []
    for tenor, coupon in zip(TENORS, PAR, strict=True):
        months = round(float(tenor) * 12)
        schedule = ql.Schedule(today, today + ql.Period(months, ql.Months),
                               ql.Period(6, ql.Months), ql.NullCalendar(), ql.Unadjusted,
                               ql.Unadjusted,
                               ql.DateGeneration.Backward, False)
        helpers.append(ql.FixedRateBondHelper(
            ql.QuoteHandle(ql.SimpleQuote(100.0)), 0, 100.0, schedule, [float(coupon)],
            day_count, ql.Unadjusted))
    reference = ql.PiecewiseLogLinearDiscount(today, helpers, day_count)
    reference.enableExtrapolation()
    ours = bootstrap_par_curve(TENORS, PAR, frequency=2)
    times = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 4.0, 6.0, 8.5, 10.0, 12.0])
    expected = [reference.discount(float(t)) for t in times]
    np.testing.assert_allclose(ours.discount(times), expected, rtol=0, atol=1e-12)


SHORT_FIRST = ([0.25, 1.0, 1.5], [0.02, 0.03, 0.035])
"""Annual coupons with a short first period: a 3-month bill (one payment of 1 + c / 4),
a 1-year bond (one coupon) and an 18-month bond (a 6-month stub, then a full year)."""


def test_short_first_periods_by_hand() -> None:
    """The accrual of each coupon is the time it covers: c T for a tenor under a year,
    c / 2 for the 18-month bond's stub, c for its full last year."""
    curve = bootstrap_par_curve(*SHORT_FIRST, frequency=1)
    p_quarter = 1.0 / (1.0 + 0.02 * 0.25)
    p_one = 1.0 / 1.03
    # P(0.5) log-linear between the 0.25 and 1.0 nodes; 1 = c 0.5 P(0.5) + (1 + c) P(1.5)
    p_half = math.exp(math.log(p_quarter) + (0.5 - 0.25) / 0.75 * math.log(p_one / p_quarter))
    p_18m = (1.0 - 0.035 * 0.5 * p_half) / 1.035
    np.testing.assert_allclose(curve.discount(np.array([0.25, 1.0, 0.5, 1.5])),
                               [p_quarter, p_one, p_half, p_18m], rtol=0, atol=1e-14)


def test_short_first_periods_match_quantlib() -> None:
    ql = pytest.importorskip("QuantLib", reason="QuantLib (the dev extra) is the reference")
    today = ql.Date(15, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.SimpleDayCounter()
    helpers = []
    for tenor, coupon in zip(*SHORT_FIRST, strict=True):
        schedule = ql.Schedule(today, today + ql.Period(round(tenor * 12), ql.Months),
                               ql.Period(12, ql.Months), ql.NullCalendar(), ql.Unadjusted,
                               ql.Unadjusted, ql.DateGeneration.Backward, False)
        helpers.append(ql.FixedRateBondHelper(
            ql.QuoteHandle(ql.SimpleQuote(100.0)), 0, 100.0, schedule, [coupon], day_count,
            ql.Unadjusted))
    reference = ql.PiecewiseLogLinearDiscount(today, helpers, day_count)
    ours = bootstrap_par_curve(*SHORT_FIRST, frequency=1)
    times = np.array([0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    np.testing.assert_allclose(ours.discount(times),
                               [reference.discount(float(t)) for t in times], rtol=0,
                               atol=1e-12)


def test_zero_rates_given_directly_and_short_rate() -> None:
    curve = curve_from_zero_rates([0.25, 1.0, 5.0], [0.02, 0.03, 0.04])
    np.testing.assert_allclose(curve.zero_rate([0.25, 1.0, 5.0]), [0.02, 0.03, 0.04],
                               atol=1e-15)
    # forward on (0.25, 1]: (0.03 - 0.02 x 0.25) / 0.75 = 0.0333...
    assert curve.forward_rate(0.25, 1.0) == pytest.approx(0.025 / 0.75, abs=1e-14)
    assert curve.instantaneous_forward(0.5) == pytest.approx(0.025 / 0.75, abs=1e-14)
    # the first segment's forward is the first zero rate: the short rate
    assert curve.short_rate == pytest.approx(0.02, abs=1e-15)
    # beyond 5y the (1, 5] forward continues: (0.2 - 0.03) / 4
    assert curve.instantaneous_forward(7.0) == pytest.approx(0.17 / 4, abs=1e-14)
    frame = curve.to_frame()
    assert frame.columns == ["tenor_years", "zero_yield", "discount_factor"]
    assert frame["discount_factor"][2] == pytest.approx(math.exp(-0.2), abs=1e-15)


def test_curve_from_frame_reads_zero_or_par() -> None:
    zero = curve_from_frame(pl.DataFrame({"tenor_years": [1.0, 2.0], "zero_yield": [0.03, 0.035]}))
    assert zero.zero_rates.tolist() == [0.03, 0.035]
    par = curve_from_frame(pl.DataFrame({"tenor_years": [1.0], "par_rate": [0.04]}))
    assert par.zero_rates[0] == pytest.approx(math.log(1.04), abs=1e-14)
    with pytest.raises(ValueError, match="zero_yield or par_rate"):
        curve_from_frame(pl.DataFrame({"tenor_years": [1.0], "rate": [0.04]}))


def test_fit_vasicek_recovers_known_parameters() -> None:
    # one daily path of 100 years, simulated with the exact transition; each estimate
    # within 4 standard errors: kappa and theta from the fit's own asymptotic SEs,
    # sigma with SE sigma / sqrt(2 n) (the residual sd of n Gaussian draws)
    true = Vasicek(kappa=3.0, theta=0.04, sigma=0.012)
    rng = np.random.default_rng(3)
    n = 252 * 100
    rates = np.empty(n + 1)
    rates[0] = 0.01
    z = rng.standard_normal(n)
    for i in range(n):
        rates[i + 1] = true.step(rates[i], z[i], 1 / 252)
    fit = fit_vasicek(rates)
    assert abs(fit.kappa - 3.0) < 4 * fit.kappa_se
    assert fit.kappa_se == pytest.approx(math.sqrt(2 * 3.0 / 100), rel=0.1)  # asymptotic
    assert abs(fit.theta - 0.04) < 4 * fit.theta_se
    assert abs(fit.sigma - 0.012) < 4 * 0.012 / math.sqrt(2 * n)
    assert fit.n_obs == n + 1


def test_fit_vasicek_refuses_an_explosive_history() -> None:
    # r_{i+1} = 1.001 r_i: AR(1) slope 1.001 > 1
    with pytest.raises(ValueError, match="no mean reversion"):
        fit_vasicek(0.01 * 1.001 ** np.arange(200))


def test_the_frames_frequency_column_is_honoured() -> None:
    """Semi-annual par rates 4% (0.5y), 5% (1y), 5.5% (1.5y), by hand: P(0.5) = 1 / 1.02,
    P(1) = (1 - 0.025 P(0.5)) / 1.025, P(1.5) = (1 - 0.0275 (P(0.5) + P(1))) / 1.0275;
    an annual reading would give a 1y zero rate of 4.879% instead of 4.950%."""
    frame = pl.DataFrame({"tenor_years": [0.5, 1.0, 1.5], "par_rate": [0.04, 0.05, 0.055],
                          "frequency": [2, 2, 2]})
    p_half = 1.0 / 1.02
    p_one = (1.0 - 0.025 * p_half) / 1.025
    p_one_half = (1.0 - 0.0275 * (p_half + p_one)) / 1.0275
    np.testing.assert_allclose(curve_from_frame(frame).discount([0.5, 1.0, 1.5]),
                               [p_half, p_one, p_one_half], rtol=1e-13)
    mixed = frame.with_columns(pl.Series("frequency", [1, 2, 2]))  # a bill, then bonds
    np.testing.assert_allclose(curve_from_frame(mixed).discount([0.5, 1.0]),
                               [p_half, p_one], rtol=1e-13)
    with pytest.raises(ValueError, match="frequency"):
        curve_from_frame(frame.with_columns(pl.Series("frequency", [2.0, 2.7, 2.0])))
