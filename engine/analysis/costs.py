"""Cost sensitivity: configs re-evaluated across transaction-cost assumptions.

Configs are ranked at one cost assumption (``InvestmentObjectives.assumed_tc_bps``);
costs are a property of the market, not a choice of the rule, so how a ranking holds up
under other costs is reported separately, here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import polars as pl

from engine.market.paths import ScenarioPaths
from engine.objectives import InvestmentObjectives
from engine.portfolio.evaluation import evaluate_paths
from engine.portfolio.paths import PortfolioPaths
from engine.strategy.config import StrategyConfig

DEFAULT_COSTS_BPS = (0.0, 5.0, 10.0, 15.0, 20.0)
SENSITIVITY_COLUMNS = ("sharpe_mean", "ann_return_mean", "ann_vol_mean", "cost_drag_mean",
                       "turnover_mean", "max_drawdown_median")


def cost_sensitivity(
    paths: Mapping[str, ScenarioPaths] | Mapping[str, PortfolioPaths],
    configs: Sequence[StrategyConfig],
    costs_bps: Sequence[float] = DEFAULT_COSTS_BPS,
    objectives: InvestmentObjectives | None = None,
) -> pl.DataFrame:
    """Each config evaluated at each cost, in every scenario.

    Parameters
    ----------
    paths : scenario name -> its simulated paths.
    configs : the rules to re-evaluate (their own ``tc_bps`` is replaced by each cost).
    costs_bps : cost per unit of weight traded, basis points.

    Returns
    -------
    One row per (config, cost, scenario): config_id (the config's id at its own cost, so
    rows join back to the ranking), tc_bps, scenario, the columns of
    :data:`SENSITIVITY_COLUMNS`, and worst_sharpe_mean, the minimum over scenarios of
    sharpe_mean at that cost.
    """
    if not configs or not costs_bps:
        raise ValueError("cost_sensitivity needs at least one config and one cost")
    priced = [(config, float(cost), dataclasses.replace(config, tc_bps=float(cost)))
              for cost in costs_bps for config in configs]
    ids = pl.DataFrame({"config_id": [c.config_id for c, _, _ in priced],
                        "tc_bps": [cost for _, cost, _ in priced],
                        "priced_id": [p.config_id for _, _, p in priced]})
    frames = []
    for scenario, scenario_paths in paths.items():  # every config at every cost at once
        table = evaluate_paths(scenario_paths, [p for _, _, p in priced], objectives).select(
            pl.col("config_id").alias("priced_id"), *SENSITIVITY_COLUMNS)
        frames.append(ids.join(table, on="priced_id", how="left").drop("priced_id")
                      .with_columns(pl.lit(scenario).alias("scenario")))
    stacked = pl.concat(frames)
    return (
        stacked.with_columns(
            pl.col("sharpe_mean").min().over("config_id", "tc_bps").alias("worst_sharpe_mean"))
        .select("config_id", "tc_bps", "scenario", *SENSITIVITY_COLUMNS, "worst_sharpe_mean")
        .sort("config_id", "tc_bps", "scenario")
    )
