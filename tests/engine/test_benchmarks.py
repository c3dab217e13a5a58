"""engine.analysis.benchmarks: constant-weight portfolios, checked by hand on a tiny market."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.analysis.allocation import weight_paths
from engine.analysis.benchmarks import (
    STATIC_BENCHMARKS,
    constant_weight_config,
    evaluate_benchmarks,
)
from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.strategy import evaluate

DAYS = 21
RTOL = 1e-12
# One path, a one-month warm-up, then three months with these simple returns.
EQUITY = [0.10, -0.05, 0.02]
BOND = [0.01, 0.01, 0.00]
CASH = 0.002  # per month


def _levels(monthly: list[float]) -> np.ndarray:
    """Daily levels from 1, flat over the warm-up month, then growing at a constant daily
    rate within each month so that month-end to month-end returns are ``monthly``."""
    daily = [1.0] * DAYS
    for r in monthly:
        daily += [(1.0 + r) ** (1.0 / DAYS)] * DAYS
    return np.concatenate([[1.0], np.cumprod(daily)])[None, :]


def _hand_market() -> ScenarioPaths:
    equity = _levels(EQUITY)
    return ScenarioPaths(
        regime=REGIMES["base"], equity=equity, variance=np.full_like(equity, 0.04),
        short_rate=np.full_like(equity, 0.02), bond=_levels(BOND),
        cash=_levels([CASH] * len(EQUITY)), warmup_months=1, measure="physical",
        bond_maturity=7.0,
    )


def _hand_sixty_forty(w: float, tc: float) -> dict[str, float]:
    """Monthly rebalancing back to w, worked out step by step (the first rebalance is the
    inception and trades nothing; later ones trade the drift back to w on both assets)."""
    returns, trades, costs = [], [], []
    drifted = w
    for k, (re, rb) in enumerate(zip(EQUITY, BOND, strict=True)):
        trade = 0.0 if k == 0 else abs(w - drifted)
        cost = tc / 1e4 * 2.0 * trade
        gross = w * re + (1.0 - w) * rb
        returns.append((1.0 - cost) * (1.0 + gross) - 1.0)
        trades.append(trade)
        costs.append(cost)
        drifted = w * (1.0 + re) / (1.0 + gross)
    years = len(EQUITY) / 12
    excess = np.array(returns) - CASH
    return {
        "ann_return": math.prod(1 + r for r in returns) ** (12 / len(returns)) - 1.0,
        "ann_vol": float(np.std(returns, ddof=1) * math.sqrt(12)),
        "sharpe": float(excess.mean() / excess.std(ddof=1) * math.sqrt(12)),
        "turnover": sum(trades) / years,
        "cost_drag": sum(costs) / years,
        "returns": returns,
    }


def test_sixty_forty_matches_the_hand_computation() -> None:
    # month 2: the weight drifted to 0.6 x 1.10 / 1.064 = 0.62030, trade 0.02030
    expected = _hand_sixty_forty(0.6, 10.0)
    np.testing.assert_allclose(expected["turnover"] * 0.25,
                               abs(0.6 - 0.6 * 1.10 / 1.064) + abs(0.6 - 0.6 * 0.95 / 0.974),
                               rtol=RTOL)
    objectives = InvestmentObjectives(assumed_tc_bps=10.0)
    table = evaluate_benchmarks({"base": _hand_market()}, objectives, {"60/40": 0.6})
    row = table.row(0, named=True)
    assert (row["benchmark"], row["equity_weight"], row["scenario"]) == ("60/40", 0.6, "base")
    for metric in ("ann_return", "ann_vol", "sharpe", "turnover", "cost_drag"):
        np.testing.assert_allclose(row[f"{metric}_mean"], expected[metric], rtol=1e-10,
                                   err_msg=metric)
    np.testing.assert_allclose(row["avg_equity_weight_mean"], 0.6, rtol=RTOL)
    worst = -min(expected["returns"])
    assert row["var95_mean"] == pytest.approx(worst, rel=1e-10)  # 3 months: the worst one


def test_all_equity_never_trades_and_earns_the_equity_return() -> None:
    table = evaluate_benchmarks({"base": _hand_market()}, InvestmentObjectives(),
                                {"100% equity": 1.0})
    row = table.row(0, named=True)
    growth = math.prod(1 + r for r in EQUITY)
    np.testing.assert_allclose(row["ann_return_mean"], growth ** 4 - 1.0, rtol=1e-10)
    assert row["turnover_mean"] == 0.0
    assert row["cost_drag_mean"] == 0.0


def test_a_constant_weight_is_a_clipped_config() -> None:
    config = constant_weight_config(0.6, tc_bps=10.0)
    assert (config.min_allocation, config.max_allocation) == (0.6, 0.6)
    paths = simulate_scenario(REGIMES["bear"], n_paths=20, seed=3, warmup_months=2,
                              horizon_years=1)
    np.testing.assert_allclose(weight_paths(paths, config), 0.6, rtol=0, atol=0)


def test_every_benchmark_in_every_scenario_matches_a_direct_evaluation() -> None:
    paths = {name: simulate_scenario(REGIMES[name], n_paths=20, seed=1, warmup_months=2,
                                     horizon_years=1) for name in ("base", "bear")}
    objectives = InvestmentObjectives()
    table = evaluate_benchmarks(paths, objectives)
    assert table.select("benchmark", "scenario").rows() == [
        (b, s) for b in STATIC_BENCHMARKS for s in paths]
    direct = evaluate(paths["bear"], [constant_weight_config(
        0.6, tc_bps=objectives.assumed_tc_bps, target_vol=objectives.target_vol)], objectives)
    row = table.filter((pl.col("benchmark") == "60/40") & (pl.col("scenario") == "bear"))
    assert row.drop("benchmark", "equity_weight").equals(direct)

    # benchmarks are evaluated together per scenario: two names for one weight each get
    # their row, the same as a benchmark alone
    twins = evaluate_benchmarks({"bear": paths["bear"]}, objectives,
                                benchmarks={"balanced": 0.6, "also 60/40": 0.6})
    assert twins["benchmark"].to_list() == ["balanced", "also 60/40"]
    assert twins.drop("benchmark").row(1) == twins.drop("benchmark").row(0)
    assert twins.drop("benchmark", "equity_weight").row(0) == direct.row(0)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equity_weight"):
        constant_weight_config(1.5, tc_bps=0.0)
    with pytest.raises(ValueError, match="at least one scenario"):
        evaluate_benchmarks({})
