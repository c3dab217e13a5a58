"""The agent's objective per config: robustness minus penalties for the mandate's limits."""

from __future__ import annotations

import polars as pl

from engine.analysis.robustness import robustness_scores
from engine.objectives import OBJECTIVE_CHECKS, InvestmentObjectives

PENALTIES: tuple[str, ...] = ("drawdown", "var95", "cvar95", "cost", "vol_accuracy")
"""The penalised objectives, in column order (``penalty_<name>``)."""


def violations(objectives: InvestmentObjectives) -> dict[str, pl.Expr]:
    """Each penalised objective's violation v >= 0 on one (scenario, config) row.

    Notes
    -----
    On the median-path figures of the row, as a fraction of the limit (so a violation
    of the same relative size weighs the same whatever the unit)::

        drawdown      max(0, max_drawdown_median - max_drawdown) / max_drawdown
        var95         max(0, var95_median - max_var95) / max_var95
        cvar95        max(0, cvar95_median - max_cvar95) / max_cvar95
        cost          max(0, cost_drag_median - c) / c,   c = max_cost_bps / 1e4 a year
        vol_accuracy  max(0, |ann_vol_median - target_vol| - vol_tolerance) / vol_tolerance

    vol_accuracy is judged against the config's OWN target_vol column (how well the
    rule hits what it aims for); the mandate's target vol is the pass_vol check and
    carries no penalty. A NaN figure (undefined on every path) is taken as null and
    adds no penalty; the penalised medians are defined whenever one path is.
    """
    o = objectives

    def excess(column: str | pl.Expr, limit: float) -> pl.Expr:
        value = pl.col(column) if isinstance(column, str) else column
        return (pl.max_horizontal(value.fill_nan(None) - limit, pl.lit(0.0))) / limit

    miss = (pl.col("ann_vol_median") - pl.col("target_vol")).abs()
    return {
        "drawdown": excess("max_drawdown_median", o.max_drawdown),
        "var95": excess("var95_median", o.max_var95),
        "cvar95": excess("cvar95_median", o.max_cvar95),
        "cost": excess("cost_drag_median", o.max_cost_bps / 1e4),
        "vol_accuracy": excess(miss, o.vol_tolerance),
    }


def score_configs(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> pl.DataFrame:
    """The composite objective of every config of a stacked evaluation table.

    Parameters
    ----------
    evaluations : the evaluate() tables of all scenarios stacked, one row per
        (scenario, config); needs sharpe_mean, target_vol and the median metrics.
    objectives : the limits, the robustness threshold and the penalty weight lambda.

    Returns
    -------
    One row per config, sorted by rank: config_id, robustness, worst_scenario, robust,
    penalty_drawdown, penalty_var95, penalty_cvar95, penalty_cost, penalty_vol_accuracy,
    penalty, objective, feasible, rank (1 = highest objective; ties by config_id).
    Configs without a defined mean Sharpe in every scenario are left out (as in
    :func:`engine.analysis.robustness.robustness_scores`).

    Notes
    -----
    With R the robustness (min over scenarios s of the relative Sharpe) and v_{k,s} the
    violations of :func:`violations`::

        penalty_k = max_s v_{k,s}            (the worst scenario of each objective)
        penalty   = sum_k penalty_k
        objective = R - penalty_weight * penalty

    A penalty grows linearly with the size of the violation, so configs that all miss a
    limit still rank by how far they miss it. feasible = (penalty == 0): every penalised
    limit met in every scenario. The minimum Sharpe is not penalised: the robustness
    term already rewards Sharpe, and no config may reach the mandate's level
    (:func:`unmet_objectives` reports that).
    """
    robustness = robustness_scores(evaluations, objectives.robustness_threshold).select(
        "config_id", "robustness", "worst_scenario", "robust"
    )
    worst = evaluations.group_by("config_id").agg(
        expr.max().alias(f"penalty_{name}") for name, expr in violations(objectives).items()
    )
    columns = [f"penalty_{name}" for name in PENALTIES]
    penalty = pl.sum_horizontal(pl.col(columns).fill_null(0.0))
    return (
        robustness.join(worst, on="config_id", how="left")
        .with_columns(penalty.alias("penalty"))
        .with_columns(
            (pl.col("robustness") - objectives.penalty_weight * pl.col("penalty")).alias(
                "objective"
            ),
            (pl.col("penalty") == 0.0).alias("feasible"),
        )
        .sort(["objective", "config_id"], descending=[True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"))
    )


def unmet_objectives(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> list[str]:
    """The pass columns (of :data:`engine.objectives.OBJECTIVE_CHECKS`, in that order) that
    no config meets in every scenario of the table.

    The checks are recomputed from ``objectives`` on the median figures, so the answer
    does not depend on the objectives the table was evaluated with. Only configs
    evaluated in every scenario count.
    """
    n_scenarios = evaluations["scenario"].n_unique()
    per_config = (
        evaluations.select("config_id", *objectives.pass_columns())
        .group_by("config_id")
        .agg(pl.len().alias("n"), *(pl.col(name).all() for name in OBJECTIVE_CHECKS))
        .filter(pl.col("n") == n_scenarios)
    )
    return [name for name in OBJECTIVE_CHECKS if not per_config[name].any()]
