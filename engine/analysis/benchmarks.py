"""Static benchmarks: constant-weight portfolios evaluated on the same paths as the rules.

A constant equity weight w is a :class:`~engine.strategy.StrategyConfig` whose allocation
range is the single point [w, w]: every weight function's target is clipped to w, so the
portfolio machinery of :mod:`engine.strategy` (monthly rebalancing back to w after the
weights drift, costs on the trades, the same metrics) evaluates it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from engine.market.paths import ScenarioPaths
from engine.objectives import InvestmentObjectives
from engine.portfolio.evaluation import evaluate_paths
from engine.portfolio.paths import PortfolioPaths
from engine.strategy.config import StrategyConfig
from engine.validation import check_range

STATIC_BENCHMARKS: dict[str, float] = {"60/40": 0.6, "100% equity": 1.0}
"""Benchmark name -> constant equity weight (the rest in the government-bond index)."""


def constant_weight_config(
    equity_weight: float, *, tc_bps: float, target_vol: float = 0.10
) -> StrategyConfig:
    """The rule that holds ``equity_weight`` in equity at every month-end.

    Parameters
    ----------
    equity_weight : w, the constant equity weight, in [0, 1].
    tc_bps : cost per unit of weight traded, basis points (the drift back to w is traded).
    target_vol : the vol the tracking-error metric is measured against (a benchmark has
        no target of its own; pass the mandate's).

    Notes
    -----
    ``inverse_vol`` with a one-month window, clipped to [w, w]: w_k = clip(tv / rv_k, w, w)
    = w for every rv_k >= 0 (rv_k = 0 gives +inf, clipped to w as well).
    """
    w = check_range("constant_weight_config", "equity_weight", equity_weight, 0.0, 1.0)
    return StrategyConfig(target_vol=target_vol, weight_fn="inverse_vol", vol_window_months=1,
                          tc_bps=tc_bps, min_allocation=w, max_allocation=w)


def evaluate_benchmarks(
    paths: Mapping[str, ScenarioPaths] | Mapping[str, PortfolioPaths],
    objectives: InvestmentObjectives | None = None,
    benchmarks: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Every static benchmark evaluated in every scenario, at the objectives' assumed cost.

    Parameters
    ----------
    paths : scenario name -> its simulated paths.
    objectives : the investment objectives (assumed cost, mandate target vol, the checks).
    benchmarks : name -> constant equity weight; default :data:`STATIC_BENCHMARKS`.

    Returns
    -------
    One row per (benchmark, scenario): ``benchmark``, ``equity_weight``, then the columns
    of :func:`engine.strategy.evaluate` (metrics summarised across paths, the objective
    checks), sorted by benchmark order then scenario order as given.
    """
    objectives = objectives or InvestmentObjectives()
    benchmarks = STATIC_BENCHMARKS if benchmarks is None else benchmarks
    if not paths or not benchmarks:
        raise ValueError("evaluate_benchmarks needs at least one scenario and one benchmark")
    configs = {name: constant_weight_config(weight, tc_bps=objectives.assumed_tc_bps,
                                            target_vol=objectives.target_vol)
               for name, weight in benchmarks.items()}
    distinct = list({c.config_id: c for c in configs.values()}.values())
    tables = [evaluate_paths(scenario_paths, distinct, objectives)
              for scenario_paths in paths.values()]  # every benchmark at once
    return pl.concat([
        table.filter(pl.col("config_id") == configs[name].config_id).select(
            pl.lit(name).alias("benchmark"), pl.lit(float(weight)).alias("equity_weight"),
            pl.all())
        for name, weight in benchmarks.items() for table in tables])
