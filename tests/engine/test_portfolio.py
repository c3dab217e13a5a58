"""The vectorised portfolio simulation against hand arithmetic and a slow plain reference."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from engine.strategy.config import StrategyConfig
from engine.strategy.metrics import METRICS
from engine.strategy.portfolio import Market, run_strategies

# --------------------------------------------------------------------------------------
# A two-month example computed by hand
# --------------------------------------------------------------------------------------


def _hand_market() -> tuple[Market, list[float], list[float], list[float]]:
    """One path of 63 days; rebalances on days 21 and 42, the evaluation ends on day 63.

    Equity daily log returns: days 1-21 alternate +0.012 / -0.008 (starting up), days
    22-42 alternate +0.025 / -0.020, days 43-63 are +0.001. The bond grows 2 bp a day,
    cash 1 bp a day.
    """
    log_returns = [0.0]
    log_returns += [0.012 if j % 2 else -0.008 for j in range(1, 22)]
    log_returns += [0.025 if j % 2 == 0 else -0.020 for j in range(22, 43)]
    log_returns += [0.001] * 21
    equity, level = [], 1.0
    for x in log_returns:
        level *= math.exp(x)
        equity.append(level)
    bond = [1.0002**t for t in range(64)]
    cash = [1.0001**t for t in range(64)]
    market = Market(
        equity=np.array([equity]),
        alternative=np.array([bond]),
        cash=np.array([cash]),
        rebalance_days=np.array([21, 42, 63]),
    )
    return market, equity, bond, cash


def test_two_month_rebalance_by_hand():
    market, equity, bond, _cash = _hand_market()
    config = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=1,
                            tc_bps=10.0)
    run = run_strategies(market, [config])

    # Realized vol at each rebalance: sample std (ddof 1) of the 21 daily log returns
    # ending that day, x sqrt(252).
    def realized_vol(end: int) -> float:
        logs = [math.log(equity[j] / equity[j - 1]) for j in range(end - 20, end + 1)]
        mean = sum(logs) / 21
        return math.sqrt(sum((x - mean) ** 2 for x in logs) / 20 * 252)

    rv0, rv1 = realized_vol(21), realized_vol(42)
    # Day 21: 11 returns of +0.012 and 10 of -0.008 (the window is days 1..21).
    assert rv0 == pytest.approx(
        math.sqrt((11 * (0.012 - 0.052 / 21) ** 2 + 10 * (-0.008 - 0.052 / 21) ** 2) / 20 * 252)
    )
    # Target weights, inverse_vol: tv / rv, inside [0, 1] here (about 0.62 and 0.28).
    w0, w1 = 0.10 / rv0, 0.10 / rv1
    assert 0 < w1 < w0 < 1

    # Month 0 (days 21 -> 42): inception, no trade, no cost.
    r_eq0 = equity[42] / equity[21] - 1  # = e^{11 x 0.025 - 10 x 0.020} - 1 = e^{0.075} - 1
    r_bond0 = bond[42] / bond[21] - 1
    gross0 = w0 * r_eq0 + (1 - w0) * r_bond0
    net0 = gross0

    # Drift to day 42: the equity sleeve grew by 1 + r_eq0, the portfolio by 1 + gross0.
    drifted = w0 * (1 + r_eq0) / (1 + gross0)
    trade = abs(w1 - drifted)
    cost1 = 10.0 / 1e4 * 2 * trade  # tc x (|dw equity| + |dw bond|)

    # Month 1 (days 42 -> 63): cost taken from NAV at the rebalance.
    r_eq1 = equity[63] / equity[42] - 1
    r_bond1 = bond[63] / bond[42] - 1
    gross1 = w1 * r_eq1 + (1 - w1) * r_bond1
    net1 = (1 - cost1) * (1 + gross1) - 1

    years = 2 / 12
    np.testing.assert_allclose(run.weights, [[[w0, w1]]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(run.costs, [[[0.0, cost1]]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(run.monthly_returns, [[[net0, net1]]], rtol=1e-12, atol=0)
    m = run.metrics
    np.testing.assert_allclose(m["turnover"], [[trade / years]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(m["cost_drag"], [[cost1 / years]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(m["avg_equity_weight"], [[(w0 + w1) / 2]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        m["ann_return"], [[((1 + net0) * (1 + net1)) ** 6 - 1]], rtol=1e-12, atol=0
    )
    # Two months: k = ceil(0.05 x 2) = 1, VaR = CVaR = the worse month's loss.
    np.testing.assert_allclose(m["var95"], [[-min(net0, net1)]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(m["cvar95"], [[-min(net0, net1)]], rtol=1e-12, atol=0)

    # Daily NAV: holdings fixed between rebalances; the rebalance day shows the NAV
    # before that day's trade (the cost is booked in the month it opens).
    nav, peak, worst = 1.0, 1.0, 0.0
    for start, end, w, cost in ((21, 42, w0, 0.0), (42, 63, w1, cost1)):
        invested = nav * (1 - cost)
        for t in range(start + 1, end + 1):
            nav_t = invested * (w * equity[t] / equity[start] + (1 - w) * bond[t] / bond[start])
            peak = max(peak, nav_t)
            worst = max(worst, 1 - nav_t / peak)
        nav = nav_t
    assert worst > 0.01  # the -2% equity days of month 0 make real drawdowns
    np.testing.assert_allclose(nav, (1 + net0) * (1 + net1), rtol=1e-12)
    np.testing.assert_allclose(m["max_drawdown"], [[worst]], rtol=1e-12, atol=0)

    # Tracking error: realized vol of each month's daily portfolio returns at the
    # rebalanced weight, minus the target, RMS over months. In month 1 both assets grow
    # at constant daily rates, so its realized vol is 0 (up to one-pass rounding).
    daily0 = [w0 * (equity[t] / equity[t - 1] - 1) + (1 - w0) * (bond[t] / bond[t - 1] - 1)
              for t in range(22, 43)]
    vol0 = statistics.stdev(daily0) * math.sqrt(252)
    expected_te = math.sqrt(((vol0 - 0.10) ** 2 + (0.0 - 0.10) ** 2) / 2)
    # rtol: the one-pass variance of month 1's constant returns leaves a residual of
    # order sqrt(1e-16 x (2e-4)^2 x 252), about 3e-11 annualised.
    np.testing.assert_allclose(m["tracking_error"], [[expected_te]], rtol=1e-9, atol=0)

    # Sharpe on monthly excess returns over cash (1 bp a day, 21 days a month).
    cash_month = 1.0001**21 - 1
    ex = [net0 - cash_month, net1 - cash_month]
    np.testing.assert_allclose(
        m["sharpe"], [[statistics.mean(ex) / statistics.stdev(ex) * math.sqrt(12)]],
        rtol=1e-12, atol=0,
    )
    assert set(m) == set(METRICS)


def test_no_trade_band_skips_small_rebalance():
    # The same market with a band wider than the month-1 trade: the weight stays at the
    # drifted one and nothing is paid.
    market, equity, bond, _ = _hand_market()
    plain = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=1,
                           tc_bps=10.0)
    run = run_strategies(market, [plain])
    w0, w1 = run.weights[0, 0]
    r_eq0 = equity[42] / equity[21] - 1
    gross0 = w0 * r_eq0 + (1 - w0) * (bond[42] / bond[21] - 1)
    drifted = w0 * (1 + r_eq0) / (1 + gross0)
    trade = abs(w1 - drifted)

    banded = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=1,
                            tc_bps=10.0, no_trade_band=trade * 1.01)
    tight = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=1,
                           tc_bps=10.0, no_trade_band=trade * 0.99)
    both = run_strategies(market, [banded, tight])
    np.testing.assert_allclose(both.weights[0, 0], [w0, drifted], rtol=1e-12, atol=0)
    np.testing.assert_allclose(both.costs[0, 0], [0.0, 0.0], rtol=0, atol=0)
    np.testing.assert_allclose(both.weights[1], run.weights[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(both.costs[1], run.costs[0], rtol=1e-12, atol=0)


def test_drawdown_counts_from_the_initial_nav():
    # Equity falls 1% (log) every day and the bond is flat: rv = 0, so inverse_vol holds the
    # maximum weight 1 and NAV_t = E_t / E_21. The NAV never rises above its initial 1, so
    # the max drawdown is 1 - NAV_63 = 1 - e^{-0.42}.
    equity = np.exp(-0.01 * np.arange(64.0))[None, :]
    flat = np.ones((1, 64))
    market = Market(equity=equity, alternative=flat, cash=flat,
                    rebalance_days=np.array([21, 42, 63]))
    config = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=1,
                            tc_bps=0.0)
    run = run_strategies(market, [config])
    np.testing.assert_allclose(run.weights, 1.0, rtol=0, atol=0)
    np.testing.assert_allclose(run.metrics["max_drawdown"], [[1 - math.exp(-0.42)]],
                               rtol=1e-12, atol=0)


def test_first_rebalance_needs_a_full_window():
    market, *_ = _hand_market()
    config = StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=2)
    with pytest.raises(ValueError, match="full trailing window"):
        run_strategies(market, [config])


# --------------------------------------------------------------------------------------
# A slow plain reference implementation, per config, per path, per month
# --------------------------------------------------------------------------------------


def _reference_weight(rv: float, c: StrategyConfig) -> float:
    """The weight functions (docs/engine.md), k = risk_aversion / target_vol, clipped (risk_aversion
    is None for the inverse rules, which do not use it)."""
    tv = c.target_vol
    if c.weight_fn == "inverse_vol":
        w = tv / rv
    elif c.weight_fn == "inverse_vol_squared":
        w = (tv / rv) ** 2
    elif c.weight_fn == "linear":
        w = max(0.0, 1.0 - c.risk_aversion / tv * (rv - tv))
    else:
        w = 1.0 / (1.0 + math.exp(c.risk_aversion / tv * (rv - tv)))
    return min(max(w, c.min_allocation), c.max_allocation)


def _reference_path(e, a, cash, days, c: StrategyConfig) -> dict:
    """One path of one config: a daily holdings loop with rebalances on ``days``."""
    n = c.window_days
    nav, peak, worst = 1.0, 1.0, 0.0
    drifted = 0.0
    monthly, weights, costs, trades, te_terms = [], [], [], [], []
    skipped = 0
    for k in range(len(days) - 1):
        d, d_next = days[k], days[k + 1]
        logs = [math.log(e[j] / e[j - 1]) for j in range(d - n + 1, d + 1)]
        rv = statistics.stdev(logs) * math.sqrt(252)
        wanted = _reference_weight(rv, c)
        if k == 0:
            w, trade = wanted, 0.0
        elif abs(wanted - drifted) < c.no_trade_band:
            w, trade = drifted, 0.0
            skipped += 1
        else:
            w, trade = wanted, abs(wanted - drifted)
        cost = c.tc_bps / 1e4 * 2 * trade
        invested = nav * (1 - cost)
        units_e = invested * w / e[d]
        units_a = invested * (1 - w) / a[d]
        for t in range(d + 1, d_next + 1):
            nav_t = units_e * e[t] + units_a * a[t]
            peak = max(peak, nav_t)
            worst = max(worst, 1 - nav_t / peak)
        monthly.append(nav_t / nav - 1)
        drifted = units_e * e[d_next] / nav_t
        nav = nav_t
        weights.append(w)
        costs.append(cost)
        trades.append(trade)
        daily = [w * (e[t] / e[t - 1] - 1) + (1 - w) * (a[t] / a[t - 1] - 1)
                 for t in range(d + 1, d_next + 1)]
        te_terms.append((statistics.stdev(daily) * math.sqrt(252) - c.target_vol) ** 2)

    n_months = len(monthly)
    years = n_months / 12
    excess = [r - (cash[days[k + 1]] / cash[days[k]] - 1) for k, r in enumerate(monthly)]
    growth = 1.0
    for r in monthly:
        growth *= 1 + r
    n_tail = math.ceil(round(0.05 * n_months, 12))
    worst_months = sorted(monthly)[:n_tail]
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in excess) / n_months)
    metrics = {
        "ann_return": growth ** (12 / n_months) - 1,
        "ann_vol": statistics.stdev(monthly) * math.sqrt(12),
        "sharpe": statistics.mean(excess) / statistics.stdev(excess) * math.sqrt(12),
        "sortino": statistics.mean(excess) / downside * math.sqrt(12),
        "max_drawdown": worst,
        "var95": -worst_months[-1],
        "cvar95": -sum(worst_months) / n_tail,
        "turnover": sum(trades) / years,
        "cost_drag": sum(costs) / years,
        "tracking_error": math.sqrt(sum(te_terms) / n_months),
        "avg_equity_weight": sum(weights) / n_months,
    }
    return {"monthly": monthly, "weights": weights, "costs": costs, "metrics": metrics,
            "skipped": skipped}


def _random_market(seed: int) -> Market:
    """GBM-like paths with per-path vol levels and vol regimes that switch every ~6 months,
    and irregular month lengths (19-23 days) after a 252-day warm-up."""
    rng = np.random.default_rng(seed)
    n_paths, n_months = 4, 30
    lengths = rng.integers(19, 24, size=n_months)
    days = np.concatenate([[252], 252 + np.cumsum(lengths)])
    n_days = int(days[-1])
    base_vol = np.array([0.08, 0.15, 0.25, 0.40])[:, None]
    switch = rng.choice([0.5, 1.0, 1.8], size=(n_paths, n_days // 126 + 1))
    vol = base_vol * np.repeat(switch, 126, axis=1)[:, :n_days]
    dt = 1 / 252
    eq_log = (0.07 - 0.5 * vol**2) * dt + vol * np.sqrt(dt) * rng.standard_normal(vol.shape)
    bond_log = 0.03 * dt + 0.06 * np.sqrt(dt) * rng.standard_normal((n_paths, n_days))
    rate = 0.02 + np.cumsum(0.001 * rng.standard_normal((n_paths, n_days)), axis=1)

    def levels(log_steps: np.ndarray) -> np.ndarray:
        return np.exp(np.concatenate([np.zeros((n_paths, 1)), np.cumsum(log_steps, 1)], 1))

    return Market(equity=levels(eq_log), alternative=levels(bond_log), cash=levels(rate * dt),
                  rebalance_days=days)


REFERENCE_CONFIGS = (
    StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=12, tc_bps=5.0),
    StrategyConfig(target_vol=0.25, weight_fn="inverse_vol_squared", vol_window_months=3,
                   tc_bps=20.0, max_allocation=1.5),
    StrategyConfig(target_vol=0.12, weight_fn="linear", vol_window_months=6, risk_aversion=2.0,
                   tc_bps=10.0, no_trade_band=0.05),
    StrategyConfig(target_vol=0.15, weight_fn="sigmoid", vol_window_months=1, risk_aversion=3.0,
                   tc_bps=15.0, min_allocation=0.2, max_allocation=1.5, no_trade_band=0.02),
    StrategyConfig(target_vol=0.20, weight_fn="inverse_vol", vol_window_months=6, tc_bps=0.0,
                   min_allocation=0.3, max_allocation=1.5),
)


@pytest.fixture(scope="module")
def reference_pair():
    market = _random_market(2024)
    run = run_strategies(market, REFERENCE_CONFIGS)
    days = [int(d) for d in market.rebalance_days]
    reference = [
        [
            _reference_path(market.equity[p].tolist(), market.alternative[p].tolist(),
                            market.cash[p].tolist(), days, c)
            for p in range(market.equity.shape[0])
        ]
        for c in REFERENCE_CONFIGS
    ]
    return run, reference


def _stack(reference, key: str) -> np.ndarray:
    return np.array([[np.asarray(path[key]) for path in per_config] for per_config in reference])


def test_reference_exercises_band_and_leverage(reference_pair):
    # The random market must hit the cases under test: the band both skips and trades,
    # and the 1.5 cap both binds and leaves leveraged weights above 1.
    _, reference = reference_pair
    skipped = [sum(path["skipped"] for path in per_config) for per_config in reference]
    assert skipped[2] > 0 and skipped[3] > 0
    costs = _stack(reference, "costs")
    assert np.all(costs[2:4].sum(axis=(1, 2)) > 0)
    weights = _stack(reference, "weights")
    assert np.any(weights[1] == 1.5) and np.any((weights[1] > 1) & (weights[1] < 1.5))
    assert np.any(weights[3] == 0.2) and np.any(weights[4] == 0.3)


def test_monthly_returns_weights_costs_match_reference(reference_pair):
    # Tolerances: both sides compute the same quantities in different orders; the
    # differences are a few ulps of order-one NAVs (atol) or of the values (rtol).
    run, reference = reference_pair
    np.testing.assert_allclose(run.weights, _stack(reference, "weights"), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(run.costs, _stack(reference, "costs"), rtol=1e-10, atol=1e-17)
    np.testing.assert_allclose(run.monthly_returns, _stack(reference, "monthly"), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("metric", METRICS)
def test_metrics_match_reference(reference_pair, metric):
    run, reference = reference_pair
    expected = np.array([[path["metrics"][metric] for path in per_config]
                         for per_config in reference])
    # tracking_error uses a one-pass moment formula: cancellation of order
    # 1e-16 x mean^2 / var, well inside 1e-9.
    rtol = 1e-9 if metric == "tracking_error" else 1e-10
    np.testing.assert_allclose(run.metrics[metric], expected, rtol=rtol, atol=1e-14)
