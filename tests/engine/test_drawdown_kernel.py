"""The compiled drawdown (engine.strategy.drawdown.max_drawdowns) settles most months from
their largest and smallest NAV; it must give the day-by-day scan's bits on every kind of
month."""

from __future__ import annotations

import numpy as np
import pytest

from engine.strategy.drawdown import max_drawdowns
from engine.strategy.metrics import max_drawdown

N_MONTHS, DAYS = 36, 21


def _case(seed: int, weight_low: float, weight_high: float, equity_vol: float):
    rng = np.random.default_rng(seed)
    days = np.arange(N_MONTHS + 1, dtype=np.int64) * DAYS + 5 * DAYS
    n = N_MONTHS * DAYS
    log_alt = np.cumsum(rng.normal(1e-4, 0.002, n))
    log_eq = np.cumsum(rng.normal(3e-4, equity_vol, n))
    growth_alt, growth_gap = np.empty(n), np.empty(n)
    for k in range(N_MONTHS):
        lo, hi = k * DAYS, (k + 1) * DAYS
        base_alt = 0.0 if k == 0 else log_alt[lo - 1]
        base_eq = 0.0 if k == 0 else log_eq[lo - 1]
        growth_alt[lo:hi] = np.exp(log_alt[lo:hi] - base_alt)
        growth_gap[lo:hi] = np.exp(log_eq[lo:hi] - base_eq) - growth_alt[lo:hi]
    weights = rng.uniform(weight_low, weight_high, N_MONTHS)
    costs = rng.uniform(0.0, 0.002, N_MONTHS)
    month_end = DAYS - 1 + np.arange(N_MONTHS) * DAYS
    gross = growth_alt[month_end] - 1.0 + weights * growth_gap[month_end]
    monthly = (1.0 - costs) * (1.0 + gross) - 1.0
    return growth_alt, growth_gap, days, weights, costs, monthly


def _scan(growth_alt, growth_gap, weights, costs, monthly) -> float:
    """The reference: the daily NAV in numpy, then metrics.max_drawdown from a peak of 1."""
    start = np.ones(N_MONTHS)
    for k in range(1, N_MONTHS):
        start[k] = start[k - 1] * (1.0 + monthly[k - 1])
    a = np.repeat(start * (1.0 - costs), DAYS)
    nav = a * (growth_alt + np.repeat(weights, DAYS) * growth_gap)
    return float(max_drawdown(nav, initial=1.0))


CASES = [
    (0, 0.0, 1.0, 0.01),    # ordinary rules: skipped, trough-only and scanned months
    (1, 0.5, 3.0, 0.03),    # leverage and wild equity: new peaks and deep drawdowns
    (2, 2.5, 3.0, 0.08),    # NAV below zero (A_k <= 0): the bounds do not hold, scanned
    (3, -1.0, 0.5, 0.02),   # negative drifted weights: scanned
    (4, 0.0, 0.0, 0.01),    # all in the defensive leg
]


@pytest.mark.parametrize(("seed", "low", "high", "vol"), CASES)
def test_month_skipping_drawdown_equals_the_daily_scan(seed, low, high, vol):
    growth_alt, growth_gap, days, weights, costs, monthly = _case(seed, low, high, vol)
    got = np.empty(1)
    max_drawdowns(growth_alt, growth_gap, days, weights[None], costs[None], monthly[None],
                   got)
    expected = _scan(growth_alt, growth_gap, weights, costs, monthly)
    assert got.view(np.int64)[0] == np.float64(expected).view(np.int64)


def test_configs_side_by_side_each_get_their_own_drawdown():
    # All five cases' configs on one path at once: packing the scanned configs of a month
    # together must not mix their peaks.
    cases = [_case(seed, low, high, vol) for seed, low, high, vol in CASES]
    growth_alt, growth_gap, days = cases[1][:3]
    weights = np.stack([case[3] for case in cases])
    costs = np.stack([case[4] for case in cases])
    monthly = np.stack([case[5] for case in cases])
    got = np.empty(len(cases))
    max_drawdowns(growth_alt, growth_gap, days, weights, costs, monthly, got)
    expected = [_scan(growth_alt, growth_gap, w, c, m) for w, c, m in zip(weights, costs, monthly,
                                                                          strict=True)]
    np.testing.assert_array_equal(got.view(np.int64), np.array(expected).view(np.int64))


def _month_kinds(growth_alt, growth_gap, weights, costs, monthly) -> set[str]:
    """How max_drawdowns settles each month of one config (its module notes), replayed in
    numpy with the scan's state carried along."""
    kinds = set()
    peak, worst, nav_start = 1.0, 0.0, 1.0
    for k in range(N_MONTHS):
        a = nav_start * (1.0 - costs[k])
        nav_start *= 1.0 + monthly[k]
        month = slice(k * DAYS, (k + 1) * DAYS)
        nav = a * (growth_alt[month] + weights[k] * growth_gap[month])
        high, low = float(nav.max()), float(nav.min())
        if a <= 0:
            kinds.add("scanned: A_k <= 0")
        elif high <= peak:
            kinds.add("no new peak")
        elif low > 0 and 1.0 - low / high <= worst:
            kinds.add("new peak, no deeper drawdown")
        else:
            kinds.add("scanned: new peak, maybe deeper")
        running = np.maximum(np.maximum.accumulate(nav), peak)
        worst = max(worst, float(np.max(1.0 - nav / running)))
        peak = float(running[-1])
    return kinds


def test_the_cases_reach_every_kind_of_month():
    kinds = set()
    for seed, low, high, vol in CASES:
        growth_alt, growth_gap, _, weights, costs, monthly = _case(seed, low, high, vol)
        kinds |= _month_kinds(growth_alt, growth_gap, weights, costs, monthly)
    assert kinds == {"no new peak", "new peak, no deeper drawdown",
                     "scanned: new peak, maybe deeper", "scanned: A_k <= 0"}


def test_a_negative_nav_before_a_new_peak_is_scanned():
    # A levered config whose NAV dips below zero in month 0 (worst 1.07) and again in
    # month 1 (to -0.1 against a peak of 1: worst 1.1) before a new peak of 2.25. The
    # bound 1 - L / U = 1.044 is below worst but does not hold for a negative NAV (its
    # drawdown grows as the running peak shrinks): the month must be scanned.
    equity = np.array([0.5, -0.07, 0.3, 0.9, -0.1 / 0.9, 2.5, 2.4, 2.45, 1.0, 1.01, 1.02, 1.03])
    growth_alt = np.ones(12)
    growth_gap = equity - growth_alt
    days = np.array([0, 4, 8, 12], dtype=np.int64)
    weights = np.ones((1, 3))
    costs = np.zeros((1, 3))
    month_end = np.array([0.9, 2.45 / 1.0, 1.03])
    monthly = (month_end - 1.0)[None]
    got = np.empty(1)
    max_drawdowns(growth_alt, growth_gap, days, weights, costs, monthly, got)
    start = np.concatenate([[1.0], np.cumprod(1.0 + monthly[0])[:-1]])
    nav = np.repeat(start, 4) * (growth_alt + growth_gap)
    expected = max_drawdown(nav, initial=1.0)
    assert expected > 1.09
    assert got.view(np.int64)[0] == np.float64(expected).view(np.int64)
