"""engine.analysis.costs.cost_sensitivity: configs re-evaluated across cost assumptions."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from engine.analysis.costs import cost_sensitivity
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.strategy import StrategyConfig, evaluate

CONFIGS = (
    StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=6, tc_bps=10.0),
    StrategyConfig(target_vol=0.15, weight_fn="sigmoid", vol_window_months=3, risk_aversion=3.0,
                   tc_bps=10.0),
)
COSTS = (0.0, 10.0, 20.0)


@pytest.fixture(scope="module")
def paths():
    return {name: simulate_scenario(REGIMES[name], n_paths=30, seed=5, warmup_months=6,
                                    horizon_years=2) for name in ("base", "bear")}


@pytest.fixture(scope="module")
def table(paths) -> pl.DataFrame:
    return cost_sensitivity(paths, CONFIGS, COSTS)


def test_one_row_per_config_cost_and_scenario_keyed_by_the_ranked_id(table) -> None:
    assert table.height == len(CONFIGS) * len(COSTS) * 2
    assert set(table["config_id"]) == {c.config_id for c in CONFIGS}
    assert sorted(table["tc_bps"].unique()) == list(COSTS)


def test_each_cost_equals_a_direct_evaluation_at_that_cost(table, paths) -> None:
    for config in CONFIGS:
        for cost in COSTS:
            for scenario, scenario_paths in paths.items():
                direct = evaluate(scenario_paths, [dataclasses.replace(config, tc_bps=cost)])
                row = table.filter((pl.col("config_id") == config.config_id)
                                   & (pl.col("tc_bps") == cost) & (pl.col("scenario") == scenario))
                np.testing.assert_allclose(row["sharpe_mean"][0], direct["sharpe_mean"][0],
                                           rtol=0, atol=0)
                np.testing.assert_allclose(row["cost_drag_mean"][0],
                                           direct["cost_drag_mean"][0], rtol=0, atol=0)


def test_costs_cut_returns_but_not_trading(table) -> None:
    for config in CONFIGS:
        rows = table.filter((pl.col("config_id") == config.config_id)
                            & (pl.col("scenario") == "base")).sort("tc_bps")
        assert rows["cost_drag_mean"][0] == 0.0
        assert rows["cost_drag_mean"][1] > 0.0
        # the rule's weights depend on realised vol only: the same trades at every cost
        np.testing.assert_allclose(rows["turnover_mean"].to_numpy(),
                                   rows["turnover_mean"][0], rtol=1e-12)
        assert rows["ann_return_mean"].is_sorted(descending=True)


def test_worst_sharpe_is_the_minimum_over_scenarios(table) -> None:
    expected = table.group_by("config_id", "tc_bps").agg(pl.col("sharpe_mean").min())
    joined = table.join(expected, on=["config_id", "tc_bps"], suffix="_min")
    np.testing.assert_array_equal(joined["worst_sharpe_mean"], joined["sharpe_mean_min"])


def test_needs_a_config_and_a_cost(paths) -> None:
    with pytest.raises(ValueError, match="at least one config and one cost"):
        cost_sensitivity(paths, [], COSTS)
