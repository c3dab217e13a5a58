"""The two-asset compiled passes (engine.strategy.kernels) against their numpy references:
the trailing vols and month sums of ``market_pass``, the weight rules, the annualised
return and VaR/CVaR per path, and ``simulate``'s every metric against the numpy pipeline
(target_weights_for, rebalance, engine.strategy.metrics, the daily NAV), bit for bit, on
paths with a negative NAV, zero weights and drawdowns set inside a month."""

from __future__ import annotations

import numpy as np
import pytest

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.strategy.config import WEIGHT_FNS, StrategyConfig, target_weights
from engine.strategy.kernels import annualised_return, target_weight, var_cvar
from engine.strategy.metrics import (
    METRICS,
    annualised_vol,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    tail_count,
)
from engine.strategy.metrics import annualised_return as numpy_annualised_return
from engine.strategy.metrics import var_cvar as numpy_var_cvar
from engine.strategy.portfolio import (
    Market,
    _rules,
    month_inputs,
    rebalance,
    run_strategies,
    simulate,
    target_weights_for,
)
from engine.strategy.rolling import cumulative_squared_returns, realized_vol_from_logs


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _market(seed: int, n_paths: int = 6, n_months: int = 14, warmup: int = 4,
            equity_vol: float = 0.015, crash: bool = False) -> Market:
    """Random daily levels; ``crash`` drops the first path's equity 60% over its sixth
    month of evaluation."""
    rng = np.random.default_rng(seed)
    n_days = (warmup + n_months) * 21
    log_eq = np.cumsum(rng.normal(3e-4, equity_vol, (n_paths, n_days)), axis=-1)
    if crash:
        month = slice((warmup + 5) * 21, (warmup + 6) * 21)
        log_eq[0, month] += np.linspace(np.log(0.4) / 21, np.log(0.4), 21)
        log_eq[0, month.stop:] += np.log(0.4)
    log_bond = np.cumsum(rng.normal(1e-4, 0.003, (n_paths, n_days)), axis=-1)
    rate = np.cumsum(rng.normal(0.0, 2e-4, (n_paths, n_days)), axis=-1) + 0.03
    start = np.zeros((n_paths, 1))
    return Market(
        equity=np.exp(np.hstack([start, log_eq])),
        alternative=np.exp(np.hstack([start, log_bond])),
        cash=np.exp(np.hstack([start, np.cumsum(rate / TRADING_DAYS_PER_YEAR, axis=-1)])),
        rebalance_days=np.arange(warmup, warmup + n_months + 1, dtype=np.int64) * 21,
    )


CONFIGS = (
    StrategyConfig(0.10, "inverse_vol", 3),
    StrategyConfig(0.08, "inverse_vol_squared", 2, tc_bps=20.0, no_trade_band=0.05),
    StrategyConfig(0.12, "linear", 1, risk_aversion=2.5, max_allocation=1.5),
    StrategyConfig(0.15, "sigmoid", 4, risk_aversion=0.7, min_allocation=0.2, tc_bps=0.0),
    StrategyConfig(0.05, "inverse_vol", 1, min_allocation=0.0, max_allocation=0.0),
    StrategyConfig(0.60, "inverse_vol", 2, min_allocation=3.0, max_allocation=3.0,
                   tc_bps=50.0),
    StrategyConfig(0.30, "linear", 3, risk_aversion=40.0, no_trade_band=0.3, tc_bps=500.0),
)
"""Each rule; a config always at zero equity; one always 3x levered (its NAV goes
negative on the crash path); one often at zero."""


def _variance_coefficients(market: Market, days: np.ndarray):
    """The numpy month sums the tracking error was first written with."""
    r_eq = np.diff(market.equity, axis=-1) / market.equity[:, :-1]
    r_alt = np.diff(market.alternative, axis=-1) / market.alternative[:, :-1]
    gap = r_eq - r_alt

    def month_sums(x):
        return np.add.reduceat(x[:, days[0]:days[-1]], days[:-1] - days[0], axis=-1)

    n = np.diff(days).astype(np.float64)
    s_a, s_g = month_sums(r_alt), month_sums(gap)
    return (month_sums(r_alt * r_alt) - s_a * s_a / n,
            2.0 * (month_sums(r_alt * gap) - s_a * s_g / n),
            month_sums(gap * gap) - s_g * s_g / n)


def _period_returns(levels: np.ndarray, days: np.ndarray) -> np.ndarray:
    at = levels[:, days]
    return at[:, 1:] / at[:, :-1] - 1.0


def test_market_pass_equals_numpy():
    market = _market(0, n_months=10)
    inputs = month_inputs(market, CONFIGS)
    days = market.rebalance_days
    log_levels = np.log(market.equity)
    cum_sq = cumulative_squared_returns(log_levels)
    assert inputs.windows.tolist() == [21, 42, 63, 84]
    for i, n in enumerate(inputs.windows):
        expected = realized_vol_from_logs(log_levels, cum_sq, days[:-1], int(n))
        np.testing.assert_array_equal(_bits(inputs.vols[i]), _bits(expected), err_msg=str(n))
    for i, levels in enumerate((market.equity, market.alternative, market.cash)):
        np.testing.assert_array_equal(_bits(inputs.period_returns[i]),
                                      _bits(_period_returns(levels, days)))
    for i, expected in enumerate(_variance_coefficients(market, days)):
        np.testing.assert_array_equal(_bits(inputs.variance_coefficients[i]), _bits(expected))


def test_market_pass_on_uneven_months_and_a_flat_window():
    # Calendar month-ends (19 to 23 days) and an equity flat over the first window: zero
    # variance, clamped at 0 as numpy's maximum clamps it.
    market = _market(1, n_paths=3, n_months=10)
    days = np.array([84, 104, 127, 146, 168, 190, 209, 230, 252, 270], dtype=np.int64)
    equity = market.equity.copy()
    equity[1, :85] = 1.25
    market = Market(equity, market.alternative, market.cash, days)
    inputs = month_inputs(market, CONFIGS)
    log_levels = np.log(equity)
    cum_sq = cumulative_squared_returns(log_levels)
    for i, n in enumerate(inputs.windows):
        expected = realized_vol_from_logs(log_levels, cum_sq, days[:-1], int(n))
        np.testing.assert_array_equal(_bits(inputs.vols[i]), _bits(expected))
    assert inputs.vols[0, 1, 0] == 0.0
    for i, expected in enumerate(_variance_coefficients(market, days)):
        np.testing.assert_array_equal(_bits(inputs.variance_coefficients[i]), _bits(expected))


def test_month_inputs_refuses_a_window_longer_than_the_warm_up():
    market = _market(2, n_paths=2, n_months=4, warmup=2)
    with pytest.raises(ValueError, match="before a full trailing window of 84 days"):
        month_inputs(market, CONFIGS)


@pytest.mark.parametrize("config", [
    StrategyConfig(0.10, "inverse_vol", 3),
    StrategyConfig(0.10, "inverse_vol", 3, min_allocation=0.4, max_allocation=2.0),
    StrategyConfig(0.08, "inverse_vol_squared", 2, max_allocation=3.0),
    StrategyConfig(0.12, "linear", 1, risk_aversion=2.5, max_allocation=1.5),
    StrategyConfig(0.12, "linear", 1, risk_aversion=50.0, min_allocation=0.1),
    StrategyConfig(0.15, "sigmoid", 4, risk_aversion=0.7, min_allocation=0.2),
    StrategyConfig(0.01, "sigmoid", 4, risk_aversion=50.0),
], ids=lambda c: f"{c.weight_fn}-{c.min_allocation}-{c.max_allocation}")
def test_target_weight_equals_target_weights(config):
    rng = np.random.default_rng(3)
    # rv = 0 (inverse rules at their cap), huge rv (sigmoid's exp overflows), NaN.
    rv = np.concatenate([rng.uniform(0.0, 0.8, 4000), [0.0, 1e-300, 5.0, 1e6, np.nan]])
    rules = _rules((config,), np.array([config.window_days]))
    got = np.array([target_weight(v, rules.weight_fn[0], rules.target_vol[0], rules.slope[0],
                                  rules.low[0], rules.high[0]) for v in rv])
    np.testing.assert_array_equal(_bits(got), _bits(target_weights(rv, config)))


def test_every_weight_rule_is_tested():
    assert set(WEIGHT_FNS) == {"inverse_vol", "inverse_vol_squared", "linear", "sigmoid"}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("n_months", [6, 7, 12, 24, 36, 60])
def test_annualised_return_equals_numpy(n_months):
    # 12 / n = 2, 0.5 (numpy squares and takes the square root) and plain powers; a path
    # losing everything (R = -1) and one near it.
    # numpy's sqrt and square differ from pow in about one value in a thousand: enough
    # paths to meet some.
    rng = np.random.default_rng(n_months)
    monthly = rng.normal(0.005, 0.06, (20_000, n_months))
    monthly[0, 3] = -1.0
    monthly[1, 2] = -1.0 + 1e-12
    expected = numpy_annualised_return(monthly)
    scratch = np.empty(n_months)
    got = np.array([annualised_return(row, scratch) for row in monthly])
    np.testing.assert_array_equal(_bits(got), _bits(expected))


@pytest.mark.parametrize("n_months", [12, 24, 36, 60])
def test_var_cvar_equals_numpy(n_months):
    # k = ceil(0.05 n) <= 3: numpy's partition picks them by selection sort, ascending.
    rng = np.random.default_rng(n_months)
    monthly = np.round(rng.normal(0.005, 0.05, (3000, n_months)), 3)  # many ties
    monthly[0, :] = monthly[0, 0]
    monthly[1, 5] = np.nan
    k = tail_count(n_months)
    var, cvar = numpy_var_cvar(monthly)
    scratch = np.empty(k)
    got = np.array([var_cvar(row, k, scratch) for row in monthly])
    np.testing.assert_array_equal(_bits(got[:, 0]), _bits(var))
    np.testing.assert_array_equal(_bits(got[:, 1]), _bits(cvar))


def test_var_cvar_with_more_tail_months_agrees_within_rounding():
    # k = 6 of 120: numpy's partition leaves the six in its own order; the sums of the
    # same six values differ by at most the rounding of a six-term sum.
    rng = np.random.default_rng(120)
    monthly = rng.normal(0.005, 0.05, (3000, 120))
    k = tail_count(120)
    var, cvar = numpy_var_cvar(monthly)
    scratch = np.empty(k)
    got = np.array([var_cvar(row, k, scratch) for row in monthly])
    np.testing.assert_array_equal(_bits(got[:, 0]), _bits(var))
    np.testing.assert_allclose(got[:, 1], cvar, rtol=6 * np.finfo(float).eps, atol=0)


def _numpy_metrics(market: Market, configs) -> dict[str, np.ndarray]:
    """Every metric from the numpy stages: target_weights_for, rebalance, the metrics
    module on the per-month arrays, and the daily NAV built whole for the drawdown."""
    days = market.rebalance_days
    rebalanced = rebalance(market, target_weights_for(market, configs), configs)
    monthly, weights, costs = (rebalanced.monthly_returns, rebalanced.weights,
                               rebalanced.costs)
    excess = monthly - _period_returns(market.cash, days)[None]
    years = monthly.shape[-1] / 12
    var, cvar = numpy_var_cvar(monthly)
    start = np.concatenate([np.ones((*monthly.shape[:2], 1)),
                            np.cumprod(1.0 + monthly, axis=-1)[..., :-1]], axis=-1)
    navs = []
    for k in range(len(days) - 1):
        d0, d1 = days[k], days[k + 1]
        g_alt = market.alternative[:, d0 + 1:d1 + 1] / market.alternative[:, d0:d0 + 1]
        g_gap = market.equity[:, d0 + 1:d1 + 1] / market.equity[:, d0:d0 + 1] - g_alt
        a = (start[..., k] * (1.0 - costs[..., k]))[..., None]
        navs.append(a * (g_alt[None] + weights[..., k][..., None] * g_gap[None]))
    c0, c1, c2 = _variance_coefficients(market, days)
    scale = TRADING_DAYS_PER_YEAR / (np.diff(days).astype(np.float64) - 1.0)
    target = np.array([c.target_vol for c in configs])[:, None, None]
    vol = np.sqrt(np.maximum(((c2 * weights + c1) * weights + c0) * scale, 0.0))
    return {
        "ann_return": numpy_annualised_return(monthly),
        "ann_vol": annualised_vol(monthly),
        "sharpe": sharpe_ratio(excess),
        "sortino": sortino_ratio(excess),
        "max_drawdown": max_drawdown(np.concatenate(navs, axis=-1), initial=1.0),
        "var95": var,
        "cvar95": cvar,
        "turnover": rebalanced.trades.sum(axis=-1) / years,
        "cost_drag": costs.sum(axis=-1) / years,
        "tracking_error": np.sqrt(np.mean((vol - target) ** 2, axis=-1)),
        "avg_equity_weight": weights.mean(axis=-1),
    } | {"monthly_returns": monthly, "weights": weights, "costs": costs}


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("case", ["calm", "wild", "crash"])
def test_simulate_equals_the_numpy_pipeline(case):
    market = {
        "calm": _market(4),
        "wild": _market(5, equity_vol=0.04),
        "crash": _market(6, crash=True),
    }[case]
    expected = _numpy_metrics(market, CONFIGS)
    run = run_strategies(market, CONFIGS)
    for name in METRICS:
        # The numpy tracking error takes a different route to the same sums (mean vs a
        # running total), so it is compared to rounding; every other metric bit for bit.
        if name == "tracking_error":
            np.testing.assert_allclose(run.metrics[name], expected[name], rtol=1e-13)
        else:
            np.testing.assert_array_equal(_bits(run.metrics[name]), _bits(expected[name]),
                                          err_msg=name)
    for name in ("monthly_returns", "weights", "costs"):
        np.testing.assert_array_equal(_bits(getattr(run, name)), _bits(expected[name]))


def test_the_cases_reach_a_negative_nav_zero_weights_and_intramonth_drawdowns():
    market = _market(6, crash=True)
    run = run_strategies(market, CONFIGS)
    levered = CONFIGS.index(StrategyConfig(0.60, "inverse_vol", 2, min_allocation=3.0,
                                           max_allocation=3.0, tc_bps=50.0))
    assert run.metrics["max_drawdown"][levered, 0] > 1.0  # the NAV went below zero
    assert (run.weights[4] == 0.0).all()
    # On most config-paths a day inside a month sets the drawdown: deeper than the
    # month-end NAV's.
    month_end = np.concatenate([np.ones((*run.monthly_returns.shape[:2], 1)),
                                np.cumprod(1.0 + run.monthly_returns, axis=-1)], axis=-1)
    at_month_ends = max_drawdown(month_end)
    assert (run.metrics["max_drawdown"] > at_month_ends).mean() > 0.5


def test_metrics_only_run_has_the_same_metrics():
    market = _market(7, crash=True)
    full = run_strategies(market, CONFIGS)
    lean = run_strategies(market, CONFIGS, per_month=False)
    assert lean.monthly_returns is None and lean.weights is None and lean.costs is None
    assert lean.n_paths == full.n_paths == 6
    for name in METRICS:
        np.testing.assert_array_equal(_bits(lean.metrics[name]), _bits(full.metrics[name]))


def test_simulate_reads_the_inputs_it_is_given():
    # The two stages apart, as the benchmark times them: the same as run_strategies.
    market = _market(8)
    inputs = month_inputs(market, CONFIGS)
    run = simulate(market, inputs, CONFIGS, per_month=False)
    whole = run_strategies(market, CONFIGS, per_month=False)
    for name in METRICS:
        np.testing.assert_array_equal(_bits(run.metrics[name]), _bits(whole.metrics[name]))
