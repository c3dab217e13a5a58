"""Strategies: the agent's configs (each a dynamic partition), their evaluations, and the
optimisation history that scores them and decides whether the agent goes on.

No `from __future__ import annotations`: Dagster reads Config annotations at runtime."""

import os
import time
from collections import defaultdict

import dagster as dg
import polars as pl
from pydantic import Field

from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.partitions import (
    batch_key,
    batch_partitions,
    evaluation_partitions,
    next_batch_key,
)
from dynalloc_dagster.portfolio import is_multi_asset, spec_from_table
from dynalloc_dagster.resources import ObjectivesResource, OptimisationAgent
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager
from dynalloc_dagster.storage.local import LocalStorage
from dynalloc_dagster.storage.metadata import table_metadata
from dynalloc_dagster.storage.retention import prune_evaluations
from dynalloc_dagster.tags import BATCH, CONTINUE, STOP_REASON
from engine.objectives import OBJECTIVE_CHECKS
from engine.optimisation.loop import local_proposer
from engine.optimisation.loop import optimisation_history as score_history
from engine.optimisation.proposers import LhsProposer, Proposer, TpeProposer, propose_batch
from engine.optimisation.search_space import SearchSpace
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.paths import PortfolioPaths
from engine.portfolio.spec import PortfolioSpec
from engine.strategy import CONFIG_COLUMNS, StrategyConfig, config_from_row, evaluate
from engine.strategy.config import BASE_MIXES, DEFAULT_MIX, MIX_FIELDS

OWNERS = ["team:quant-research"]
EVALUATIONS_PER_RUN_ENV = "DYNALLOC_EVALUATIONS_PER_RUN"
LOOP_STARTED_AT = "loop_started_at"
CONFIG_TABLE_COLUMNS = ("config_id", "round", "batch", "proposer", *CONFIG_COLUMNS)


class StrategyConfigsConfig(dg.Config):
    """``round``: 0 starts a new optimisation loop (a Latin hypercube batch replaces the
    registered configs); r > 0 proposes the next batch from round r-1's history. The
    pipeline's chain sets it; the agent's settings are the ``agent`` resource's."""

    round: int = Field(default=0, ge=0, le=10_000, description="optimisation round")


def _proposer(agent: OptimisationAgent, bedrock: BedrockResource, space: SearchSpace,
              tc_bps: float) -> Proposer:
    match agent.proposer:
        case "lhs":
            return LhsProposer(space, tc_bps)
        case "bedrock":
            return bedrock.proposer(space, tc_bps)
        case _:
            return TpeProposer(space, tc_bps)


def search_space(spec: PortfolioSpec) -> SearchSpace:
    """The agent's space: the two-asset one, or for a multi-asset portfolio also every
    base mix of each sleeve holding more than one asset (a one-asset sleeve's mix is moot)."""
    if not is_multi_asset(spec):
        return SearchSpace()
    return SearchSpace(
        risky_mixes=BASE_MIXES if len(spec.equities) > 1 else (DEFAULT_MIX,),
        defensive_mixes=BASE_MIXES if len(spec.defensive) > 1 else (DEFAULT_MIX,))


def _config_rows(parts: list[tuple[list[StrategyConfig], str]], round_index: int,
                 previous: pl.DataFrame | None, *, mixes: bool = False) -> pl.DataFrame:
    """One row per config of the round's parts (configs, the proposer that made them),
    in the round's batch (round 0: named by its configs; later: by the loop's previous
    batch, ``partitions.next_batch_key``); with ``mixes``, also each sleeve's base mix."""
    batch = (batch_key(round_index, [c.config_id for configs, _ in parts for c in configs])
             if previous is None else next_batch_key(previous["batch"][-1]))
    columns = (*CONFIG_TABLE_COLUMNS, *MIX_FIELDS) if mixes else CONFIG_TABLE_COLUMNS
    return pl.DataFrame(
        [{"config_id": c.config_id, "round": round_index, "batch": batch, "proposer": proposer,
          **c.to_dict(), **{name: getattr(c, name) for name in MIX_FIELDS}}
         for configs, proposer in parts for c in configs],
        schema_overrides={"round": pl.Int64, "vol_window_months": pl.Int64,
                          "risk_aversion": pl.Float64},
    ).select(columns)


def _previous_loop_start(context: dg.AssetExecutionContext) -> float:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("strategy_configs"))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if LOOP_STARTED_AT not in metadata:
        raise ValueError("strategy_configs has no earlier round of this loop: start at round 0")
    return float(metadata[LOOP_STARTED_AT].value)


@dg.asset(group_name="strategies", owners=OWNERS, kinds={"polars", "parquet"}, code_version="2")
def strategy_configs(
    context: dg.AssetExecutionContext,
    config: StrategyConfigsConfig,
    agent: OptimisationAgent,
    objectives: ObjectivesResource,
    bedrock: BedrockResource,
    io_manager: dg.ResourceParam[PolarsParquetIOManager],
) -> dg.MaterializeResult:
    """The optimisation agent's configs, one row per config in the order they were
    proposed (round, batch, proposer). Round 0 is a Latin hypercube batch that replaces
    the registered batches; each later round appends a batch proposed from the previous
    round's ``optimisation_history`` (read from storage: the agent's feedback edge, which
    the asset graph cannot show without a cycle). Each round's batch becomes a key of the
    dynamic partitions ``config_batches``. Every config is ranked at the objectives' one
    transaction-cost assumption. When the stored market_regimes carry a multi-asset
    portfolio (the one the scenario paths simulate), the sleeves' base mixes are searched
    too (:func:`search_space`) and each row names them."""
    settings = agent.settings()
    tc_bps = objectives.objectives().assumed_tc_bps
    spec = spec_from_table(io_manager.load_stored("market_regimes"))
    space = search_space(spec)
    round_index = config.round
    if round_index == 0:
        proposed = LhsProposer(space, tc_bps).propose(
            pl.DataFrame(), min(settings.initial_batch, settings.max_configs), round_index=0,
            seed=settings.seed)
        parts, reasons = [(proposed, "lhs")], ()
        previous = None
        loop_started_at = time.time()
    else:
        previous = io_manager.load_stored("strategy_configs")
        history = io_manager.load_stored("optimisation_history")
        _check_round(round_index, previous, history)
        remaining = settings.max_configs - previous.height
        if remaining <= 0:
            raise ValueError(f"round {round_index}: the loop already has {previous.height}"
                             f" configs, the maximum is {settings.max_configs}")
        parts, reasons = propose_batch(
            _proposer(agent, bedrock, space, tc_bps), local_proposer(settings, space, tc_bps),
            TpeProposer(space, tc_bps), history, min(settings.batch_size, remaining),
            local_share=settings.local_share, round_index=round_index, seed=settings.seed,
            space=space,
        )
        loop_started_at = _previous_loop_start(context)
    for reason in reasons:
        context.log.warning(f"round {round_index}: {reason}; tpe proposed that part instead")
    new = _config_rows(parts, round_index, previous, mixes=is_multi_asset(spec))
    used = ", ".join(f"{name} ({len(configs)})" for configs, name in parts)
    table = new if previous is None else pl.concat([previous, new])
    batch = new["batch"][0]
    _register(context.instance, batch, replace=round_index == 0)
    storage = io_manager.object_storage()
    if round_index == 0 and isinstance(storage, LocalStorage):
        pruned = prune_evaluations(storage.location, [batch])
        if pruned:
            context.log.info(f"retention: removed the evaluations of {len(pruned)} batch"
                             " folder(s) of earlier loops")
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(new, preview_rows=new.height),
        "dagster/row_count": table.height,
        "round": round_index,
        "proposer": used,
        "fallback_reason": "; ".join(reasons),
        "new_configs": new.height,
        BATCH: batch,
        LOOP_STARTED_AT: loop_started_at,
    })


def _check_round(round_index: int, previous: pl.DataFrame | None,
                 history: pl.DataFrame | None) -> None:
    if previous is None or history is None:
        raise ValueError(f"round {round_index} needs the configs and the optimisation history"
                         " of the round before it: start the loop at round 0")
    last = int(history["round"].max())
    if last != round_index - 1 or int(previous["round"].max()) != round_index - 1:
        raise ValueError(f"round {round_index} follows round {round_index - 1}, but the stored"
                         f" history ends at round {last}")
    reason = history[STOP_REASON][0]
    if reason is not None:
        raise ValueError(f"the loop stopped at round {last} ({reason}): start a new loop at"
                         " round 0")


def _register(instance: dg.DagsterInstance, batch: str, *, replace: bool) -> None:
    """Add the round's batch as a dynamic partition; round 0 first removes every other
    batch (the configs of an earlier loop leave the partitions)."""
    known = instance.get_dynamic_partitions(batch_partitions.name)
    if replace:
        for stale in set(known) - {batch}:
            instance.delete_dynamic_partition(batch_partitions.name, stale)
    if batch not in known:
        instance.add_dynamic_partitions(batch_partitions.name, [batch])


def evaluation_keys_per_run() -> int | None:
    """``$DYNALLOC_EVALUATIONS_PER_RUN``: how many (batch, scenario) keys of
    strategy_evaluations one run takes, for the pipeline's rounds and for backfills alike
    (unset: all of them in one run; 1: one scenario of one batch per run, i.e. one EC2
    instance per scenario)."""
    per_run = os.environ.get(EVALUATIONS_PER_RUN_ENV, "")
    if not per_run:
        return None
    if not per_run.isdigit() or int(per_run) < 1:
        raise ValueError(f"{EVALUATIONS_PER_RUN_ENV} = {per_run!r} must be a positive integer")
    return int(per_run)


def evaluation_backfill_policy() -> dg.BackfillPolicy:
    """One run for any number of keys (local default), or chunks of
    :func:`evaluation_keys_per_run` keys per run."""
    per_run = evaluation_keys_per_run()
    if per_run is None:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=per_run)


@dg.asset(
    group_name="strategies",
    owners=OWNERS,
    kinds={"polars", "parquet"},
    code_version="2",
    partitions_def=evaluation_partitions,
    backfill_policy=evaluation_backfill_policy(),
)
def strategy_evaluations(
    context: dg.AssetExecutionContext,
    objectives: ObjectivesResource,
    scenario_paths: dict,
    strategy_configs: pl.DataFrame,
):
    """Every (scenario, batch) key of the run evaluated vectorised: each scenario's paths
    are loaded once and all the batch's configs evaluated together
    (engine.strategy.evaluate, a portfolio's by engine.portfolio.evaluate_portfolio with
    each asset's mean weight, in memory-bounded chunks). One row of metrics per config,
    one file per key, with the objectives' pass/fail columns."""
    judged_by = objectives.objectives()
    wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in context.partition_keys:
        dims = evaluation_partitions.get_partition_key_from_str(key).keys_by_dimension
        wanted[dims["scenario"]].append((dims["batch"], key))
    batches = {batch: rows for (batch,), rows in strategy_configs.group_by("batch")}
    missing = sorted({b for keys in wanted.values() for b, _ in keys} - set(batches))
    if missing:
        raise ValueError(
            f"batches not in strategy_configs (re-materialize it?): {', '.join(missing[:5])}"
        )
    configs = {batch: [config_from_row(row) for row in batches[batch].iter_rows(named=True)]
               for batch in {b for keys in wanted.values() for b, _ in keys}}
    outputs: dict[str, pl.DataFrame] = {}
    for scenario, keys in wanted.items():
        for batch, key in keys:
            paths = scenario_paths[scenario]
            run = evaluate_portfolio if isinstance(paths, PortfolioPaths) else evaluate
            outputs[key] = run(paths, configs[batch], judged_by)
            context.log.info(f"{scenario}: evaluated batch {batch}"
                             f" ({len(configs[batch])} configs)")
    for key, table in outputs.items():
        context.add_asset_metadata(evaluation_metadata(table), partition_key=key)
    # run-level, the same on every key of the run: only how many keys the run covered
    yield dg.Output(outputs, metadata={"keys_in_run": len(outputs)})


def evaluation_metadata(table: pl.DataFrame) -> dict:
    """One key's own metadata (its scenario and batch only): rows, the full column schema,
    its best config's Sharpe, the worst median-path drawdown and how many configs pass
    each objective check."""
    ranked = table.sort("sharpe_mean", descending=True, nulls_last=True)
    best = ranked.row(0, named=True)
    checks = [c for c in OBJECTIVE_CHECKS if c in table.columns]
    return {
        **table_metadata(ranked.select("config_id", "weight_fn", "target_vol",
                                       "vol_window_months", "risk_aversion", "sharpe_mean",
                                       "max_drawdown_median", "meets_objectives", *checks)),
        "dagster/column_schema": table_metadata(table)["dagster/column_schema"],
        "configs": table.height,
        "best_sharpe_mean": dg.MetadataValue.float(float(best["sharpe_mean"] or float("nan"))),
        "best_config_id": best["config_id"],
        "worst_max_drawdown_median": dg.MetadataValue.float(
            float(table["max_drawdown_median"].max() or float("nan"))),
        "meeting_objectives": f"{int(table['meets_objectives'].sum())} of {table.height}",
        **{f"passing_{c.removeprefix('pass_')}": f"{int(table[c].sum())} of {table.height}"
           for c in checks},
    }


@dg.asset_check(asset=strategy_evaluations, description="Every scenario x batch key of "
                "the registered batches has a stored evaluation (a warning while a backfill"
                " is part-way through).")
def evaluation_completeness(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    instance = context.instance
    expected = set(evaluation_partitions.get_partition_keys(dynamic_partitions_store=instance))
    done = instance.get_materialized_partitions(dg.AssetKey("strategy_evaluations"))
    missing = sorted(expected - set(done))
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"expected": len(expected), "missing": len(missing),
                  "missing_sample": ", ".join(missing[:10])},
    )


@dg.asset(group_name="strategies", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1")
def optimisation_history(
    context: dg.AssetExecutionContext,
    agent: OptimisationAgent,
    objectives: ObjectivesResource,
    strategy_configs: pl.DataFrame,
    strategy_evaluations: pl.DataFrame,
) -> dg.MaterializeResult:
    """The optimisation history: every config evaluated so far, in evaluation order, with
    its round, proposer, robustness (worst-scenario share of the best Sharpe), penalties,
    objective and the best objective so far; rescored each round against the best
    configs found so far (engine.optimisation.loop). ``stop_reason`` says whether the
    agent stops (converged, max_configs, time_budget); the pipeline then runs the
    reports, and otherwise another round."""
    ids = set(strategy_configs["config_id"])
    evaluations = strategy_evaluations.filter(pl.col("config_id").is_in(ids))
    elapsed_s = time.time() - _previous_loop_start(context)
    history, stop_reason = score_history(
        strategy_configs, evaluations, objectives.objectives(), agent.settings(),
        elapsed_s=elapsed_s,
    )
    last_round = int(history["round"].max())
    ranked = history.sort("objective", descending=True, nulls_last=True)
    best = ranked.row(0, named=True)
    context.log.info(f"round {last_round}: {history.height} configs, best objective"
                     f" {best['objective']}, {stop_reason or 'continuing'}")
    return dg.MaterializeResult(value=history, metadata={
        **table_metadata(ranked),
        "round": last_round,
        "configs_evaluated": history.height,
        "best_objective": dg.MetadataValue.float(best["objective"]),
        "best_config_id": best["config_id"],
        STOP_REASON: stop_reason or CONTINUE,
        BATCH: strategy_configs["batch"][-1],
        "elapsed_s": round(elapsed_s, 1),
    })
