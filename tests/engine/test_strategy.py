"""engine.strategy.evaluate: the tidy metrics table, pass columns and determinism."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.strategy import CONFIG_COLUMNS, StrategyConfig, evaluate, market_from_paths
from engine.strategy.evaluation import configs_per_chunk
from engine.strategy.metrics import METRICS, STATISTICS, summarise
from engine.strategy.portfolio import run_strategies

CONFIGS = (
    StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=12, tc_bps=2.0),
    StrategyConfig(target_vol=0.15, weight_fn="sigmoid", vol_window_months=6, risk_aversion=3.0,
                   tc_bps=20.0),
    StrategyConfig(target_vol=0.08, weight_fn="linear", vol_window_months=3, tc_bps=10.0,
                   no_trade_band=0.02),
)
MANDATE = ("pass_vol", "pass_sharpe", "pass_drawdown", "pass_var95", "pass_cvar95", "pass_cost")
PASS_COLUMNS = (*MANDATE[:1], "pass_vol_own_target", *MANDATE[1:], "meets_objectives")
LENIENT = dict(min_sharpe=-5.0, max_drawdown=1.0, max_var95=1.0, max_cvar95=1.0,
               max_cost_bps=1000.0, vol_tolerance=1.0)


def _paths(seed: int = 17):
    return simulate_scenario(REGIMES["base"], n_paths=40, seed=seed, warmup_months=12,
                             horizon_years=2)


@pytest.fixture(scope="module")
def paths():
    return _paths()


@pytest.fixture(scope="module")
def table(paths):
    return evaluate(paths, CONFIGS)


def test_one_row_per_config_with_documented_columns(table):
    expected = [
        "scenario",
        "config_id",
        *CONFIG_COLUMNS,
        "n_paths",
        *(f"{metric}_{stat}" for metric in METRICS for stat in STATISTICS),
        *PASS_COLUMNS,
    ]
    assert table.columns == expected
    assert table.height == len(CONFIGS)
    assert table["scenario"].to_list() == ["base"] * 3
    assert table["config_id"].to_list() == [c.config_id for c in CONFIGS]
    assert table["n_paths"].to_list() == [40] * 3
    assert table.schema["n_paths"] == pl.Int64
    assert table.schema["vol_window_months"] == pl.Int64
    for name in CONFIG_COLUMNS:
        assert table[name].to_list() == [getattr(c, name) for c in CONFIGS], name
    for name in PASS_COLUMNS:
        assert table.schema[name] == pl.Boolean


def test_metric_columns_summarise_run_strategies(paths, table):
    market = market_from_paths(paths)
    np.testing.assert_array_equal(market.rebalance_days, np.arange(12, 37) * 21)
    run = run_strategies(market, CONFIGS)
    for metric in METRICS:
        for stat, values in summarise(run.metrics[metric]).items():
            np.testing.assert_allclose(table[f"{metric}_{stat}"].to_numpy(), values, rtol=0,
                                       atol=0, err_msg=f"{metric}_{stat}")


def test_default_pass_columns_follow_objectives(table):
    o = InvestmentObjectives()
    for row in table.iter_rows(named=True):
        assert row["pass_vol"] == (abs(row["ann_vol_median"] - o.target_vol) <= o.vol_tolerance)
        # the config's own target: 0.10, 0.15 and 0.08 for the three configs
        assert row["pass_vol_own_target"] == (
            abs(row["ann_vol_median"] - row["target_vol"]) <= o.vol_tolerance
        )
        assert row["pass_sharpe"] == (row["sharpe_median"] >= o.min_sharpe)
        assert row["pass_drawdown"] == (row["max_drawdown_median"] <= o.max_drawdown)
        assert row["pass_var95"] == (row["var95_median"] <= o.max_var95)
        assert row["pass_cvar95"] == (row["cvar95_median"] <= o.max_cvar95)
        assert row["pass_cost"] == (row["cost_drag_median"] <= o.max_cost_bps / 1e4)
        # pass_vol_own_target is reported, not part of the mandate
        assert row["meets_objectives"] == all(row[c] for c in MANDATE)


@pytest.mark.parametrize(
    ("column", "metric", "field", "scale"),
    [
        ("pass_sharpe", "sharpe_median", "min_sharpe", 1.0),
        ("pass_drawdown", "max_drawdown_median", "max_drawdown", 1.0),
        ("pass_var95", "var95_median", "max_var95", 1.0),
        ("pass_cvar95", "cvar95_median", "max_cvar95", 1.0),
        ("pass_cost", "cost_drag_median", "max_cost_bps", 1e4),
    ],
)
def test_threshold_between_configs_flips_one_column(paths, table, column, metric, field, scale):
    # A threshold halfway between the best and worst config's median splits the rows;
    # everything else lenient, so meets_objectives follows this one column.
    values = table[metric].to_numpy()
    assert values.max() > values.min()
    threshold = float(values.min() + values.max()) / 2 * scale
    objectives = InvestmentObjectives(**{**LENIENT, field: threshold})
    flipped = evaluate(paths, CONFIGS, objectives)
    passes = values >= threshold if field == "min_sharpe" else values * scale <= threshold
    assert 0 < passes.sum() < len(CONFIGS)
    assert flipped[column].to_list() == passes.tolist()
    assert flipped["meets_objectives"].to_list() == passes.tolist()


def test_vol_target_flips_pass_vol(paths, table):
    vols = table["ann_vol_median"].to_numpy()
    gap = np.min(np.abs(vols[1:] - vols[0]))
    objectives = InvestmentObjectives(**{**LENIENT, "target_vol": float(vols[0]),
                                         "vol_tolerance": float(gap / 2)})
    flipped = evaluate(paths, CONFIGS, objectives)
    assert flipped["pass_vol"].to_list() == [True, False, False]
    assert flipped["meets_objectives"].to_list() == [True, False, False]


def test_evaluate_needs_configs(paths):
    with pytest.raises(ValueError, match="at least one"):
        evaluate(paths, [])


def test_same_seed_gives_identical_frames(table):
    again = evaluate(_paths(), CONFIGS)
    assert again.equals(table)
    other = evaluate(_paths(seed=18), CONFIGS)
    assert not other.equals(table)


def test_risk_aversion_is_a_nullable_float_column(paths):
    # The inverse rules carry a null risk_aversion; a table of inverse rules only is
    # still Float64 (not polars' Null type), so tables stack and write to Parquet.
    inverse_only = evaluate(paths, [CONFIGS[0]])
    assert inverse_only.schema["risk_aversion"] == pl.Float64
    assert inverse_only["risk_aversion"].to_list() == [None]


def test_chunked_evaluation_equals_one_chunk(paths) -> None:
    whole = evaluate(paths, CONFIGS)
    one_at_a_time = evaluate(paths, CONFIGS, chunk_bytes=1)
    assert one_at_a_time.equals(whole)


def test_chunk_size_follows_the_memory_budget(paths) -> None:
    months = len(paths.month_ends) - paths.warmup_months
    per_config = 10 * 8 * paths.n_paths * months
    assert configs_per_chunk(paths, chunk_bytes=per_config * 7 + 5) == 7
    assert configs_per_chunk(paths, chunk_bytes=1) == 1
