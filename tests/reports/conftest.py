"""Shared inputs of the report tests: engine-evaluated source tables.

Five regimes x 12 hand-picked configs (every weight function, the three vol-window
bands) on 50 paths of a two-year horizon: small enough to build in about a second, real
enough that every model has work to do. The three sources are shaped as the upstream
Dagster assets write them:

- ``strategy_evaluations``: engine.strategy.evaluate, every scenario stacked;
- ``strategy_configs``: config_id, round, proposer and the StrategyConfig fields;
- ``optimisation_history``: one row per config in evaluation order. Its scores are a
  stand-in written here in plain polars (the relative-score formula of
  docs/optimisation.md and a simple penalty), not
  engine.optimisation.loop.optimisation_history: the SQL reads the scores and never
  recomputes them, so any consistent table serves.

Contract of the engine's tables, applied here whatever the engine version: risk_aversion
is null for the inverse rules (they ignore it), and evaluations carry pass_vol_own_target
(|ann_vol_median - the config's own target_vol| <= the objectives' vol_tolerance).
"""

from __future__ import annotations

import polars as pl
import pytest

from dbt_like_reports.loader import run_models
from engine.analysis.scoring import PENALTIES
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import HISTORY_COLUMNS
from engine.strategy import StrategyConfig, evaluate

N_PATHS = 50
ASSUMED_TC_BPS = 10.0
INVERSE_RULES = ("inverse_vol", "inverse_vol_squared")

# (target_vol, weight_fn, vol_window_months, risk_aversion); risk_aversion None for the
# inverse rules. Every weight_fn, vol-window band and several risk_aversion bands occur.
CONFIG_VALUES = [
    (0.06, "inverse_vol", 6, None),
    (0.10, "inverse_vol", 13, None),
    (0.18, "inverse_vol", 20, None),
    (0.09, "inverse_vol_squared", 9, None),
    (0.15, "inverse_vol_squared", 24, None),
    (0.12, "linear", 7, 0.8),
    (0.07, "linear", 15, 2.0),
    (0.16, "linear", 22, 4.5),
    (0.11, "sigmoid", 11, 1.5),
    (0.19, "sigmoid", 12, 3.0),
    (0.05, "sigmoid", 18, 3.5),
    (0.13, "sigmoid", 17, 5.0),
]
N_CONFIGS = len(CONFIG_VALUES)
N_FIRST_ROUND = 8  # round 0 (lhs) holds the first 8 configs, round 1 (tpe) the rest


def make_configs() -> list[StrategyConfig]:
    return [
        StrategyConfig(target_vol=tv, weight_fn=fn, vol_window_months=window,
                       risk_aversion=1.0 if ra is None else ra, tc_bps=ASSUMED_TC_BPS)
        for tv, fn, window, ra in CONFIG_VALUES
    ]


def _null_unused_risk_aversion(table: pl.DataFrame) -> pl.DataFrame:
    return table.with_columns(
        pl.when(pl.col("weight_fn").is_in(INVERSE_RULES)).then(None)
        .otherwise(pl.col("risk_aversion")).cast(pl.Float64).alias("risk_aversion")
    )


def configs_table(configs) -> pl.DataFrame:
    """The strategy_configs table as the upstream asset writes it."""
    rows = [
        {"config_id": c.config_id, "round": 0 if i < N_FIRST_ROUND else 1,
         "proposer": "lhs" if i < N_FIRST_ROUND else "tpe", **c.to_dict()}
        for i, c in enumerate(configs)
    ]
    return _null_unused_risk_aversion(pl.DataFrame(rows)).with_columns(
        pl.col("round").cast(pl.Int64), pl.col("vol_window_months").cast(pl.Int64))


def evaluations_table(evaluations: pl.DataFrame) -> pl.DataFrame:
    """engine.strategy.evaluate's table under the contract above."""
    if "pass_vol_own_target" not in evaluations.columns:
        tolerance = InvestmentObjectives().vol_tolerance
        own = ((pl.col("ann_vol_median") - pl.col("target_vol")).abs() <= tolerance)
        position = evaluations.columns.index("pass_vol") + 1
        evaluations = evaluations.insert_column(
            position, evaluations.select(own.alias("pass_vol_own_target")).to_series())
    return _null_unused_risk_aversion(evaluations)


def history_table(configs: pl.DataFrame, evaluations: pl.DataFrame) -> pl.DataFrame:
    """A stand-in optimisation_history: one row per config in the configs' order.

    robustness = min over scenarios of r = 1 - (best_s - m) / |best_s| (m = sharpe_mean);
    penalty = 0.1 per scenario where the config misses an objective, all of it put in
    penalty_vol (the other penalty columns 0); objective = robustness - penalty; robust
    at InvestmentObjectives' threshold; the engine's HISTORY_COLUMNS that SQL stages.
    """
    threshold = InvestmentObjectives().robustness_threshold
    relative = evaluations.select("scenario", "config_id", "sharpe_mean", "meets_objectives")
    relative = relative.with_columns(
        (1 - (pl.col("sharpe_mean").max().over("scenario") - pl.col("sharpe_mean"))
         / pl.col("sharpe_mean").max().over("scenario").abs()).alias("r"))
    scores = (
        relative.sort("r", "scenario").group_by("config_id", maintain_order=True)
        .agg(pl.col("r").min().alias("robustness"),
             pl.col("scenario").first().alias("worst_scenario"),
             (0.1 * (~pl.col("meets_objectives")).sum()).alias("penalty"))
    )
    return (
        configs.with_row_index("evaluation_index", offset=1)
        .join(scores, on="config_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("evaluation_index").cast(pl.Int64),
            (pl.col("robustness") >= threshold).alias("robust"),
            (pl.col("robustness") - pl.col("penalty")).alias("objective"),
            (pl.col("penalty") == 0).alias("feasible"),
        )
        .with_columns(pl.col("objective").cum_max().alias("best_objective_so_far"),
                      pl.lit("max_configs").alias("stop_reason"),
                      pl.col("penalty").alias("penalty_vol"),
                      *(pl.lit(0.0).alias(f"penalty_{name}") for name in PENALTIES[1:]),
                      pl.lit(0.01).alias("own_target_miss"),
                      pl.lit(None, dtype=pl.String).alias("optimum_at_edge"))
        .select(STAGED_HISTORY_COLUMNS)
    )


STAGED_HISTORY_COLUMNS = [c for c in HISTORY_COLUMNS if c not in (
    "risky_mix", "defensive_mix", "improved", "round_best_objective")]
"""The history columns the SQL models stage (the mixes and the per-round progress are
read by the report text from the history asset, not by SQL)."""


@pytest.fixture(scope="session")
def sources() -> dict[str, pl.DataFrame]:
    """strategy_evaluations (all scenarios stacked), strategy_configs, optimisation_history."""
    configs = make_configs()
    evaluations = evaluations_table(pl.concat(
        evaluate(simulate_scenario(regime, n_paths=N_PATHS, seed=5, horizon_years=2), configs)
        for regime in REGIMES.values()
    ))
    configs_frame = configs_table(configs)
    return {
        "strategy_evaluations": evaluations,
        "strategy_configs": configs_frame,
        "optimisation_history": history_table(configs_frame, evaluations),
    }


@pytest.fixture(scope="session")
def model_tables(sources) -> dict[str, pl.DataFrame]:
    """Every model's table on the engine-generated sources."""
    return run_models(sources)
