"""A config against the mandate: per scenario, per limit, and the best any config achieves.

Every function reads the stacked evaluation table (engine.strategy.evaluate over all
scenarios: one row per (scenario, config)) and the limits of
:meth:`engine.objectives.InvestmentObjectives.limits`, on the median-path figures.
"""

from __future__ import annotations

import polars as pl

from engine.objectives import MANDATE_CHECKS, InvestmentObjectives, Limit


def shortfall(value: pl.Expr, limit: Limit) -> pl.Expr:
    """How far ``value`` lies outside [limit.low, limit.high], in the figure's unit.

    0 inside the interval; null where the value is null or NaN (undefined on every path).
    """
    value = value.fill_nan(None)
    below = pl.lit(0.0) if limit.low is None else pl.max_horizontal(limit.low - value, 0.0)
    above = pl.lit(0.0) if limit.high is None else pl.max_horizontal(value - limit.high, 0.0)
    return pl.when(value.is_null()).then(None).otherwise(below + above)


def relative_violation(value: pl.Expr, limit: Limit) -> pl.Expr:
    """The shortfall as a fraction of the edge it crosses: (value - high) / high above the
    interval, (low - value) / low below it, 0 inside, null where the value is undefined.

    Notes
    -----
    Dividing by the limit makes a miss of the same relative size weigh the same for
    every figure: a drawdown of 0.18 against 0.15 and a vol of 0.144 against a 0.12
    ceiling both give 0.2; a vol of 0.04 under a 0.08 floor gives 0.5. Both edges must
    be positive where they can be crossed (the objectives' ranges guarantee it: a low
    edge of 0 cannot be crossed by a vol).
    """
    value = value.fill_nan(None)
    terms = []
    if limit.low is not None and limit.low > 0.0:
        terms.append(pl.max_horizontal(limit.low - value, 0.0) / limit.low)
    if limit.high is not None:
        terms.append(pl.max_horizontal(value - limit.high, 0.0) / limit.high)
    total = pl.sum_horizontal(terms) if terms else pl.lit(0.0)
    return pl.when(value.is_null()).then(None).otherwise(total)


def mandate_figures(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> pl.DataFrame:
    """One row per (scenario, config, mandate check).

    Returns
    -------
    Columns scenario, config_id, check (of :data:`engine.objectives.MANDATE_CHECKS`),
    figure (the evaluate() column read), value, low, high (null where one-sided),
    shortfall (:func:`shortfall`; null where undefined) and met (shortfall == 0; an
    undefined figure fails).
    """
    frames = []
    for check, limit in objectives.limits().items():
        value = pl.col(limit.figure).cast(pl.Float64)
        frames.append(evaluations.select(
            "scenario", "config_id",
            pl.lit(check).alias("check"),
            pl.lit(limit.figure).alias("figure"),
            value.fill_nan(None).alias("value"),
            pl.lit(limit.low, dtype=pl.Float64).alias("low"),
            pl.lit(limit.high, dtype=pl.Float64).alias("high"),
            shortfall(value, limit).alias("shortfall"),
        ))
    return pl.concat(frames).with_columns(
        (pl.col("shortfall") == 0.0).fill_null(False).alias("met")
    )


def mandate_misses(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> pl.DataFrame:
    """Per (config, mandate check): how often and how far the config misses it.

    Returns
    -------
    One row per (config_id, check), checks in :data:`MANDATE_CHECKS` order within a
    config: n_scenarios_missed, worst_scenario (the largest shortfall; an undefined
    figure counts as worst; ties: first scenario name), worst_value (the figure there),
    low, high, worst_shortfall. Only the checks a config misses in at least one scenario.
    """
    order = {check: i for i, check in enumerate(MANDATE_CHECKS)}
    figures = mandate_figures(evaluations, objectives)
    return (
        figures.filter(~pl.col("met"))
        .sort(["config_id", "check", "shortfall", "scenario"],
              descending=[False, False, True, False], nulls_last=False)
        .group_by(["config_id", "check"], maintain_order=True)
        .agg(
            pl.len().alias("n_scenarios_missed"),
            pl.col("scenario").first().alias("worst_scenario"),
            pl.col("value").first().alias("worst_value"),
            pl.col("low").first(),
            pl.col("high").first(),
            pl.col("shortfall").first().alias("worst_shortfall"),
        )
        .with_columns(pl.col("check").replace_strict(order).alias("_order"))
        .sort(["config_id", "_order"])
        .drop("_order")
    )


def mandate_status(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> pl.DataFrame:
    """Per config: in how many scenarios it meets every limit of the mandate.

    Returns
    -------
    Columns config_id, n_scenarios (evaluated), n_scenarios_meeting (all of
    :data:`MANDATE_CHECKS` met there), meets_mandate (met in every scenario of the
    table, and evaluated in all of them), n_checks_missed (checks missed somewhere),
    sorted by config_id.
    """
    n_total = evaluations["scenario"].n_unique()
    figures = mandate_figures(evaluations, objectives)
    per_scenario = figures.group_by(["config_id", "scenario"]).agg(pl.col("met").all())
    per_check = figures.group_by(["config_id", "check"]).agg(pl.col("met").all())
    return (
        per_scenario.group_by("config_id")
        .agg(pl.len().alias("n_scenarios"),
             pl.col("met").sum().cast(pl.Int64).alias("n_scenarios_meeting"))
        .join(per_check.group_by("config_id").agg(
            (~pl.col("met")).sum().cast(pl.Int64).alias("n_checks_missed")), on="config_id")
        .with_columns(((pl.col("n_scenarios_meeting") == pl.col("n_scenarios"))
                       & (pl.col("n_scenarios") == n_total)).alias("meets_mandate"))
        .select("config_id", "n_scenarios", "n_scenarios_meeting", "meets_mandate",
                "n_checks_missed")
        .sort("config_id")
    )


def limit_attainment(evaluations: pl.DataFrame, objectives: InvestmentObjectives) -> pl.DataFrame:
    """Per mandate check: whether any config meets it everywhere, and the best achievable.

    Returns
    -------
    One row per check of :data:`MANDATE_CHECKS`, in that order: check, figure, low,
    high, met (some config meets it in every scenario), best_config_id (the config
    whose worst-scenario shortfall is smallest; ties: lowest config_id), worst_scenario
    (that config's worst scenario for the check), best_value (its figure there: the
    best achievable worst-scenario value) and best_shortfall (0 when met).

    Notes
    -----
    Only configs evaluated in every scenario count. A limit no rule can meet (a 10%
    vol in a regime whose equity vol is 8% with no leverage, a minimum Sharpe above
    every rule's) is reported here with the closest any config came, not dropped.
    """
    n_total = evaluations["scenario"].n_unique()
    figures = mandate_figures(evaluations, objectives).with_columns(
        pl.col("scenario").n_unique().over("config_id").alias("_n")
    ).filter(pl.col("_n") == n_total)
    worst = (
        figures.sort(["check", "config_id", "shortfall", "scenario"],
                     descending=[False, False, True, False], nulls_last=False)
        .group_by(["check", "config_id"], maintain_order=True)
        .first()
        .filter(pl.col("shortfall").is_not_null())
    )
    best = (
        worst.sort(["check", "shortfall", "config_id"])
        .group_by("check", maintain_order=True)
        .first()
    )
    rows = []
    for check, limit in objectives.limits().items():
        match = best.filter(pl.col("check") == check)
        found = match.height > 0
        rows.append({
            "check": check, "figure": limit.figure, "low": limit.low, "high": limit.high,
            "met": found and match["shortfall"].item() == 0.0,
            "best_config_id": match["config_id"].item() if found else None,
            "worst_scenario": match["scenario"].item() if found else None,
            "best_value": match["value"].item() if found else None,
            "best_shortfall": match["shortfall"].item() if found else None,
        })
    return pl.DataFrame(rows, schema={
        "check": pl.String, "figure": pl.String, "low": pl.Float64, "high": pl.Float64,
        "met": pl.Boolean, "best_config_id": pl.String, "worst_scenario": pl.String,
        "best_value": pl.Float64, "best_shortfall": pl.Float64,
    })
