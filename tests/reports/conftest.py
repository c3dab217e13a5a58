"""Shared inputs of the report tests: engine-generated source tables.

Five regimes x 12 Latin hypercube configs on 50 paths of a two-year horizon: small
enough to build in about a second, real enough that every model has work to do.
"""

from __future__ import annotations

import polars as pl
import pytest

from dbt_like_reports.loader import run_models
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.strategy import evaluate

N_CONFIGS = 12
N_PATHS = 50


def configs_table(configs) -> pl.DataFrame:
    """The strategy_configs table as the upstream asset writes it."""
    return pl.DataFrame(
        [{"config_id": c.config_id, "sample_index": i, **c.to_dict()}
         for i, c in enumerate(configs)]
    ).with_columns(pl.col("sample_index").cast(pl.Int64),
                   pl.col("vol_window_months").cast(pl.Int64))


@pytest.fixture(scope="session")
def sources() -> dict[str, pl.DataFrame]:
    """strategy_evaluations (all scenarios stacked) and strategy_configs from the engine."""
    configs = sample_configs(N_CONFIGS, seed=11)
    evaluations = pl.concat(
        evaluate(simulate_scenario(regime, n_paths=N_PATHS, seed=5, horizon_years=2), configs)
        for regime in REGIMES.values()
    )
    return {"strategy_evaluations": evaluations, "strategy_configs": configs_table(configs)}


@pytest.fixture(scope="session")
def model_tables(sources) -> dict[str, pl.DataFrame]:
    """Every model's table on the engine-generated sources."""
    return run_models(sources)
