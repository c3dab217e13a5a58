"""Evaluate strategy configs on a scenario's paths: one tidy row per (scenario, config).

``StrategyConfig`` and the weight functions live in :mod:`engine.strategy.config`,
the portfolio simulation in :mod:`engine.strategy.portfolio`; this module is the public entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from engine.market.paths import ScenarioPaths
from engine.objectives import InvestmentObjectives
from engine.strategy.config import MIX_FIELDS, WEIGHT_FNS, StrategyConfig, WeightFn, target_weights
from engine.strategy.metrics import METRICS, summarise
from engine.strategy.portfolio import Market, StrategyRun, run_strategies

__all__ = [
    "WEIGHT_FNS",
    "StrategyConfig",
    "WeightFn",
    "evaluate",
    "market_from_paths",
    "metrics_table",
    "target_weights",
]

CONFIG_COLUMNS = (
    "target_vol",
    "weight_fn",
    "vol_window_months",
    "risk_aversion",
    "tc_bps",
    "min_allocation",
    "max_allocation",
    "no_trade_band",
)
"""The config's fields, as columns of every table a config is written to."""


def config_from_row(row: Mapping[str, Any]) -> StrategyConfig:
    """The StrategyConfig of a table row holding :data:`CONFIG_COLUMNS` and, in a
    multi-asset table, the base mixes (other columns of the row, e.g. config_id or round,
    are ignored)."""
    return StrategyConfig(**{name: row[name] for name in CONFIG_COLUMNS},
                          **{name: row[name] for name in MIX_FIELDS if name in row})


def market_from_paths(paths: ScenarioPaths) -> Market:
    """The strategy's view of a scenario: equity vs the paths' non-equity leg (the bond
    index, or cash when ``paths.leg`` is "cash"), rebalanced at every month-end from the
    end of the warm-up, cash as the risk-free."""
    return Market(
        equity=paths.equity,
        alternative=paths.defensive,
        cash=paths.cash,
        rebalance_days=paths.month_ends[paths.warmup_months :],
    )


CHUNK_BYTES = 512 * 2**20
"""Working memory one chunk of configs may take (budgeted as about 10 arrays of configs x
paths x months float64 live at once while a chunk is simulated; see configs_per_chunk)."""


def configs_per_chunk(paths: ScenarioPaths, *, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many configs :func:`evaluate` simulates at once on these paths.

    Notes
    -----
    The budget allows about 10 float64 arrays of c x n_paths x n_months per chunk of c
    configs, c = max(1, floor(chunk_bytes / (10 x 8 x n_paths x n_months))): what a run
    keeping its per-month arrays holds; the metrics-only run :func:`evaluate` makes holds
    len(METRICS) arrays of c x n_paths and per-path scratch, well within it.
    """
    months = len(paths.month_ends) - paths.warmup_months
    return max(1, chunk_bytes // (10 * 8 * paths.n_paths * max(months, 1)))


def evaluate(
    paths: ScenarioPaths,
    configs: Sequence[StrategyConfig],
    objectives: InvestmentObjectives | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> pl.DataFrame:
    """Metrics of every config on one scenario, one row per config.

    Columns: scenario, config_id, the config's fields (risk_aversion null for the inverse
    rules), n_paths, then for each metric of :data:`engine.strategy.metrics.METRICS` its
    ``_mean``, ``_median``, ``_p5`` and ``_p95`` across paths, then the objectives' pass
    columns (:data:`engine.objectives.OBJECTIVE_CHECKS`) and ``meets_objectives``.

    Configs are simulated in chunks of :func:`configs_per_chunk` so the working memory
    stays near ``chunk_bytes`` however many configs are asked for; the rows do not depend
    on the chunking (each config's simulation is independent of the others').
    """
    if not configs:
        raise ValueError("evaluate needs at least one StrategyConfig")
    market = market_from_paths(paths)
    step = configs_per_chunk(paths, chunk_bytes=chunk_bytes)
    tables = [
        metrics_table(run_strategies(market, configs[start:start + step], per_month=False),
                      scenario=paths.regime.name, objectives=objectives)
        for start in range(0, len(configs), step)
    ]
    return tables[0] if len(tables) == 1 else pl.concat(tables)


def metrics_table(
    run: StrategyRun, *, scenario: str, objectives: InvestmentObjectives | None = None
) -> pl.DataFrame:
    """Summarise a :class:`StrategyRun` across paths into the tidy metrics table."""
    objectives = objectives or InvestmentObjectives()
    columns: dict[str, object] = {
        "scenario": [scenario] * len(run.configs),
        "config_id": [c.config_id for c in run.configs],
    }
    for name in CONFIG_COLUMNS:
        columns[name] = [getattr(c, name) for c in run.configs]
    columns["n_paths"] = [run.n_paths] * len(run.configs)
    for metric in METRICS:
        for stat, values in summarise(run.metrics[metric]).items():
            columns[f"{metric}_{stat}"] = np.asarray(values, dtype=np.float64)
    # risk_aversion is null for the inverse rules: cast so an all-inverse table keeps Float64.
    table = pl.DataFrame(columns).with_columns(
        pl.col("vol_window_months").cast(pl.Int64),
        pl.col("risk_aversion").cast(pl.Float64),
        pl.col("n_paths").cast(pl.Int64),
    )
    return table.with_columns(objectives.pass_columns())
