"""Guards on the numbers of the layer above the engine: what the assets store and what
their checks say, against independent computations.

- stored strategy_evaluations rows equal the engine's evaluation of the stored scenario
  paths, with the default objectives and with others passed as run config;
- today's weight in recommended_allocation equals a hand computation from the closes
  (sample variance of the window's log returns, annualised, then the weight function),
  written here with numpy alone;
- the objectives-compliance, completeness and scenario-path checks in their failing cases.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_test_support import Upstream, failure_text, run_job

from dynalloc_dagster.assets.reporting import recommended_allocation
from dynalloc_dagster.assets.scenarios import _martingale_z, _realized_vol_z
from dynalloc_dagster.assets.strategies import evaluation_completeness
from dynalloc_dagster.checks import recommended_objectives_compliance
from dynalloc_dagster.orchestration.stages import evaluation_range_tags
from dynalloc_dagster.partitions import SCENARIOS
from dynalloc_dagster.resources import MarketDataSource, ObjectivesResource
from dynalloc_dagster.storage.io_managers import load_scenario_paths
from dynalloc_dagster.storage.local import LocalStorage
from dynalloc_dagster.tags import EVALUATIONS_JOB
from engine.objectives import InvestmentObjectives
from engine.strategy import CONFIG_COLUMNS, StrategyConfig, evaluate

STRICT = {"max_drawdown": 0.02, "min_sharpe": 0.1, "max_var95": 0.01,
          "assumed_tc_bps": 10.0}


def _stored_evaluations(root: Path, batch: str, scenario: str) -> pl.DataFrame:
    """A stored partition, read through the storage (checksum verified)."""
    key = f"strategy_evaluations/batch={batch}/scenario={scenario}.parquet"
    return pl.read_parquet(io.BytesIO(LocalStorage(root=str(root)).get(key)))


@pytest.mark.parametrize("objectives", [{}, STRICT], ids=["default", "strict"])
def test_stored_evaluations_are_the_engines_on_the_stored_paths(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance, objectives: dict
) -> None:
    run_config = {"resources": {"objectives": {"config": objectives}}} if objectives else {}
    result = run_job(defs, EVALUATIONS_JOB, instance, run_config=run_config,
                     tags=evaluation_range_tags(upstream.batch))
    assert result.success, failure_text(result)

    configs_table = pl.read_parquet(upstream.root / "strategy_configs.parquet")
    configs = [StrategyConfig(**{k: row[k] for k in CONFIG_COLUMNS})
               for row in configs_table.iter_rows(named=True)]
    judged_by = InvestmentObjectives(**objectives)
    for scenario in SCENARIOS:
        paths = load_scenario_paths(upstream.root / "scenario_paths" / f"{scenario}.npz")
        expected = evaluate(paths, configs, judged_by)
        stored = _stored_evaluations(upstream.root, upstream.batch, scenario)
        assert stored.equals(expected), scenario
    if objectives:
        # the strict objectives must actually bite, or this case proves nothing
        assert not stored["pass_drawdown"].all()


def _hand_weight(close: np.ndarray, rule: StrategyConfig) -> float:
    """w = f(rv): rv the annualised sample sd (ddof 1) of the last 21 x months daily log
    returns, f the rule's weight function, clipped to [0, 1]."""
    returns = np.diff(np.log(close))[-rule.vol_window_months * 21:]
    rv = math.sqrt(252.0) * float(np.std(returns, ddof=1))
    tv = rule.target_vol
    match rule.weight_fn:
        case "inverse_vol":
            w = tv / rv
        case "inverse_vol_squared":
            w = (tv / rv) ** 2
        case "linear":
            w = max(0.0, 1.0 - rule.risk_aversion / tv * (rv - tv))
        case _:
            w = 1.0 / (1.0 + math.exp(rule.risk_aversion / tv * (rv - tv)))
    return min(max(w, 0.0), 1.0)


@pytest.mark.parametrize("rule", [
    StrategyConfig(target_vol=0.09, weight_fn="inverse_vol", vol_window_months=6),
    StrategyConfig(target_vol=0.12, weight_fn="inverse_vol_squared", vol_window_months=12),
    StrategyConfig(target_vol=0.12, weight_fn="linear", vol_window_months=9, risk_aversion=0.5),
    StrategyConfig(target_vol=0.15, weight_fn="sigmoid", vol_window_months=3, risk_aversion=4.0),
], ids=lambda rule: rule.weight_fn)
def test_todays_weight_is_the_hand_computed_one(instance: dg.DagsterInstance,
                                                rule: StrategyConfig) -> None:
    rng = np.random.default_rng(11)
    days = 600
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.011, days)))
    market = pl.DataFrame({
        "date": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 1) + pl.duration(
            days=days - 1), eager=True),
        "close": close, "bond_close": np.full(days, 100.0), "risk_free": np.full(days, 0.02),
    })
    row = {"config_id": rule.config_id, "round": 0, "batch": "r000-00000000",
           "proposer": "lhs", **rule.to_dict()}
    # evaluated in two scenarios: within every limit in base, vol 5% in bear
    evaluations = pl.DataFrame({
        "scenario": ["base", "bear"], "config_id": [rule.config_id] * 2,
        "target_vol": [rule.target_vol] * 2, "ann_vol_median": [0.10, 0.05],
        "sharpe_median": [1.6, 1.6], "max_drawdown_median": [0.1, 0.1],
        "var95_median": [0.03, 0.03], "cvar95_median": [0.05, 0.05],
        "cost_drag_median": [0.001, 0.001]})
    result = recommended_allocation(
        dg.build_asset_context(instance=instance), market_source=MarketDataSource(),
        objectives=ObjectivesResource(),
        robustness_leaderboard=pl.DataFrame({"rank": [1], "config_id": [rule.config_id]}),
        strategy_configs=pl.DataFrame([row]), strategy_evaluations=evaluations,
        market_data=market,
    )
    table = result.value
    expected = _hand_weight(close, rule)
    assert 0.0 < expected < 1.0  # an interior weight: the clip would hide a wrong formula
    np.testing.assert_allclose(table["equity_weight_today"][0], expected, rtol=1e-12)
    np.testing.assert_allclose(table["defensive_weight_today"][0], 1.0 - expected, rtol=1e-12)
    assert table["defensive_leg"][0] == "bond"  # the market data has a bond index
    assert table["n_scenarios_meeting"][0] == 1 and not table["meets_mandate"][0]
    assert table["mandate_status"][0] == (
        "No evaluated rule meets the mandate in every scenario; this is the closest (highest"
        " objective). Meets the mandate in 1 of 2 scenarios. Misses vol 5.0% in Bear market vs"
        " band 8.0%-12.0% (missed in 1 of 2). No rule meets: vol band 8.0%-12.0% (best"
        f" achievable 5.0% in Bear market, config {rule.config_id}).")
    first_key, first = next(iter(result.metadata.items()))
    assert first_key == "decision"
    assert first.value.startswith("**Mandate:** No evaluated rule meets the mandate")
    assert f"government bonds {1 - expected:.1%}" in first.value
    cash = recommended_allocation(
        dg.build_asset_context(instance=instance), market_source=MarketDataSource(),
        objectives=ObjectivesResource(),
        robustness_leaderboard=pl.DataFrame({"rank": [1], "config_id": [rule.config_id]}),
        strategy_configs=pl.DataFrame([row]), strategy_evaluations=evaluations,
        market_data=market.drop("bond_close"))
    assert cash.value["defensive_leg_label"][0] == "cash"
    assert "government" not in next(iter(cash.metadata.values())).value


def test_compliance_check_names_every_failed_objective_and_scenario() -> None:
    rows = pl.DataFrame({
        "config_id": ["c1", "c1", "c2"], "scenario": ["base", "bear", "base"],
        "pass_vol": [True, False, False], "pass_vol_own_target": [True, True, False],
        "pass_sharpe": [False, False, False], "pass_drawdown": [True, True, False],
        "pass_var95": [True, True, True], "pass_cvar95": [True, True, True],
        "pass_cost": [True, False, True],
    })
    result = recommended_objectives_compliance(
        pl.DataFrame({"config_id": ["c1"]}), rows)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    failed = {k: v.value for k, v in result.metadata.items() if k.startswith("failed_")}
    assert failed == {"failed_pass_vol": "bear", "failed_pass_sharpe": "base, bear",
                      "failed_pass_cost": "bear"}


def test_compliance_check_passes_a_config_that_meets_everything() -> None:
    rows = pl.DataFrame({"config_id": ["c1"], "scenario": ["base"], **{
        column: [True] for column in ("pass_vol", "pass_vol_own_target", "pass_sharpe",
                                      "pass_drawdown", "pass_var95", "pass_cvar95",
                                      "pass_cost")}})
    result = recommended_objectives_compliance(pl.DataFrame({"config_id": ["c1"]}), rows)
    assert result.passed


def test_completeness_check_warns_naming_the_missing_keys(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    tags = evaluation_range_tags(upstream.batch, SCENARIOS[:2])
    result = run_job(defs, EVALUATIONS_JOB, instance, tags=tags)
    assert result.success, failure_text(result)

    check = evaluation_completeness(dg.build_asset_check_context(instance=instance))

    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["missing"].value == len(SCENARIOS) - 2
    assert f"{upstream.batch}|{SCENARIOS[2]}" in check.metadata["missing_sample"].value


def test_scenario_path_checks_fail_on_paths_that_break_them(upstream: Upstream) -> None:
    paths = load_scenario_paths(upstream.root / "scenario_paths" / "base.npz")
    drift, variance = paths.regime.equity_drift, paths.regime.variance
    assert abs(_martingale_z(paths.equity, drift)) < 4.0
    assert _realized_vol_z(paths.equity, variance)[0]
    # 30% a year more drift than the regime's: the discounted equity is no martingale
    years = np.arange(paths.n_steps + 1) / 252.0
    assert abs(_martingale_z(paths.equity * np.exp(0.30 * years), drift)) > 4.0
    # daily moves doubled: realised vol twice the regime's
    ok, vol = _realized_vol_z(paths.equity ** 2 / paths.equity[:, :1], variance)
    assert not ok
    np.testing.assert_allclose(vol, 2 * _realized_vol_z(paths.equity, variance)[1], rtol=1e-12)
