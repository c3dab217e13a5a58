"""engine.strategy.backtest.backtest_history against a plain month-by-month reference.

The reference (``_reference_backtest``) follows backtest_history's Notes and
engine.strategy.portfolio.rebalance's Notes step by step with numpy on one path: calendar
month-ends, a trailing window of vol_window_months x 21 daily log returns ending on
the month-end (numpy std, ddof=1, x sqrt(252)), the weight held for the next month,
drift, costs on the traded weight, cash accruing rf / 252 a day.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import polars as pl
import pytest

from engine.strategy.backtest import _month_end_indices, backtest_history, todays_weight
from engine.strategy.config import StrategyConfig
from engine.strategy.metrics import METRICS

RTOL = 1e-12


def _business_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days = (start + dt.timedelta(days=k) for k in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


def _history(seed: int = 7, *, end: dt.date = dt.date(2023, 8, 31)):
    """Weekday dates from 2023-01-02, a lognormal equity, a bond index and a varying rate."""
    dates = _business_days(dt.date(2023, 1, 2), end)
    rng = np.random.default_rng(seed)
    n = len(dates)
    equity = 100.0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0.0003, 0.011, n - 1)]))
    bond = 50.0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0.0001, 0.003, n - 1)]))
    rate = 0.03 + 0.01 * np.sin(np.arange(n) / 40.0)
    return dates, equity, bond, rate


def _calendar_month_ends(dates: list[dt.date]) -> list[int]:
    """Index of the last listed date of each (year, month)."""
    last: dict[tuple[int, int], int] = {}
    for i, d in enumerate(dates):
        last[(d.year, d.month)] = i
    return sorted(last.values())


def _weight_rule(rv: float, config: StrategyConfig) -> float:
    """The weight functions (docs/engine.md) with k = risk_aversion / target_vol (before clipping);
    risk_aversion is None for the inverse rules, which do not use it."""
    tv = config.target_vol
    if config.weight_fn == "inverse_vol":
        return tv / rv
    if config.weight_fn == "inverse_vol_squared":
        return (tv / rv) ** 2
    k = config.risk_aversion / tv
    if config.weight_fn == "linear":
        return max(0.0, 1.0 - k * (rv - tv))
    return 1.0 / (1.0 + math.exp(k * (rv - tv)))


def _reference_backtest(dates, equity, rate, config, bond=None):
    n_days = config.vol_window_months * 21
    cash = np.ones(len(dates))
    for t in range(1, len(dates)):
        cash[t] = cash[t - 1] * (1.0 + rate[t - 1] / 252.0)
    alt = cash if bond is None else bond
    ends = [e for e in _calendar_month_ends(dates) if e >= n_days]
    weights, returns, costs, cash_returns, nav_days = [], [], [], [], []
    nav, drifted = 1.0, None
    for k, (e, e_next) in enumerate(itertools.pairwise(ends)):
        log_returns = np.diff(np.log(equity[e - n_days : e + 1]))  # r_{e-n+1} .. r_e
        assert len(log_returns) == n_days
        rv = np.std(log_returns, ddof=1) * math.sqrt(252.0)
        w = _weight_rule(rv, config)
        w = min(max(w, config.min_allocation), config.max_allocation)
        cost = 0.0 if k == 0 else 2.0 * config.tc_bps / 1e4 * abs(w - drifted)
        r_e = equity[e_next] / equity[e] - 1.0
        r_a = alt[e_next] / alt[e] - 1.0
        gross = w * r_e + (1.0 - w) * r_a
        after_cost = nav * (1.0 - cost)
        for t in range(e + 1, e_next + 1):  # daily NAV, holdings drifting with prices
            nav_days.append(after_cost * (w * equity[t] / equity[e] + (1.0 - w) * alt[t] / alt[e]))
        nav = after_cost * (1.0 + gross)
        drifted = w * (1.0 + r_e) / (1.0 + gross)
        weights.append(w)
        returns.append((1.0 - cost) * (1.0 + gross) - 1.0)
        costs.append(cost)
        cash_returns.append(cash[e_next] / cash[e] - 1.0)
    return {
        "ends": ends,
        "weights": np.array(weights),
        "returns": np.array(returns),
        "costs": np.array(costs),
        "cash_returns": np.array(cash_returns),
        "nav": np.array(nav_days),
    }


def test_month_ends_are_the_last_trading_day_of_each_calendar_month():
    # Jan 2024 ends on Wed 31st; March 2024 ends on a weekend, so its last trading day
    # is Fri 29th; Feb ends Thu 29th (leap year).
    dates = pl.Series(
        [
            dt.date(2024, 1, 29),
            dt.date(2024, 1, 30),
            dt.date(2024, 1, 31),  # 2
            dt.date(2024, 2, 1),
            dt.date(2024, 2, 2),
            dt.date(2024, 2, 29),  # 5
            dt.date(2024, 3, 1),
            dt.date(2024, 3, 28),
            dt.date(2024, 3, 29),  # 8
            dt.date(2024, 4, 1),
            dt.date(2024, 4, 2),
            dt.date(2024, 4, 30),  # 11
            dt.date(2025, 4, 1),  # 12: same month number, next year
        ]
    )
    np.testing.assert_array_equal(_month_end_indices(dates), [2, 5, 8, 11, 12])


def test_last_date_closes_a_final_partial_month():
    # History ending mid-month: its last date ends the final (partial) month.
    dates = pl.Series([dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 2, 14)])
    np.testing.assert_array_equal(_month_end_indices(dates), [0, 2])


@pytest.mark.parametrize(
    "config",
    [
        StrategyConfig(0.10, "inverse_vol", 1, tc_bps=10.0),
        StrategyConfig(0.12, "inverse_vol_squared", 2, tc_bps=25.0, max_allocation=0.8),
        StrategyConfig(0.15, "linear", 1, risk_aversion=2.0, tc_bps=5.0),
        StrategyConfig(0.15, "sigmoid", 3, risk_aversion=3.0, tc_bps=0.0),
    ],
    ids=lambda c: c.weight_fn,
)
def test_monthly_returns_match_the_plain_reference(config):
    dates, equity, _, rate = _history()
    ref = _reference_backtest(dates, equity, rate, config)
    result = backtest_history(dates, equity, rate, config)
    frame = result.monthly_returns
    assert frame.columns == ["date", "portfolio_return", "equity_weight"]
    assert frame["date"].to_list() == [dates[e] for e in ref["ends"][1:]]
    np.testing.assert_allclose(frame["equity_weight"].to_numpy(), ref["weights"], rtol=RTOL)
    np.testing.assert_allclose(frame["portfolio_return"].to_numpy(), ref["returns"], rtol=RTOL)
    assert result.config is config


def test_window_is_21_days_up_to_and_including_the_month_end():
    # vol_window_months = 1: the first rebalance is the first month-end e with e >= 21.
    # January 2023 has 22 weekdays (Jan 2 = index 0), so Jan 31 is e = 21 and its window
    # is the 21 log returns r_1 .. r_21, r_j = ln(S_j / S_{j-1}), the last one ending on
    # Jan 31 itself.
    dates, equity, _, rate = _history()
    config = StrategyConfig(0.10, "inverse_vol", 1, tc_bps=0.0, max_allocation=3.0)
    jan_31 = dates.index(dt.date(2023, 1, 31))
    assert jan_31 == 21
    result = backtest_history(dates, equity, rate, config)
    window = np.log(equity[1:22] / equity[0:21])  # r_1 .. r_21, ending on Jan 31
    expected_w = 0.10 / (np.std(window, ddof=1) * np.sqrt(252.0))
    first = result.monthly_returns.row(0, named=True)
    np.testing.assert_allclose(first["equity_weight"], expected_w, rtol=RTOL)
    # That weight earns February: from the Jan 31 close to the Feb 28 close.
    feb_28 = dates.index(dt.date(2023, 2, 28))
    assert first["date"] == dt.date(2023, 2, 28)
    cash_feb = np.prod(1.0 + rate[jan_31:feb_28] / 252.0) - 1.0
    expected_r = (
        expected_w * (equity[feb_28] / equity[jan_31] - 1.0) + (1.0 - expected_w) * cash_feb
    )
    np.testing.assert_allclose(first["portfolio_return"], expected_r, rtol=RTOL)


def test_the_month_end_return_itself_is_in_the_window():
    # Move only the month-end close: the weight set that day must change.
    dates, equity, _, rate = _history()
    config = StrategyConfig(0.10, "inverse_vol", 1, tc_bps=0.0)
    jan_31 = dates.index(dt.date(2023, 1, 31))
    bumped = equity.copy()
    bumped[jan_31:] *= 1.05  # a 5% jump on Jan 31 only
    w0 = backtest_history(dates, equity, rate, config).monthly_returns["equity_weight"][0]
    w1 = backtest_history(dates, bumped, rate, config).monthly_returns["equity_weight"][0]
    assert w1 < w0


def test_weight_is_clipped_to_the_allocation_range():
    dates, equity, _, rate = _history()
    config = StrategyConfig(0.50, "inverse_vol", 1, min_allocation=0.2, max_allocation=0.6)
    weights = backtest_history(dates, equity, rate, config).monthly_returns["equity_weight"]
    assert weights.to_list() == [0.6] * len(weights)  # tv/rv ~ 0.5/0.17 > 0.6


def test_cash_accrues_the_risk_free_rate_when_the_weight_is_zero():
    dates, equity, _, _ = _history()
    rf = np.full(len(dates), 0.04)
    config = StrategyConfig(0.10, "inverse_vol", 1, min_allocation=0.0, max_allocation=0.0)
    result = backtest_history(dates, equity, rf, config)
    ends = [e for e in _calendar_month_ends(dates) if e >= 21]
    days_held = np.diff(ends)
    expected = (1.0 + 0.04 / 252.0) ** days_held - 1.0  # cash_t = cash_{t-1}(1 + rf/252)
    frame = result.monthly_returns
    np.testing.assert_allclose(frame["portfolio_return"].to_numpy(), expected, rtol=RTOL)
    assert frame["equity_weight"].to_list() == [0.0] * len(days_held)
    m = result.metrics
    # ann_return = (prod(1 + R))^(12 / n) - 1 = (1 + rf/252)^(12 D / n) - 1, D days held.
    expected_ann = (1.0 + 0.04 / 252.0) ** (12.0 * days_held.sum() / len(days_held)) - 1.0
    np.testing.assert_allclose(m["ann_return"], expected_ann, rtol=RTOL)
    assert m["turnover"] == 0.0
    assert m["cost_drag"] == 0.0
    assert m["avg_equity_weight"] == 0.0
    assert m["max_drawdown"] == 0.0  # cash never falls


def test_bond_close_replaces_cash_as_the_non_equity_asset():
    dates, equity, bond, rate = _history()
    config = StrategyConfig(0.10, "inverse_vol", 1, min_allocation=0.0, max_allocation=0.0)
    result = backtest_history(dates, equity, rate, config, bond_close=bond)
    ends = [e for e in _calendar_month_ends(dates) if e >= 21]
    expected = bond[ends[1:]] / bond[ends[:-1]] - 1.0
    np.testing.assert_allclose(
        result.monthly_returns["portfolio_return"].to_numpy(), expected, rtol=RTOL
    )


def test_metrics_with_a_bond_index_match_the_reference():
    # Sharpe stays on excess returns over cash (the risk-free), not over the bond.
    dates, equity, bond, rate = _history()
    config = StrategyConfig(0.12, "sigmoid", 2, risk_aversion=2.0, tc_bps=15.0)
    ref = _reference_backtest(dates, equity, rate, config, bond=bond)
    result = backtest_history(dates, equity, rate, config, bond_close=bond)
    np.testing.assert_allclose(
        result.monthly_returns["portfolio_return"].to_numpy(), ref["returns"], rtol=RTOL
    )
    returns, n = ref["returns"], len(ref["returns"])
    excess = returns - ref["cash_returns"]
    years = n / 12.0
    m = result.metrics
    assert list(m) == list(METRICS)
    np.testing.assert_allclose(
        m["ann_return"], np.prod(1.0 + returns) ** (12.0 / n) - 1.0, rtol=RTOL
    )
    np.testing.assert_allclose(m["ann_vol"], np.std(returns, ddof=1) * math.sqrt(12.0), rtol=RTOL)
    np.testing.assert_allclose(
        m["sharpe"], np.mean(excess) / np.std(excess, ddof=1) * math.sqrt(12.0), rtol=RTOL
    )
    np.testing.assert_allclose(m["cost_drag"], ref["costs"].sum() / years, rtol=RTOL)
    traded = ref["costs"] / (2.0 * config.tc_bps / 1e4)
    np.testing.assert_allclose(m["turnover"], traded.sum() / years, rtol=RTOL)
    np.testing.assert_allclose(m["avg_equity_weight"], ref["weights"].mean(), rtol=RTOL)
    nav = ref["nav"]
    peak = np.maximum.accumulate(np.r_[1.0, nav])[1:]
    np.testing.assert_allclose(m["max_drawdown"], np.max(1.0 - nav / peak), rtol=RTOL)
    k = math.ceil(0.05 * n)
    worst = np.sort(returns)[:k]
    np.testing.assert_allclose(m["var95"], -worst[-1], rtol=RTOL)
    np.testing.assert_allclose(m["cvar95"], -worst.mean(), rtol=RTOL)


def test_metrics_have_exactly_the_engine_metric_keys():
    dates, equity, _, rate = _history()
    result = backtest_history(dates, equity, rate, StrategyConfig(0.1, "linear", 1))
    assert tuple(result.metrics) == METRICS
    assert all(isinstance(v, float) for v in result.metrics.values())


def test_inputs_may_be_iso_strings_and_polars_series():
    dates, equity, bond, rate = _history()
    config = StrategyConfig(0.1, "inverse_vol", 1)
    expected = backtest_history(dates, equity, rate, config, bond_close=bond)
    got = backtest_history(
        [d.isoformat() for d in dates],
        pl.Series(equity),
        pl.Series(rate),
        config,
        bond_close=list(bond),
    )
    assert got.monthly_returns.equals(expected.monthly_returns)
    assert got.metrics == expected.metrics


def test_first_rebalance_waits_for_a_full_window():
    dates, equity, _, rate = _history()
    config = StrategyConfig(0.1, "inverse_vol", 3)  # 63 days
    frame = backtest_history(dates, equity, rate, config).monthly_returns
    ends = _calendar_month_ends(dates)
    first = next(e for e in ends if e >= 63)
    after_first = [dates[e] for e in ends if e > first]
    assert frame["date"].to_list() == after_first


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d, c, r: (d[::-1], c, r), "strictly increasing"),
        (lambda d, c, r: ([d[0], *d[:-1]], c, r), "strictly increasing"),
        (lambda d, c, r: ([*d[:5], None, *d[6:]], c, r), "dates contain missing values"),
        (lambda d, c, r: (d, np.where(np.arange(len(c)) == 9, np.nan, c), r), "close contains NaN"),
        (
            lambda d, c, r: (d, np.where(np.arange(len(c)) == 9, -1.0, c), r),
            "close must be positive",
        ),
        (lambda d, c, r: (d, c[:-1], r), r"close has shape \(\d+,\); expected \(\d+,\)"),
        (lambda d, c, r: (d, c, r[:-3]), r"risk_free has shape"),
        (
            lambda d, c, r: (d, c, np.where(np.arange(len(r)) == 3, np.inf, r)),
            "risk_free contains NaN or infinite",
        ),
    ],
)
def test_invalid_inputs_raise_clear_errors(mutate, message):
    dates, equity, _, rate = _history()
    d, c, r = mutate(list(dates), equity, rate)
    with pytest.raises(ValueError, match=message):
        backtest_history(d, c, r, StrategyConfig(0.1, "inverse_vol", 1))


def test_invalid_bond_close_is_named():
    dates, equity, bond, rate = _history()
    config = StrategyConfig(0.1, "inverse_vol", 1)
    with pytest.raises(ValueError, match="bond_close contains NaN"):
        backtest_history(dates, equity, rate, config, bond_close=np.r_[np.nan, bond[1:]])
    with pytest.raises(ValueError, match="bond_close has shape"):
        backtest_history(dates, equity, rate, config, bond_close=bond[1:])


def test_too_short_history_says_what_it_needs():
    # Jan 2 - Apr 28 2023: month-ends at indices 21, 41, 64, 84. A 63-day window leaves
    # Mar 31 (64) and Apr 28 (84): one month of evaluation, fewer than the two needed.
    dates, equity, _, rate = _history(end=dt.date(2023, 4, 28))
    config = StrategyConfig(0.1, "inverse_vol", 3)
    with pytest.raises(ValueError, match=r"history too short: vol_window_months = 3 needs 63"):
        backtest_history(dates, equity, rate, config)
    # A 1-month window on Jan 2 - Mar 31 rebalances on Jan 31, Feb 28 and Mar 31: two
    # months, the minimum; cut at Feb 28 it has one.
    short = _business_days(dt.date(2023, 1, 2), dt.date(2023, 3, 31))
    n = len(short)
    result = backtest_history(short, equity[:n], rate[:n], StrategyConfig(0.1, "linear", 1))
    assert result.monthly_returns.height == 2
    with pytest.raises(ValueError, match="history too short"):
        m = short.index(dt.date(2023, 2, 28)) + 1
        backtest_history(short[:m], equity[:m], rate[:m], StrategyConfig(0.1, "linear", 1))


def test_todays_weight_uses_the_trailing_window_ending_on_the_last_close():
    _, equity, _, _ = _history()
    config = StrategyConfig(0.12, "inverse_vol_squared", 2, max_allocation=1.5)
    window = np.diff(np.log(equity[-43:]))  # the last 42 = 2 x 21 log returns
    rv = np.std(window, ddof=1) * math.sqrt(252.0)
    expected = min(max(_weight_rule(rv, config), 0.0), 1.5)
    np.testing.assert_allclose(todays_weight(equity, config), expected, rtol=RTOL)
    np.testing.assert_allclose(todays_weight(list(equity), config), expected, rtol=RTOL)


def test_todays_weight_needs_a_full_window():
    _, equity, _, _ = _history()
    config = StrategyConfig(0.12, "linear", 2)
    todays_weight(equity[:43], config)  # 43 closes = 42 returns: enough
    with pytest.raises(ValueError, match="todays_weight needs more than 42 closes; got 42"):
        todays_weight(equity[:42], config)
    with pytest.raises(ValueError, match="close must be positive"):
        todays_weight(np.r_[equity[:50], 0.0], config)


def test_percent_risk_free_is_refused_with_the_date():
    # 3.0 meant as 3%: as a decimal it is 300% a year and the cash account explodes
    dates, equity, _, rate = _history()
    percent = np.where(np.arange(len(rate)) >= 10, rate * 100, rate)
    with pytest.raises(ValueError,
                       match=rf"risk_free = 3\.\d+ on {dates[10]} \(row 10\) is above 0\.25"
                             r" in absolute value.*not percent"):
        backtest_history(dates, equity, percent, StrategyConfig(0.1, "inverse_vol", 1))


def test_absurd_price_scales_are_refused_not_turned_into_nan_metrics():
    dates, equity, _, rate = _history()
    config = StrategyConfig(0.1, "inverse_vol", 1)
    # subnormal levels lose the return's precision
    with pytest.raises(ValueError, match=r"close: .* on 2023-01-02 \(row 0\) is below the"
                                         " smallest normal float"):
        backtest_history(dates, equity * 1e-320, rate, config)
    # finite levels whose daily ratio overflows (1e-198 -> 1e152)
    jump = equity.copy()
    jump[:40] *= 1e-200
    jump[40:] *= 1e150
    with pytest.raises(ValueError, match=rf"close: the price scale gives no finite daily return"
                                         rf" on {dates[40]} \(row 40\)"):
        backtest_history(dates, jump, rate, config)
    with pytest.raises(ValueError, match=rf"close must be positive: -1\.0 on {dates[9]}"):
        backtest_history(dates, np.where(np.arange(len(equity)) == 9, -1.0, equity), rate,
                         config)
    # a large but representable scale is fine and gives the same metrics
    scaled = backtest_history(dates, equity * 1e200, rate, config).metrics
    plain = backtest_history(dates, equity, rate, config).metrics
    for name, value in plain.items():
        assert scaled[name] == pytest.approx(value, rel=1e-10, nan_ok=True), name
