"""The SQL models on small hand-computed tables, on engine-evaluated data, and the SQL
style rules (dbt's conventions, docs/reports.md).

Hand-computed tests build literal source tables with :func:`evaluations` /
:func:`configs` / :func:`history` and write the expected values out, each with a comment
on how it was computed. Every expected value is chosen so that a plausible bug changes it:
a band edge moved by one step, a wrong sort direction or tie-break, the risk_aversion
filter left out, pass_vol_own_target counted among the mandate checks.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from dbt_like_reports.loader import MODELS_DIR, discover_models, run_models
from dbt_like_reports.schema_tests import SCHEMA_PATH, load_schema, run_test
from engine.analysis.scoring import PENALTIES

MARTS = {"robustness_leaderboard", "parameter_sensitivity", "weight_window_interaction",
         "scenario_comparison", "constraint_compliance"}

METRICS = ["ann_return", "ann_vol", "sharpe", "sortino", "max_drawdown", "var95", "cvar95",
           "turnover", "cost_drag", "tracking_error", "avg_equity_weight"]
PASS_COLUMNS = ["pass_vol", "pass_vol_own_target", "pass_sharpe", "pass_drawdown",
                "pass_var95", "pass_cvar95", "pass_cost"]
MANDATE_CHECKS = [c for c in PASS_COLUMNS if c != "pass_vol_own_target"]
INVERSE = ("inverse_vol", "inverse_vol_squared")


# --- literal source tables -------------------------------------------------------------


PENALTY_COLUMNS = [f"penalty_{name}" for name in PENALTIES]


def _config_defaults(row: dict) -> dict:
    fn = row.get("weight_fn", "linear")
    return {
        "target_vol": 0.10, "weight_fn": fn, "vol_window_months": 12,
        "risk_aversion": None if fn in INVERSE else 1.0, "tc_bps": 10.0,
        "min_allocation": 0.0, "max_allocation": 1.0, "no_trade_band": 0.0,
    }


def evaluations(rows: list[dict]) -> pl.DataFrame:
    """A strategy_evaluations table: the given columns, every other one a fixed default
    (metrics 0.1, sharpe_mean from the row, pass flags true unless given)."""
    full = []
    for row in rows:
        values = {"scenario": row["scenario"], "config_id": row["config_id"],
                  **_config_defaults(row), "n_paths": 10}
        values.update({f"{m}_{s}": 0.1 for m in METRICS for s in ("mean", "median", "p5", "p95")})
        values.update({flag: True for flag in PASS_COLUMNS})
        values.update(row)
        values["meets_objectives"] = row.get(
            "meets_objectives", all(values[flag] for flag in MANDATE_CHECKS))
        full.append(values)
    return pl.DataFrame(full, schema_overrides={"risk_aversion": pl.Float64,
                                                "sharpe_mean": pl.Float64})


def configs(table: pl.DataFrame) -> pl.DataFrame:
    """The strategy_configs table of the configs in an evaluations table (round 0, lhs)."""
    return (
        table.select("config_id", "target_vol", "weight_fn", "vol_window_months",
                     "risk_aversion", "tc_bps", "min_allocation", "max_allocation",
                     "no_trade_band")
        .unique("config_id", keep="first", maintain_order=True)
        .with_columns(pl.lit(0).alias("round"), pl.lit("lhs").alias("proposer"))
        .select("config_id", "round", "proposer", pl.exclude("config_id", "round", "proposer"))
    )


def history(rows: list[dict], table: pl.DataFrame) -> pl.DataFrame:
    """An optimisation_history table: rows give config_id, objective, robustness, robust
    (any other score a default); parameters from the evaluations table."""
    params = configs(table).drop("min_allocation", "max_allocation", "no_trade_band")
    frame = pl.DataFrame(
        [{"evaluation_index": i + 1, "worst_scenario": "base",
          **dict.fromkeys(PENALTY_COLUMNS, 0.0), "penalty": 0.0, "feasible": True,
          "own_target_miss": 0.0, **row} for i, row in enumerate(rows)],
        schema_overrides={"objective": pl.Float64, "robustness": pl.Float64,
                          **dict.fromkeys(PENALTY_COLUMNS, pl.Float64),
                          "own_target_miss": pl.Float64},
    )
    frame = frame.join(params, on="config_id", how="left", maintain_order="left")
    return frame.with_columns(
        pl.col("objective").cum_max().alias("best_objective_so_far"),
        pl.lit("max_configs").alias("stop_reason"),
        pl.lit(None, dtype=pl.String).alias("optimum_at_edge"),
    )


def run(table: pl.DataFrame, history_rows: list[dict] | None = None) -> dict[str, pl.DataFrame]:
    rows = history_rows or [
        {"config_id": c, "objective": 0.0, "robustness": 0.0, "robust": False}
        for c in table["config_id"].unique(maintain_order=True)
    ]
    return run_models({"strategy_evaluations": table, "strategy_configs": configs(table),
                       "optimisation_history": history(rows, table)})


def _rows(table: pl.DataFrame, columns: list[str]) -> list[tuple]:
    return list(table.select(columns).iter_rows())


# --- staging ----------------------------------------------------------------------------


def test_staging_casts_nan_to_null_and_keeps_risk_aversion_null():
    table = evaluations([
        {"scenario": "base", "config_id": "a", "weight_fn": "inverse_vol", "sharpe_mean": math.nan},
        {"scenario": "base", "config_id": "b", "weight_fn": "sigmoid", "risk_aversion": 2.0,
         "sharpe_mean": 0.4, "pass_vol_own_target": False},
    ])
    tables = run(table)
    staged = tables["stg_strategy_evaluations"]
    assert staged["sharpe_mean"].to_list() == [None, 0.4]
    assert staged["risk_aversion"].to_list() == [None, 2.0]
    assert staged["pass_vol_own_target"].to_list() == [True, False]
    staged_configs = tables["stg_strategy_configs"]
    assert staged_configs.columns == [
        "config_id", "round", "proposer", "target_vol", "weight_fn", "vol_window_months",
        "risk_aversion", "tc_bps", "min_allocation", "max_allocation", "no_trade_band"]
    assert staged_configs.schema["round"] == pl.Int64
    assert staged_configs["risk_aversion"].to_list() == [None, 2.0]


# --- int_scenario_best ------------------------------------------------------------------


SCENARIO_BEST_INPUT = [
    # base: b and c tie at 0.8 -> b (lowest config_id); d undefined (NaN) is never best.
    {"scenario": "base", "config_id": "a", "sharpe_mean": 0.5, "pass_vol_own_target": True},
    {"scenario": "base", "config_id": "c", "sharpe_mean": 0.8, "pass_vol": False,
     "pass_vol_own_target": False},
    {"scenario": "base", "config_id": "b", "sharpe_mean": 0.8, "pass_vol_own_target": True},
    {"scenario": "base", "config_id": "d", "sharpe_mean": math.nan, "pass_sharpe": False,
     "pass_vol_own_target": False},
    # bear: every Sharpe negative -> the least negative, c at -0.1, is best.
    {"scenario": "bear", "config_id": "a", "sharpe_mean": -0.2, "pass_vol_own_target": False},
    {"scenario": "bear", "config_id": "b", "sharpe_mean": -0.5, "pass_vol_own_target": False},
    {"scenario": "bear", "config_id": "c", "sharpe_mean": -0.1, "pass_cost": False,
     "pass_vol_own_target": False},
]


def test_int_scenario_best_is_the_argmax_with_ties_to_the_lowest_config_id():
    best = run(evaluations(SCENARIO_BEST_INPUT))["int_scenario_best"]
    # (scenario, best config, best, worst defined, configs with a defined sharpe_mean)
    assert _rows(best, best.columns) == [
        ("base", "b", 0.8, 0.5, 3),
        ("bear", "c", -0.1, -0.5, 3),
    ]


def test_scenario_comparison_on_a_hand_computed_table():
    table = run(evaluations(SCENARIO_BEST_INPUT))["scenario_comparison"]
    base, bear = table.iter_rows(named=True)
    # base: 4 rows; defined sharpe 0.5, 0.8, 0.8 -> median 0.8, mean 2.1 / 3 = 0.7,
    # spread 0.8 - 0.5 = 0.3. meets_objectives: a and b (c fails pass_vol, d pass_sharpe)
    # -> 2 of 4. pass_vol_own_target true for a and b -> 0.5; pass_vol false for c -> 0.75.
    assert (base["n_configs"], base["best_config_id"], base["n_meeting_objectives"]) == (4, "b", 2)
    np.testing.assert_allclose(
        [base["median_sharpe_mean"], base["mean_sharpe_mean"], base["sharpe_mean_spread"],
         base["share_meeting_objectives"], base["share_pass_vol_own_target"],
         base["share_pass_vol"], base["share_pass_sharpe"]],
        [0.8, 0.7, 0.3, 0.5, 0.5, 0.75, 0.75], rtol=1e-12)
    # bear: sharpe -0.2, -0.5, -0.1 -> median -0.2, spread -0.1 - (-0.5) = 0.4;
    # c fails pass_cost -> 2 of 3 meet; nobody meets its own target.
    assert (bear["n_configs"], bear["best_config_id"], bear["n_meeting_objectives"]) == (3, "c", 2)
    np.testing.assert_allclose(
        [bear["median_sharpe_mean"], bear["sharpe_mean_spread"],
         bear["share_pass_vol_own_target"], bear["share_pass_cost"]],
        [-0.2, 0.4, 0.0, 2 / 3], rtol=1e-12)


def test_a_scenario_whose_every_sharpe_is_null_keeps_its_row():
    """crash: both configs' Sharpe undefined (NaN, e.g. a flat excess return): no best
    config (int_scenario_best has no row for it), but scenario_comparison still lists the
    scenario with its counts and null Sharpe figures; an inner join would drop it."""
    crash = [{"scenario": "crash", "config_id": c, "sharpe_mean": math.nan} for c in "ab"]
    tables = run(evaluations(SCENARIO_BEST_INPUT + crash))
    assert tables["int_scenario_best"]["scenario"].to_list() == ["base", "bear"]
    comparison = tables["scenario_comparison"]
    assert comparison["scenario"].to_list() == ["base", "bear", "crash"]
    row = comparison.row(2, named=True)
    assert row["n_configs"] == 2 and row["n_meeting_objectives"] == 2
    assert [row[c] for c in ("best_config_id", "best_sharpe_mean", "worst_sharpe_mean",
                             "sharpe_mean_spread", "median_sharpe_mean", "mean_sharpe_mean")
            ] == [None] * 6


# --- bands, parameter_sensitivity, weight_window_interaction -----------------------------

# One scenario, six configs (sharpe_mean 0, 2, 2, 6, 5, 3: mean 3, total SS
# 9 + 1 + 1 + 9 + 4 + 0 = 24). Values sit on band edges so that a moved edge changes a
# share: target_vol 0.08 and 0.17, vol_window 11/12 and 17/18, risk_aversion 1.4 and 4.1.
# b is an inverse rule still carrying risk_aversion 1.0 (as the engine wrote it before
# risk_aversion became null for the inverse rules): its band must be null all the same.
SENSITIVITY_INPUT = [
    {"config_id": "a", "weight_fn": "inverse_vol", "target_vol": 0.06,
     "vol_window_months": 6, "risk_aversion": None, "sharpe_mean": 0.0},
    {"config_id": "b", "weight_fn": "inverse_vol", "target_vol": 0.08,
     "vol_window_months": 11, "risk_aversion": 1.0, "sharpe_mean": 2.0},
    {"config_id": "c", "weight_fn": "linear", "target_vol": 0.10,
     "vol_window_months": 12, "risk_aversion": 1.0, "sharpe_mean": 2.0},
    {"config_id": "d", "weight_fn": "linear", "target_vol": 0.06,
     "vol_window_months": 17, "risk_aversion": 1.4, "sharpe_mean": 6.0},
    {"config_id": "e", "weight_fn": "sigmoid", "target_vol": 0.15,
     "vol_window_months": 18, "risk_aversion": 1.0, "sharpe_mean": 5.0},
    {"config_id": "f", "weight_fn": "sigmoid", "target_vol": 0.17,
     "vol_window_months": 24, "risk_aversion": 4.1, "sharpe_mean": 3.0},
]


def _sensitivity_tables() -> dict[str, pl.DataFrame]:
    return run(evaluations([{"scenario": "base", **row} for row in SENSITIVITY_INPUT]))


def test_bands_on_their_edges():
    bands = _sensitivity_tables()["int_config_parameter_bands"]
    assert _rows(bands, ["config_id", "target_vol_band", "vol_window_band",
                         "risk_aversion_band"]) == [
        ("a", "0.05-0.08", "6-11m", None),
        ("b", "0.08-0.11", "6-11m", None),      # 0.08 is left-closed; inverse: no band
        ("c", "0.08-0.11", "12-17m", "0.5-1.4"),
        ("d", "0.05-0.08", "12-17m", "1.4-2.3"),  # 17 months still 12-17m; 1.4 left-closed
        ("e", "0.14-0.17", "18-24m", "0.5-1.4"),
        ("f", "0.17-0.20", "18-24m", "4.1-5.0"),
    ]


def test_parameter_sensitivity_on_a_hand_computed_table():
    table = _sensitivity_tables()["parameter_sensitivity"]
    # risk_aversion over c, d, e, f only (linear, sigmoid): sharpe 2, 6, 5, 3, mean 4,
    #   total 4 + 4 + 1 + 1 = 10; bands {c, e} mean 3.5, {d} 6, {f} 3:
    #   between 2 * 0.25 + 4 + 1 = 5.5 -> 0.55.
    # vol_window_months: {a, b} mean 1, {c, d} mean 4, {e, f} mean 4:
    #   between 2 * 4 + 2 * 1 + 2 * 1 = 12 -> 12 / 24 = 0.5.
    # weight_fn: inverse {a, b} mean 1, linear {c, d} 4, sigmoid {e, f} 4 -> 12 / 24 = 0.5,
    #   tied with vol_window_months: the parameter name breaks the tie.
    # target_vol: {a, d} mean 3, {b, c} mean 2, {e} 5, {f} 3:
    #   between 0 + 2 * 1 + 4 + 0 = 6 -> 6 / 24 = 0.25.
    expected = [
        # parameter, share, rank, n_levels, n_configs, between SS, total SS
        ("risk_aversion", 0.55, 1, 3, 4, 5.5, 10.0),
        ("vol_window_months", 0.5, 2, 3, 6, 12.0, 24.0),
        ("weight_fn", 0.5, 3, 3, 6, 12.0, 24.0),
        ("target_vol", 0.25, 4, 4, 6, 6.0, 24.0),
    ]
    assert table["scenario"].to_list() == ["base"] * 4
    assert table["parameter"].to_list() == [row[0] for row in expected]
    assert _rows(table, ["rank_in_scenario", "n_levels", "n_configs"]) == [
        row[2:5] for row in expected]
    np.testing.assert_allclose(
        table.select("main_effect_share", "between_sum_squares", "total_sum_squares").to_numpy(),
        [[row[1], row[5], row[6]] for row in expected], rtol=1e-12, atol=1e-15)


def test_parameter_sensitivity_has_no_tc_bps_even_when_it_varies():
    rows = [{"scenario": "base", **row, "tc_bps": 5.0 * i}
            for i, row in enumerate(SENSITIVITY_INPUT)]
    table = run(evaluations(rows))["parameter_sensitivity"]
    assert set(table["parameter"]) == {"weight_fn", "target_vol", "vol_window_months",
                                       "risk_aversion"}


def test_a_scenario_without_linear_or_sigmoid_configs_has_no_risk_aversion_row():
    rows = [{"scenario": "base", **row} for row in SENSITIVITY_INPUT[:2]]
    table = run(evaluations(rows))["parameter_sensitivity"]
    assert sorted(table["parameter"]) == ["target_vol", "vol_window_months", "weight_fn"]


def test_weight_window_interaction_on_a_hand_computed_table():
    table = evaluations([
        {"scenario": "base", "config_id": "a", "weight_fn": "inverse_vol",
         "vol_window_months": 6, "sharpe_mean": 0.3},
        {"scenario": "base", "config_id": "b", "weight_fn": "inverse_vol",
         "vol_window_months": 11, "sharpe_mean": 0.5},
        {"scenario": "base", "config_id": "c", "weight_fn": "inverse_vol",
         "vol_window_months": 12, "sharpe_mean": 0.7},
        {"scenario": "base", "config_id": "d", "weight_fn": "linear",
         "vol_window_months": 17, "sharpe_mean": 1.0},
        {"scenario": "base", "config_id": "e", "weight_fn": "linear",
         "vol_window_months": 18, "sharpe_mean": 0.2},
        {"scenario": "base", "config_id": "f", "weight_fn": "linear",
         "vol_window_months": 24, "sharpe_mean": math.nan},
        {"scenario": "bear", "config_id": "a", "weight_fn": "inverse_vol",
         "vol_window_months": 6, "sharpe_mean": -0.4},
    ])
    interaction = run(table)["weight_window_interaction"]
    # base inverse_vol 6-11m: a, b -> (0.3 + 0.5) / 2 = 0.4; 12-17m: c alone 0.7.
    # base linear 12-17m: d (17 months) 1.0; 18-24m: e 0.2 (f undefined, left out).
    # rows ordered by scenario, weight_fn, band (6-11m before 12-17m, not as text).
    assert _rows(interaction, ["scenario", "weight_fn", "vol_window_band", "n_configs"]) == [
        ("base", "inverse_vol", "6-11m", 2),
        ("base", "inverse_vol", "12-17m", 1),
        ("base", "linear", "12-17m", 1),
        ("base", "linear", "18-24m", 1),
        ("bear", "inverse_vol", "6-11m", 1),
    ]
    np.testing.assert_allclose(interaction["mean_sharpe_mean"], [0.4, 0.7, 1.0, 0.2, -0.4],
                               rtol=1e-12)


BAND_LABELS = ["0.05-0.08", "0.08-0.11", "0.11-0.14", "0.14-0.17", "0.17-0.20",
               "6-11m", "12-17m", "18-24m",
               "0.5-1.4", "1.4-2.3", "2.3-3.2", "3.2-4.1", "4.1-5.0"]


def _code(sql: str) -> str:
    return "\n".join(line.split("--")[0] for line in sql.splitlines())


def test_the_bands_are_written_once():
    """Sensitivity and interaction read one band definition: int_config_parameter_bands."""
    models = discover_models(MODELS_DIR)
    for name in ("parameter_sensitivity", "weight_window_interaction"):
        assert models[name].refs == ("int_config_parameter_bands",)
    for name, model in models.items():
        code = _code(model.sql)
        found = [label for label in BAND_LABELS if f"'{label}'" in code]
        if name == "int_config_parameter_bands":
            assert found == BAND_LABELS
        else:
            assert found == [], name


# --- robustness_leaderboard ---------------------------------------------------------------

LEADERBOARD_EVALUATIONS = [
    {"scenario": "base", "config_id": "c1", "sharpe_mean": 0.4},
    {"scenario": "bear", "config_id": "c1", "sharpe_mean": -0.2},
    {"scenario": "base", "config_id": "c2", "weight_fn": "inverse_vol", "sharpe_mean": 0.9},
    {"scenario": "bear", "config_id": "c2", "weight_fn": "inverse_vol", "sharpe_mean": 0.3},
    {"scenario": "base", "config_id": "c3", "weight_fn": "sigmoid", "risk_aversion": 2.5,
     "sharpe_mean": 0.6},
    {"scenario": "bear", "config_id": "c3", "weight_fn": "sigmoid", "risk_aversion": 2.5,
     "sharpe_mean": math.nan},
    {"scenario": "base", "config_id": "c4", "sharpe_mean": 0.1},
    {"scenario": "bear", "config_id": "c4", "sharpe_mean": -0.5},
]
# In evaluation order. c1 and c3 tie on objective 0.5. robust is the engine's flag; here
# as if the threshold were 0.9, so c3 (robustness 0.85) is not robust: copied, not
# recomputed.
LEADERBOARD_HISTORY = [
    {"config_id": "c3", "round": 0, "proposer": "lhs", "objective": 0.5, "robustness": 0.85,
     "robust": False, "penalty": 0.35, "feasible": False, "worst_scenario": "base"},
    {"config_id": "c2", "round": 0, "proposer": "lhs", "objective": 0.9, "robustness": 0.95,
     "robust": True, "penalty": 0.05, "feasible": False, "worst_scenario": "bear"},
    {"config_id": "c1", "round": 1, "proposer": "tpe", "objective": 0.5, "robustness": 0.5,
     "robust": False, "penalty": 0.0, "feasible": True, "worst_scenario": "bear"},
    {"config_id": "c4", "round": 1, "proposer": "bedrock", "objective": -0.2,
     "robustness": -0.2, "robust": False, "penalty": 0.0, "feasible": True,
     "worst_scenario": "bear"},
]


def _leaderboard() -> tuple[pl.DataFrame, pl.DataFrame]:
    table = evaluations(LEADERBOARD_EVALUATIONS)
    tables = run(table, LEADERBOARD_HISTORY)
    return tables["robustness_leaderboard"], tables["stg_optimisation_history"]


def test_leaderboard_on_a_hand_computed_table():
    board, _ = _leaderboard()
    assert board.columns == [
        "rank", "config_id", "round", "proposer", "objective", "robustness", "robust",
        "worst_scenario", *PENALTY_COLUMNS, "penalty", "feasible", "own_target_miss",
        "n_scenarios_meeting", "n_scenarios", "near_duplicate_of", "best_of_weight_fn",
        "weight_fn", "target_vol", "vol_window_months", "risk_aversion", "tc_bps",
        "worst_sharpe_mean", "mean_sharpe_mean"]
    # every pass flag true by default: each config meets the mandate in both scenarios
    assert board["n_scenarios_meeting"].to_list() == [2, 2, 2, 2]
    # c2 inverse_vol, c3 sigmoid, c1 and c4 linear (c1 ranks above c4); c4 repeats c1
    # (both linear 10%, 12m, risk aversion 1.0).
    assert board["best_of_weight_fn"].to_list() == [True, True, True, False]
    assert board["near_duplicate_of"].to_list() == [None, None, None, "c1"]
    # objective desc: c2 0.9; c1 and c3 tie at 0.5 -> c1 first (config_id); c4 -0.2.
    # worst/mean sharpe_mean: c2 (0.3, 0.6); c1 (-0.2, 0.1); c3 (0.6, 0.6: its bear NaN
    # is undefined and skipped); c4 (-0.5, -0.2).
    assert _rows(board, ["rank", "config_id", "round", "proposer", "robust", "feasible",
                         "worst_scenario", "weight_fn", "risk_aversion"]) == [
        (1, "c2", 0, "lhs", True, False, "bear", "inverse_vol", None),
        (2, "c1", 1, "tpe", False, True, "bear", "linear", 1.0),
        (3, "c3", 0, "lhs", False, False, "base", "sigmoid", 2.5),
        (4, "c4", 1, "bedrock", False, True, "bear", "linear", 1.0),
    ]
    np.testing.assert_allclose(
        board.select("objective", "robustness", "penalty", "worst_sharpe_mean",
                     "mean_sharpe_mean").to_numpy(),
        [[0.9, 0.95, 0.05, 0.3, 0.6],
         [0.5, 0.5, 0.0, -0.2, 0.1],
         [0.5, 0.85, 0.35, 0.6, 0.6],
         [-0.2, -0.2, 0.0, -0.5, -0.2]], rtol=1e-12, atol=1e-15)


def test_near_duplicates_are_collapsed_onto_the_better_config():
    # linear configs, all 12m and risk aversion 1.0 unless given; ranked by objective:
    # a (0.10), b (0.104: within 0.005 of a), c (0.106: within 0.005 of b but 0.006 from
    # a, so b's), d (0.10 but 14m: 2 months away), e (0.10, risk aversion 1.3: 0.3 away),
    # f (0.10, 13m, risk aversion 1.2: within every tolerance of a), g (sigmoid: other fn).
    specs = {"a": {}, "b": {"target_vol": 0.104}, "c": {"target_vol": 0.106},
             "d": {"vol_window_months": 14}, "e": {"risk_aversion": 1.3},
             "f": {"vol_window_months": 13, "risk_aversion": 1.2},
             "g": {"weight_fn": "sigmoid"}}
    table = evaluations([{"scenario": "base", "config_id": c, "sharpe_mean": 0.5, **spec}
                         for c, spec in specs.items()])
    rows = [{"config_id": c, "objective": 1.0 - 0.1 * i, "robustness": 1.0, "robust": True}
            for i, c in enumerate(specs)]
    board = run(table, rows)["robustness_leaderboard"]
    assert dict(zip(board["config_id"], board["near_duplicate_of"], strict=True)) == {
        "a": None, "b": "a", "c": "b", "d": None, "e": None, "f": "a", "g": None}
    assert board.filter(pl.col("best_of_weight_fn"))["config_id"].to_list() == ["a", "g"]


def test_leaderboard_order_is_the_history_ordered_by_objective():
    board, staged_history = _leaderboard()
    expected = staged_history.sort(["objective", "config_id"], descending=[True, False],
                                   nulls_last=True)
    assert board["config_id"].to_list() == expected["config_id"].to_list()
    assert board["rank"].to_list() == list(range(1, board.height + 1))


def test_an_unscored_config_ranks_last_and_the_schema_tests_pass():
    # c5 has no defined sharpe_mean in bear: the engine leaves it unscored (every score
    # null). It ranks last; the schema tests (nullable scores, null risk_aversion for the
    # inverse rule c2) pass on these tables.
    table = evaluations([
        *LEADERBOARD_EVALUATIONS,
        {"scenario": "base", "config_id": "c5", "sharpe_mean": 0.2},
        {"scenario": "bear", "config_id": "c5", "sharpe_mean": math.nan},
    ])
    unscored = {"config_id": "c5", "round": 1, "proposer": "tpe", "objective": None,
                "robustness": None, "robust": None, "penalty": None, "feasible": None,
                "worst_scenario": None, **dict.fromkeys(PENALTY_COLUMNS),
                "own_target_miss": None}
    tables = run(table, [*LEADERBOARD_HISTORY, unscored])
    board = tables["robustness_leaderboard"]
    assert board["config_id"].to_list() == ["c2", "c1", "c3", "c4", "c5"]
    assert board.row(4, named=True)["worst_sharpe_mean"] == 0.2
    schema = load_schema(SCHEMA_PATH)
    failures = {
        (name, test.name): run_test(test, tables[name], tables).failing_rows
        for name, model in schema.models.items() for test in model.all_tests
    }
    assert {key: n for key, n in failures.items() if n} == {}


def test_no_model_holds_a_robustness_threshold_or_recomputes_the_score():
    for name, model in discover_models(MODELS_DIR).items():
        code = _code(model.sql)
        assert not re.search(r"\b0?\.80?\b", code), name
        assert "robust" not in code or name in {"stg_optimisation_history",
                                                "robustness_leaderboard"}, name
    code = _code(discover_models(MODELS_DIR)["robustness_leaderboard"].sql)
    assert ">=" not in code and "min(robustness" not in code


# --- constraint_compliance --------------------------------------------------------------


def test_constraint_compliance_on_a_hand_computed_table():
    table = evaluations([
        # c1 base: every check passes, own target missed -> 6 of 6, meets.
        {"scenario": "base", "config_id": "c1", "pass_vol_own_target": False},
        # c1 bear: Sharpe fails -> 5, does not meet.
        {"scenario": "bear", "config_id": "c1", "pass_sharpe": False},
        # c2 base: only pass_cost (and its own target) -> 1: own target is not counted.
        {"scenario": "base", "config_id": "c2", "pass_vol": False, "pass_sharpe": False,
         "pass_drawdown": False, "pass_var95": False, "pass_cvar95": False},
        # c2 bear: everything -> 6, meets.
        {"scenario": "bear", "config_id": "c2"},
    ])
    compliance = run(table)["constraint_compliance"]
    assert _rows(compliance, ["config_id", "scenario", "pass_vol_own_target",
                              "meets_objectives", "n_objectives_passed",
                              "n_scenarios_meeting_objectives", "n_scenarios"]) == [
        ("c1", "base", False, True, 6, 1, 2),
        ("c1", "bear", True, False, 5, 1, 2),
        ("c2", "base", True, False, 1, 1, 2),
        ("c2", "bear", True, True, 6, 1, 2),
    ]
    assert compliance["target_vol"].to_list() == [0.10] * 4


# --- on the engine-evaluated sources ----------------------------------------------------


def test_every_model_runs_and_returns_rows(model_tables):
    assert set(model_tables) == set(discover_models(MODELS_DIR))
    assert MARTS <= set(model_tables)
    for name, table in model_tables.items():
        assert table.height > 0, name


def test_staging_keeps_every_row_and_column(sources, model_tables):
    for source in ("strategy_evaluations", "strategy_configs", "optimisation_history"):
        staged = model_tables[f"stg_{source}"]
        assert sorted(staged.columns) == sorted(sources[source].columns), source
        # no NaN in this data: staging is a pure cast here
        assert staged.equals(sources[source].select(staged.columns)), source


def test_leaderboard_on_engine_data_follows_the_history(sources, model_tables):
    board = model_tables["robustness_leaderboard"]
    history = sources["optimisation_history"]
    assert board.height == history.height
    expected = history.sort(["objective", "config_id"], descending=[True, False])
    assert board["config_id"].to_list() == expected["config_id"].to_list()
    joined = board.join(history, on="config_id", suffix="_history")
    for column in ("round", "proposer", "objective", "robustness", "robust", "worst_scenario",
                   "penalty", "feasible", "weight_fn", "target_vol", "vol_window_months",
                   "risk_aversion", "tc_bps"):
        assert joined[column].equals(joined[f"{column}_history"], null_equal=True), column
    assert board.filter(pl.col("weight_fn").is_in(INVERSE))["risk_aversion"].null_count() \
        == board.filter(pl.col("weight_fn").is_in(INVERSE)).height
    per_config = (
        sources["strategy_evaluations"].group_by("config_id")
        .agg(pl.col("sharpe_mean").min().alias("lo"), pl.col("sharpe_mean").mean().alias("avg"))
    )
    check = board.join(per_config, on="config_id")
    np.testing.assert_allclose(check["worst_sharpe_mean"], check["lo"], rtol=1e-12)
    np.testing.assert_allclose(check["mean_sharpe_mean"], check["avg"], rtol=1e-12)


def test_sensitivity_and_interaction_agree_on_the_vol_window_bands(model_tables):
    """Both read int_config_parameter_bands: the configs per band match in every scenario."""
    interaction = model_tables["weight_window_interaction"]
    bands = model_tables["int_config_parameter_bands"].filter(pl.col("sharpe_mean").is_not_null())
    per_band = bands.group_by("scenario", "vol_window_band").len().sort("scenario",
                                                                      "vol_window_band")
    summed = (interaction.group_by("scenario", "vol_window_band")
              .agg(pl.col("n_configs").sum().cast(pl.UInt32).alias("len"))
              .sort("scenario", "vol_window_band"))
    assert summed.equals(per_band)
    sensitivity = model_tables["parameter_sensitivity"].filter(
        pl.col("parameter") == "vol_window_months").sort("scenario")
    n_bands = per_band.group_by("scenario").len().sort("scenario")
    assert sensitivity["n_levels"].to_list() == n_bands["len"].to_list()


def test_scenario_comparison_matches_polars(sources, model_tables):
    evaluations_ = sources["strategy_evaluations"]
    expected = (
        evaluations_.group_by("scenario")
        .agg(
            pl.len().alias("n_configs"),
            pl.col("sharpe_mean").max().alias("best"),
            pl.col("sharpe_mean").median().alias("median"),
            pl.col("sharpe_mean").min().alias("worst"),
            pl.col("meets_objectives").sum().alias("n_meeting"),
            pl.col("pass_vol_own_target").mean().alias("share_own"),
            pl.col("config_id").sort_by("sharpe_mean", descending=True).first().alias("best_id"),
        )
        .sort("scenario")
    )
    table = model_tables["scenario_comparison"]
    assert table["scenario"].to_list() == expected["scenario"].to_list()
    assert table["n_configs"].to_list() == expected["n_configs"].to_list()
    assert table["n_meeting_objectives"].to_list() == expected["n_meeting"].to_list()
    assert table["best_config_id"].to_list() == expected["best_id"].to_list()
    np.testing.assert_allclose(
        table.select("best_sharpe_mean", "median_sharpe_mean", "worst_sharpe_mean",
                     "share_pass_vol_own_target").to_numpy(),
        expected.select("best", "median", "worst", "share_own").to_numpy(), rtol=1e-12)


def test_constraint_compliance_counts_scenarios_meeting_objectives(sources, model_tables):
    evaluations_ = sources["strategy_evaluations"]
    table = model_tables["constraint_compliance"]
    assert table.height == evaluations_.height
    merged = table.join(evaluations_, on=["config_id", "scenario"], suffix="_source")
    for flag in [*PASS_COLUMNS, "meets_objectives"]:
        assert merged[flag].equals(merged[f"{flag}_source"]), flag
    expected = evaluations_.group_by("config_id").agg(
        pl.col("meets_objectives").sum().alias("n_meeting"))
    check = table.join(expected, on="config_id")
    assert (check["n_scenarios_meeting_objectives"] == check["n_meeting"]).all()
    assert (table["n_objectives_passed"]
            == table.select(pl.sum_horizontal(MANDATE_CHECKS)).to_series()).all()


def test_a_scenario_with_a_constant_metric_has_zero_sensitivity(sources):
    evaluations_ = sources["strategy_evaluations"].with_columns(
        pl.when(pl.col("scenario") == "bull").then(pl.lit(0.7))
        .otherwise(pl.col("sharpe_mean")).alias("sharpe_mean")
    )
    tables = run_models({**sources, "strategy_evaluations": evaluations_})
    bull = tables["parameter_sensitivity"].filter(pl.col("scenario") == "bull")
    assert bull.height == 4
    assert (bull["main_effect_share"] == 0.0).all()


# --- SQL style (dbt conventions, docs/reports.md) -----------------------------------------

MODELS = discover_models(MODELS_DIR)
SOURCES = ("strategy_evaluations", "strategy_configs", "optimisation_history")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_follows_the_sql_style(name):
    model = MODELS[name]
    code = _code(model.sql)
    assert code == code.lower(), "lowercase SQL (comments may name Python objects)"
    assert code.strip().endswith("select * from final"), "ends with select * from final"
    # import CTEs first: one `<name> as (select * from {{ ref(...) }})` per ref, in front
    imports = re.findall(r"(\w+) as \(\s*select \* from \{\{ ref\('(\w+)'\) \}\}\s*\)", code)
    assert [ref for _, ref in imports] == list(model.refs)
    first_cte = re.search(r"\bwith\s+(\w+)\s+as", code)
    assert first_cte and first_cte.group(1) == imports[0][0]
    assert model.layer in {"staging", "intermediate", "marts"}
    prefix = {"staging": "stg_", "intermediate": "int_"}.get(model.layer)
    if prefix:
        assert name.startswith(prefix)
    else:
        assert not name.startswith(("stg_", "int_")), "marts are named by entity"


@pytest.mark.parametrize("name", sorted(n for n, m in MODELS.items() if m.layer == "staging"))
def test_staging_only_renames_and_casts(name):
    code = _code(MODELS[name].sql)
    for forbidden in (" join ", "group by", " where ", " over (", "union", "case when"):
        assert forbidden not in code, forbidden
    assert MODELS[name].refs in {(source,) for source in SOURCES}
    assert name == f"stg_{MODELS[name].refs[0]}"
