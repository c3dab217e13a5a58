"""The agent's objective per config: robustness minus penalties for the mandate's limits."""

from __future__ import annotations

import polars as pl

from engine.analysis.mandate import relative_violation
from engine.analysis.robustness import robustness_scores
from engine.objectives import OBJECTIVE_CHECKS, InvestmentObjectives

PENALTIES: tuple[str, ...] = ("vol", "drawdown", "var95", "cvar95", "cost")
"""The penalised objectives, in column order (``penalty_<name>``): the mandate checks
``pass_<name>``; the minimum Sharpe is the one mandate check without a penalty."""


def violations(objectives: InvestmentObjectives) -> dict[str, pl.Expr]:
    """Each penalised objective's violation v >= 0 on one (scenario, config) row.

    Notes
    -----
    On the median-path figures of the row, as a fraction of the limit crossed
    (:func:`engine.analysis.mandate.relative_violation`), with [lo, hi] the mandate's
    vol band (target_vol -/+ vol_tolerance)::

        vol       max(0, lo - ann_vol_median) / lo + max(0, ann_vol_median - hi) / hi
        drawdown  max(0, max_drawdown_median - max_drawdown) / max_drawdown
        var95     max(0, var95_median - max_var95) / max_var95
        cvar95    max(0, cvar95_median - max_cvar95) / max_cvar95
        cost      max(0, cost_drag_median - c) / c,   c = max_cost_bps / 1e4 a year

    vol is judged against the MANDATE's target (what the committee asked for); the
    config's own target_vol is the rule's dial to land there, and its accuracy at it is
    the unpenalised diagnostic own_target_miss of :func:`score_configs`. A NaN figure
    (undefined on every path) is taken as null and adds no penalty; the penalised
    medians are defined whenever one path is.
    """
    limits = objectives.limits()
    return {name: relative_violation(pl.col(limits[f"pass_{name}"].figure), limits[f"pass_{name}"])
            for name in PENALTIES}


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
    penalty_vol, penalty_drawdown, penalty_var95, penalty_cvar95, penalty_cost, penalty,
    objective, feasible, own_target_miss, rank (1 = highest objective; ties by
    config_id).
    Configs without a defined mean Sharpe in every scenario are left out (as in
    :func:`engine.analysis.robustness.robustness_scores`).

    Notes
    -----
    With R the robustness (min over scenarios s of the relative Sharpe, best_s taken
    among the configs inside the mandate's vol band in s:
    :func:`engine.analysis.robustness.relative_scores`) and v_{k,s} the violations of
    :func:`violations`::

        penalty_k = max_s v_{k,s}            (the worst scenario of each objective)
        penalty   = sum_k penalty_k
        objective = R - penalty_weight * penalty

    A penalty grows linearly with the size of the violation, so configs that all miss a
    limit still rank by how far they miss it. feasible = (penalty == 0): every penalised
    limit met in every scenario. The minimum Sharpe is not penalised: the robustness
    term already rewards Sharpe relative to the best in-band rule, and a penalty on the
    worst scenario's Sharpe would reward the rules that hold least equity in a bear
    market. A minimum no config reaches is reported with the best achievable value
    (:func:`engine.analysis.mandate.limit_attainment`).

    own_target_miss = max_s |ann_vol_median - target_vol| (the config's own target):
    how well the rule hits what it aims for. A diagnostic, not penalised.
    """
    robustness = robustness_scores(
        evaluations, objectives.robustness_threshold, vol_band=objectives.vol_band
    ).select("config_id", "robustness", "worst_scenario", "robust")
    own_miss = (pl.col("ann_vol_median").fill_nan(None) - pl.col("target_vol")).abs()
    worst = evaluations.group_by("config_id").agg(
        *(expr.max().alias(f"penalty_{name}") for name, expr in violations(objectives).items()),
        own_miss.max().alias("own_target_miss"),
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
        .select("config_id", "robustness", "worst_scenario", "robust",
                *(f"penalty_{name}" for name in PENALTIES), "penalty", "objective",
                "feasible", "own_target_miss")
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
