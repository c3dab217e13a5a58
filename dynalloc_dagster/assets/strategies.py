"""Strategies: sampled configs (each a dynamic partition) and their evaluations.

No `from __future__ import annotations`: Dagster reads Config annotations at runtime."""

import os
from collections import defaultdict

import dagster as dg
import polars as pl
from pydantic import Field, model_validator

from dynalloc_dagster.metadata import table_metadata
from dynalloc_dagster.partitions import config_partitions, evaluation_partitions
from engine.objectives import InvestmentObjectives
from engine.optimisation.sampling import sample_configs
from engine.strategy import CONFIG_COLUMNS, StrategyConfig, evaluate

OWNERS = ["team:quant-research"]
EVALUATIONS_PER_RUN_ENV = "DYNALLOC_EVALUATIONS_PER_RUN"


class StrategyConfigsConfig(dg.Config):
    count: int = Field(default=100, ge=1, le=10_000, description="configs to sample")
    seed: int = Field(default=0, ge=0, description="Latin hypercube seed")


@dg.asset(group_name="strategies", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1")
def strategy_configs(
    context: dg.AssetExecutionContext, config: StrategyConfigsConfig
) -> dg.MaterializeResult:
    """Latin hypercube sample of the hyperparameter space (DESIGN.md ranges); each config
    id becomes a key of the dynamic partitions ``strategy_configs``. The same seed and
    count give the same ids, so re-running adds nothing new. The registered keys are
    exactly this sample: ids of an earlier sample are removed (their stored evaluations
    stay on disk), so the evaluation stage and the reports cover the configs in this table."""
    configs = sample_configs(config.count, config.seed)
    table = pl.DataFrame(
        [{"config_id": c.config_id, "sample_index": i, **c.to_dict()}
         for i, c in enumerate(configs)]
    ).with_columns(pl.col("sample_index").cast(pl.Int64),
                   pl.col("vol_window_months").cast(pl.Int64))
    known = context.instance.get_dynamic_partitions(config_partitions.name)
    sampled = {c.config_id for c in configs}
    new_ids = [c.config_id for c in configs if c.config_id not in set(known)]
    stale_ids = [cid for cid in known if cid not in sampled]
    for cid in stale_ids:
        context.instance.delete_dynamic_partition(config_partitions.name, cid)
    if new_ids:
        context.instance.add_dynamic_partitions(config_partitions.name, new_ids)
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "new_partitions": len(new_ids),
        "removed_partitions": len(stale_ids), "seed": config.seed,
    })


_OBJECTIVES = InvestmentObjectives()


class EvaluationConfig(dg.Config):
    """Investment objectives the pass/fail columns are judged against; defaults and
    allowed ranges are engine.objectives.InvestmentObjectives' (DESIGN.md)."""

    target_vol: float = _OBJECTIVES.target_vol
    vol_tolerance: float = _OBJECTIVES.vol_tolerance
    min_sharpe: float = _OBJECTIVES.min_sharpe
    max_drawdown: float = _OBJECTIVES.max_drawdown
    max_var95: float = _OBJECTIVES.max_var95
    max_cvar95: float = _OBJECTIVES.max_cvar95
    max_cost_bps: float = _OBJECTIVES.max_cost_bps

    @model_validator(mode="after")
    def _in_range(self) -> "EvaluationConfig":
        self.objectives()
        return self

    def objectives(self) -> InvestmentObjectives:
        """The engine's objectives; raises ConfigError naming a field out of its range."""
        return InvestmentObjectives(**self.model_dump())


def evaluation_backfill_policy() -> dg.BackfillPolicy:
    """One run for any number of keys (local default), or chunks of
    ``$DYNALLOC_EVALUATIONS_PER_RUN`` keys per run (e.g. 100 = one scenario per EC2 run)."""
    per_run = os.environ.get(EVALUATIONS_PER_RUN_ENV, "")
    if not per_run:
        return dg.BackfillPolicy.single_run()
    if not per_run.isdigit() or int(per_run) < 1:
        raise ValueError(f"{EVALUATIONS_PER_RUN_ENV} = {per_run!r} must be a positive integer")
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=int(per_run))


@dg.asset(
    group_name="strategies",
    owners=OWNERS,
    kinds={"polars", "parquet"},
    code_version="1",
    partitions_def=evaluation_partitions,
    backfill_policy=evaluation_backfill_policy(),
)
def strategy_evaluations(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    scenario_paths: dict,
    strategy_configs: pl.DataFrame,
):
    """Every (scenario, config) key of the run evaluated vectorised: each scenario's paths
    are loaded once and all its configs evaluated together (engine.strategy.evaluate).
    One row of metrics per key."""
    objectives = config.objectives()
    by_id = {row["config_id"]: row for row in strategy_configs.iter_rows(named=True)}
    wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in context.partition_keys:
        dims = evaluation_partitions.get_partition_key_from_str(key).keys_by_dimension
        wanted[dims["scenario"]].append((dims["config"], key))
    missing = sorted({cid for keys in wanted.values() for cid, _ in keys} - set(by_id))
    if missing:
        raise ValueError(
            f"config ids not in strategy_configs (re-materialize it?): {', '.join(missing[:5])}"
        )
    outputs: dict[str, pl.DataFrame] = {}
    best: dict[str, float] = {}
    for scenario, keys in wanted.items():
        configs = [StrategyConfig(**{k: by_id[cid][k] for k in CONFIG_COLUMNS})
                   for cid, _ in keys]
        table = evaluate(scenario_paths[scenario], configs, objectives)
        for (_, key), row in zip(keys, table.iter_slices(1), strict=True):
            outputs[key] = row
        best[scenario] = float(table["sharpe_mean"].max())
        context.log.info(f"{scenario}: evaluated {len(configs)} configs")
    combined = pl.concat(outputs.values())
    yield dg.Output(outputs, metadata={
        **table_metadata(combined.select("scenario", "config_id", "weight_fn", "target_vol",
                                         "sharpe_mean", "max_drawdown_median",
                                         "meets_objectives")),
        "keys_in_run": len(outputs),
        **{f"best_sharpe_{s}": round(v, 4) for s, v in best.items()},
    })


@dg.asset_check(asset=strategy_evaluations, description="Every scenario x config key of "
                "the registered configs has a stored evaluation (a warning while a backfill"
                " is part-way through).")
def evaluation_completeness(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    instance = context.instance
    config_ids = instance.get_dynamic_partitions(config_partitions.name)
    expected = {
        key
        for key in evaluation_partitions.get_partition_keys(dynamic_partitions_store=instance)
        if key.keys_by_dimension["config"] in set(config_ids)
    }
    done = instance.get_materialized_partitions(dg.AssetKey("strategy_evaluations"))
    missing = sorted(expected - set(done))
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"expected": len(expected), "missing": len(missing),
                  "missing_sample": ", ".join(missing[:10])},
    )
