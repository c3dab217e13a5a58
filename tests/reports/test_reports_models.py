"""The SQL models on engine-generated data: agreement with engine.analysis.robustness, plain
references for the other marts, and the SQL style rules (STYLE.md item 9).

Reference values come from engine.analysis.robustness (normalised_scores, robustness_scores,
best_per_scenario, parameter_sensitivity for weight_fn) or from plain polars/Python
re-computations written out in the tests.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from dbt_like_reports.loader import MODELS_DIR, discover_models, run_models
from engine.analysis.robustness import (
    best_per_scenario,
    interaction_table,
    normalised_scores,
    parameter_sensitivity,
    robustness_scores,
)
from engine.objectives import InvestmentObjectives

RTOL = 1e-12

MARTS = {"robustness_leaderboard", "parameter_sensitivity", "scenario_comparison",
         "constraint_compliance"}


def _assert_close(actual: pl.Series, expected: pl.Series) -> None:
    np.testing.assert_allclose(
        actual.cast(pl.Float64).to_numpy(), expected.cast(pl.Float64).to_numpy(),
        rtol=RTOL, atol=0.0,
    )


def _engine_parity(evaluations: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> None:
    """The SQL models agree with engine.analysis.robustness on ``evaluations``."""
    engine_norm = normalised_scores(evaluations).sort("scenario", "config_id")
    sql_norm = tables["int_config_relative_performance"].sort("scenario", "config_id")
    assert sql_norm.select("scenario", "config_id").equals(
        engine_norm.select("scenario", "config_id"))
    assert (sql_norm["normalised_score"].is_null() == engine_norm["normalised_score"].is_null()
            ).all()
    defined = engine_norm["normalised_score"].is_not_null()
    _assert_close(sql_norm["normalised_score"].filter(defined),
                  engine_norm["normalised_score"].filter(defined))

    engine_best = best_per_scenario(evaluations).sort("scenario")
    sql_best = tables["int_scenario_best"].sort("scenario")
    assert sql_best["scenario"].to_list() == engine_best["scenario"].to_list()
    assert sql_best["config_id"].to_list() == engine_best["config_id"].to_list()
    _assert_close(sql_best["best_sharpe_mean"], engine_best["best_sharpe_mean"])

    engine_robust = robustness_scores(evaluations)
    board = tables["robustness_leaderboard"]
    assert board["config_id"].to_list() == engine_robust["config_id"].to_list()
    assert board["rank"].to_list() == engine_robust["rank"].to_list()
    assert board["robust"].to_list() == engine_robust["robust"].to_list()
    assert board["worst_scenario"].to_list() == engine_robust["worst_scenario"].to_list()
    assert board["n_scenarios"].to_list() == engine_robust["n_scenarios"].to_list()
    _assert_close(board["robustness_score"], engine_robust["robustness_score"])


# --- on the engine-generated sources ----------------------------------------------------


def test_every_model_runs_and_returns_rows(model_tables):
    assert set(model_tables) == set(discover_models(MODELS_DIR))
    assert MARTS <= set(model_tables)
    for name, table in model_tables.items():
        assert table.height > 0, name


def test_staging_keeps_every_row_and_column(sources, model_tables):
    evaluations = sources["strategy_evaluations"]
    staged = model_tables["stg_strategy_evaluations"]
    assert staged.columns == evaluations.columns
    assert staged.equals(evaluations)  # no NaN in this data: staging is a pure cast here
    assert model_tables["stg_strategy_configs"].equals(sources["strategy_configs"])


def test_models_agree_with_engine_robustness(sources, model_tables):
    _engine_parity(sources["strategy_evaluations"], model_tables)


def test_leaderboard_carries_the_config_parameters_and_sharpe_summary(sources, model_tables):
    board = model_tables["robustness_leaderboard"]
    configs = sources["strategy_configs"]
    joined = board.join(configs, on="config_id", suffix="_config")
    for column in ("sample_index", "target_vol", "weight_fn", "vol_window_months",
                   "risk_aversion", "tc_bps"):
        assert joined[column].equals(joined[f"{column}_config"], null_equal=True), column
    per_config = (
        sources["strategy_evaluations"].group_by("config_id")
        .agg(pl.col("sharpe_mean").min().alias("lo"), pl.col("sharpe_mean").mean().alias("avg"))
    )
    check = board.join(per_config, on="config_id")
    _assert_close(check["worst_sharpe_mean"], check["lo"])
    np.testing.assert_allclose(check["mean_sharpe_mean"], check["avg"], rtol=1e-14)


def test_leaderboard_threshold_is_the_objectives_default():
    # The SQL hard-codes the threshold: polars SQL has no parameters.
    sql = discover_models(MODELS_DIR)["robustness_leaderboard"].sql
    assert InvestmentObjectives().robustness_threshold == 0.80
    assert ">= 0.80 as robust" in sql


def _eta_squared(values: list[float], levels: list[str]) -> float:
    """Plain-Python correlation ratio: sum n_l (mean_l - mean)^2 / sum (x - mean)^2."""
    mean = sum(values) / len(values)
    total = sum((x - mean) ** 2 for x in values)
    groups: dict[str, list[float]] = {}
    for x, level in zip(values, levels, strict=True):
        groups.setdefault(level, []).append(x)
    between = sum(len(g) * (sum(g) / len(g) - mean) ** 2 for g in groups.values())
    return between / total if total > 0 else 0.0


def _band(value: float, edges: list[float], labels: list[str]) -> str:
    """Left-closed bands: the first label below edges[0], the last at or above edges[-1]."""
    for edge, label in zip(edges, labels, strict=False):
        if value < edge:
            return label
    return labels[-1]


BANDS = {
    "vol_window_months": ([12, 18], ["6-11m", "12-17m", "18-24m"]),
    "target_vol": ([0.08, 0.11, 0.14, 0.17],
                   ["0.05-0.08", "0.08-0.11", "0.11-0.14", "0.14-0.17", "0.17-0.20"]),
    "risk_aversion": ([1.4, 2.3, 3.2, 4.1],
                      ["0.5-1.4", "1.4-2.3", "2.3-3.2", "3.2-4.1", "4.1-5.0"]),
    "tc_bps": ([4, 8, 12, 16], ["0-4", "4-8", "8-12", "12-16", "16-20"]),
}


def test_parameter_sensitivity_matches_a_plain_reference(sources, model_tables):
    evaluations = sources["strategy_evaluations"]
    sensitivity = model_tables["parameter_sensitivity"]
    assert sensitivity.height == evaluations["scenario"].n_unique() * 5
    for row in sensitivity.iter_rows(named=True):
        frame = evaluations.filter(pl.col("scenario") == row["scenario"])
        values = frame["sharpe_mean"].to_list()
        parameter = row["parameter"]
        if parameter == "weight_fn":
            levels = frame["weight_fn"].to_list()
        else:
            edges, labels = BANDS[parameter]
            levels = [_band(v, edges, labels) for v in frame[parameter].to_list()]
        expected = _eta_squared(values, levels)
        assert row["main_effect_share"] == pytest.approx(expected, rel=1e-10, abs=1e-15)
        assert row["n_levels"] == len(set(levels))
        assert 0.0 <= row["main_effect_share"] <= 1.0 + 1e-12


def test_parameter_sensitivity_of_weight_fn_matches_the_engine(sources, model_tables):
    # weight_fn has categorical levels in both, so eta^2 is the same quantity; the sums
    # run in a different order, hence rtol 1e-10 rather than 1e-12.
    engine = parameter_sensitivity(sources["strategy_evaluations"]).filter(
        pl.col("parameter") == "weight_fn").sort("scenario")
    sql = model_tables["parameter_sensitivity"].filter(
        pl.col("parameter") == "weight_fn").sort("scenario")
    np.testing.assert_allclose(sql["main_effect_share"], engine["main_effect_share"],
                               rtol=1e-10)


def test_vol_window_bands_are_the_engine_interaction_bands(sources):
    labels = set(interaction_table(sources["strategy_evaluations"])["vol_window_band"])
    assert labels <= set(BANDS["vol_window_months"][1])
    sql = discover_models(MODELS_DIR)["parameter_sensitivity"].sql
    for label in BANDS["vol_window_months"][1]:
        assert f"'{label}'" in sql


def test_scenario_comparison_matches_polars(sources, model_tables):
    evaluations = sources["strategy_evaluations"]
    expected = (
        evaluations.group_by("scenario")
        .agg(
            pl.len().alias("n_configs"),
            pl.col("sharpe_mean").max().alias("best"),
            pl.col("sharpe_mean").median().alias("median"),
            pl.col("sharpe_mean").min().alias("worst"),
            pl.col("meets_objectives").sum().alias("n_meeting"),
            pl.col("meets_objectives").mean().alias("share_meeting"),
            pl.col("pass_sharpe").mean().alias("share_sharpe"),
            pl.col("max_drawdown_mean").mean().alias("mdd"),
        )
        .sort("scenario")
    )
    table = model_tables["scenario_comparison"]
    assert table["scenario"].to_list() == expected["scenario"].to_list()
    assert table["n_configs"].to_list() == expected["n_configs"].to_list()
    assert table["n_meeting_objectives"].to_list() == expected["n_meeting"].to_list()
    _assert_close(table["best_sharpe_mean"], expected["best"])
    _assert_close(table["median_sharpe_mean"], expected["median"])
    _assert_close(table["worst_sharpe_mean"], expected["worst"])
    np.testing.assert_allclose(table["share_meeting_objectives"], expected["share_meeting"],
                               rtol=1e-14)
    np.testing.assert_allclose(table["share_pass_sharpe"], expected["share_sharpe"], rtol=1e-14)
    np.testing.assert_allclose(table["mean_max_drawdown"], expected["mdd"], rtol=1e-14)
    best = best_per_scenario(evaluations).sort("scenario")
    assert table["best_config_id"].to_list() == best["config_id"].to_list()


def test_constraint_compliance_counts_scenarios_meeting_objectives(sources, model_tables):
    evaluations = sources["strategy_evaluations"]
    table = model_tables["constraint_compliance"]
    assert table.height == evaluations.height
    flags = ["pass_vol", "pass_sharpe", "pass_drawdown", "pass_var95", "pass_cvar95",
             "pass_cost", "meets_objectives"]
    merged = table.join(evaluations, on=["config_id", "scenario"], suffix="_source")
    for flag in flags:
        assert merged[flag].equals(merged[f"{flag}_source"]), flag
    expected = evaluations.group_by("config_id").agg(
        pl.col("meets_objectives").sum().alias("n_meeting"))
    check = table.join(expected, on="config_id")
    assert (check["n_scenarios_meeting_objectives"] == check["n_meeting"]).all()
    assert (table["n_objectives_passed"]
            == table.select(pl.sum_horizontal(flags[:-1])).to_series()).all()


# --- edge cases, on engine data edited to produce them ----------------------------------


def test_nan_metric_ties_and_negative_sharpe_still_agree_with_the_engine(sources):
    evaluations = sources["strategy_evaluations"]
    first_config = evaluations["config_id"].sort()[0]
    edited = evaluations.with_columns(
        # bull: every config ties -> score 1 everywhere
        pl.when(pl.col("scenario") == "bull").then(pl.lit(0.7))
        # bear: all Sharpe negative
        .when(pl.col("scenario") == "bear").then(pl.col("sharpe_mean") - 5.0)
        # one undefined Sharpe (NaN) in base: that config drops out of the leaderboard
        .when((pl.col("scenario") == "base") & (pl.col("config_id") == first_config))
        .then(pl.lit(math.nan))
        .otherwise(pl.col("sharpe_mean"))
        .alias("sharpe_mean")
    )
    tables = run_models({**sources, "strategy_evaluations": edited})
    _engine_parity(edited, tables)
    norm = tables["int_config_relative_performance"]
    assert (norm.filter(pl.col("scenario") == "bull")["normalised_score"] == 1.0).all()
    assert first_config not in tables["robustness_leaderboard"]["config_id"].to_list()
    assert tables["robustness_leaderboard"].height == evaluations["config_id"].n_unique() - 1
    assert tables["stg_strategy_evaluations"]["sharpe_mean"].null_count() == 1


def test_a_scenario_with_a_constant_metric_has_zero_sensitivity(sources):
    evaluations = sources["strategy_evaluations"].with_columns(
        pl.when(pl.col("scenario") == "bull").then(pl.lit(0.7))
        .otherwise(pl.col("sharpe_mean")).alias("sharpe_mean")
    )
    tables = run_models({**sources, "strategy_evaluations": evaluations})
    bull = tables["parameter_sensitivity"].filter(pl.col("scenario") == "bull")
    assert bull.height == 5
    assert (bull["main_effect_share"] == 0.0).all()


# --- SQL style (STYLE.md item 9) --------------------------------------------------------

MODELS = discover_models(MODELS_DIR)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_follows_the_sql_style(name):
    model = MODELS[name]
    code = "\n".join(line.split("--")[0] for line in model.sql.splitlines())
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
    code = "\n".join(line.split("--")[0] for line in MODELS[name].sql.splitlines())
    for forbidden in (" join ", "group by", " where ", " over (", "union", "case when"):
        assert forbidden not in code, forbidden
    assert MODELS[name].refs in {("strategy_evaluations",), ("strategy_configs",)}
