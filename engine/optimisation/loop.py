"""The optimisation loop: round 0 by Latin hypercube, then proposed batches until a stop.

The same steps the Dagster assets run, without Dagster: propose a round, evaluate it in
every scenario, rescore everything evaluated so far, apply the stop rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import polars as pl

from engine.analysis.scoring import PENALTIES, score_configs
from engine.market.paths import ScenarioPaths
from engine.objectives import InvestmentObjectives
from engine.optimisation.convergence import convergence
from engine.optimisation.edges import optimum_edges
from engine.optimisation.proposers import LhsProposer, Proposer, TpeProposer, propose_batch
from engine.optimisation.search_space import SearchSpace
from engine.optimisation.trust_region import TrustRegionProposer
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.paths import PortfolioPaths
from engine.strategy.config import DEFAULT_MIX, MIX_FIELDS, StrategyConfig
from engine.strategy.evaluation import CONFIG_COLUMNS, evaluate
from engine.validation import ConfigError, check_choice, check_int_range, check_range

ProposerName = Literal["tpe", "lhs", "bedrock"]
PROPOSERS: tuple[str, ...] = get_args(ProposerName)
StopReason = Literal["converged", "max_configs", "time_budget"]
STOP_REASONS: tuple[str, ...] = get_args(StopReason)

HISTORY_COLUMNS: tuple[str, ...] = (
    "evaluation_index", "round", "config_id", "proposer", "weight_fn", "target_vol",
    "vol_window_months", "risk_aversion", "risky_mix", "defensive_mix", "tc_bps",
    "robustness", "worst_scenario", "robust",
    *(f"penalty_{name}" for name in PENALTIES), "penalty", "objective", "feasible",
    "own_target_miss", "best_objective_so_far", "improved", "round_best_objective",
    "stop_reason", "optimum_at_edge",
)


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How the agent searches and when it stops.

    Parameters
    ----------
    proposer : the global proposer of rounds 1, 2, ...: "tpe" (default), "lhs" or
        "bedrock" (an LLM; the engine has none, the caller passes it to
        :func:`run_optimisation`). Round 0 is always a Latin hypercube.
    initial_batch : configs of round 0, in [1, 10_000] (256).
    batch_size : configs of every later round, in [1, 10_000] (32).
    local_share : the share of every later round proposed by local refinement around
        the incumbents (:class:`~engine.optimisation.trust_region.TrustRegionProposer`),
        in [0, 1] (0.5); the rest comes from ``proposer``.
    trust_radius : the local refinement's initial step, a fraction of each parameter's
        range, in (0, 1] (0.15).
    max_configs : stop once this many configs are evaluated, in [1, 100_000] (400).
    window, tolerance : stop when the best objective so far improved by less than
        ``tolerance`` (relative, in [0, 1]; 0.01) over ``window`` consecutive configs
        (in [1, 10_000]; 20).
    time_budget_s : stop once this much wall time has passed, seconds, in (0, 604800]
        (1800).
    seed : the run seed every proposer's stream derives from, in [0, 2^32 - 1] (0).
    """

    proposer: ProposerName = "tpe"
    initial_batch: int = 256
    batch_size: int = 32
    local_share: float = 0.5
    trust_radius: float = 0.15
    max_configs: int = 400
    window: int = 20
    tolerance: float = 0.01
    time_budget_s: float = 1800.0
    seed: int = 0

    def __post_init__(self) -> None:
        owner = "AgentSettings"
        set_ = object.__setattr__
        set_(self, "proposer", check_choice(owner, "proposer", self.proposer, PROPOSERS))
        for field, high in (("initial_batch", 10_000), ("batch_size", 10_000),
                            ("max_configs", 100_000), ("window", 10_000)):
            set_(self, field, check_int_range(owner, field, getattr(self, field), 1, high))
        set_(self, "tolerance", check_range(owner, "tolerance", self.tolerance, 0.0, 1.0))
        set_(self, "local_share", check_range(owner, "local_share", self.local_share, 0.0, 1.0))
        set_(self, "trust_radius", check_range(owner, "trust_radius", self.trust_radius, 0.0,
                                               1.0, low_inclusive=False))
        set_(self, "time_budget_s", check_range(owner, "time_budget_s", self.time_budget_s,
                                                0.0, 604_800.0, low_inclusive=False))
        set_(self, "seed", check_int_range(owner, "seed", self.seed, 0, 2**32 - 1))


@dataclass(frozen=True, slots=True)
class OptimisationResult:
    """What :func:`run_optimisation` returns.

    history : the final :func:`optimisation_history` table.
    evaluations : the stacked evaluate() table of every config in every scenario.
    stop_reason : why the loop stopped.
    fallbacks : (round, reason) of every round whose proposer failed and TPE stood in.
    """

    history: pl.DataFrame
    evaluations: pl.DataFrame
    stop_reason: StopReason
    fallbacks: tuple[tuple[int, str], ...] = ()


def config_rows(
    configs: Sequence[StrategyConfig], *, round_index: int, proposer: str
) -> pl.DataFrame:
    """The ``configs`` input of :func:`optimisation_history` for one round: columns round,
    config_id, proposer and the StrategyConfig fields (risk_aversion null when unused),
    base mixes included."""
    return pl.DataFrame(
        {
            "round": [round_index] * len(configs),
            "config_id": [c.config_id for c in configs],
            "proposer": [proposer] * len(configs),
            **{name: [getattr(c, name) for c in configs]
               for name in CONFIG_COLUMNS + MIX_FIELDS},
        },
        schema_overrides={"round": pl.Int64, "vol_window_months": pl.Int64,
                          "risk_aversion": pl.Float64, "proposer": pl.String,
                          "risky_mix": pl.String, "defensive_mix": pl.String},
    )


def optimisation_history(
    configs: pl.DataFrame,
    evaluations: pl.DataFrame,
    objectives: InvestmentObjectives,
    settings: AgentSettings,
    *,
    elapsed_s: float,
    space: SearchSpace | None = None,
) -> tuple[pl.DataFrame, StopReason | None]:
    """Score every config evaluated so far and apply the stop rule.

    Parameters
    ----------
    configs : one row per config in evaluation order: round, config_id, proposer and the
        StrategyConfig fields (:func:`config_rows`, stacked over rounds); a table without
        the base mixes is the two-asset study's, its mixes "fixed".
    evaluations : the stacked evaluate() table of those configs in every scenario.
    objectives : limits, robustness threshold and penalty weight
        (:func:`engine.analysis.scoring.score_configs`).
    settings : the stop rule's window, tolerance, max_configs and time budget.
    elapsed_s : wall time since the loop started, seconds.
    space : the ranges searched (default ``SearchSpace()``), for optimum_at_edge.

    Returns
    -------
    The history, one row per config in evaluation order, with columns
    :data:`HISTORY_COLUMNS` (evaluation_index from 1; stop_reason the same on every row,
    null while the loop goes on; optimum_at_edge the same on every row: the ranges whose
    edge the best config so far sits on, :func:`~engine.optimisation.edges.optimum_edges`,
    null when none), and the stop reason or None. Rounds must be contiguous in
    evaluation order (a round's configs follow each other).

    Notes
    -----
    Every objective is recomputed against the whole current set (best_s of the relative
    score is the best among all configs evaluated so far), so earlier objectives can
    fall as better configs appear; best_objective_so_far is the running max of that
    rescored sequence (a config without an objective never counts), ``improved`` marks
    the configs that raised it (the first config with an objective included), and
    round_best_objective is its value at the end of the config's round. The loop stops,
    in this order of precedence:

    - "converged": :func:`~engine.optimisation.convergence.convergence`, with the rounds
      as its batches, holds at the end of the latest round: the best improved by less
      than ``tolerance`` (relative) over the last max(window, latest round's size)
      configs. Windows are counted in configs (one config = one iteration of the source
      design's stop rule); a round of b configs moves the window by b, and the rule is
      only tested where a round ends and never against a point inside round 0, so a
      round that raised the best by ``tolerance`` or more never stops the loop, and the
      loop evaluates at least ``window`` proposed configs after round 0;
    - "max_configs": at least ``max_configs`` configs are evaluated;
    - "time_budget": ``elapsed_s >= time_budget_s``.
    """
    configs = configs.with_columns(
        pl.lit(DEFAULT_MIX, dtype=pl.String).alias(name)
        for name in MIX_FIELDS if name not in configs.columns
    )
    scores = score_configs(evaluations, objectives).drop("rank")
    history = (
        configs.with_row_index("evaluation_index", offset=1)
        .with_columns(pl.col("evaluation_index").cast(pl.Int64))
        .join(scores, on="config_id", how="left")
        .sort("evaluation_index")
    )
    objective = history["objective"].fill_null(-np.inf).fill_nan(-np.inf).to_numpy()
    best = np.maximum.accumulate(objective) if objective.size else objective
    improved = objective > np.r_[-np.inf, best[:-1]] if objective.size else objective > 0
    sizes = history.group_by("round", maintain_order=True).len()["len"].to_list()
    rule, _ = convergence(objective, settings.window, settings.tolerance, batches=sizes)
    reason: StopReason | None = None
    if history.height and rule["converged"][-1]:
        reason = "converged"
    elif history.height >= settings.max_configs:
        reason = "max_configs"
    elif elapsed_s >= settings.time_budget_s:
        reason = "time_budget"
    edge = optimum_edges(history, space or SearchSpace())
    history = history.with_columns(
        pl.Series("best_objective_so_far", best, dtype=pl.Float64).replace(-np.inf, None),
        pl.Series("improved", improved, dtype=pl.Boolean),
        pl.lit(reason, dtype=pl.String).alias("stop_reason"),
        pl.lit(edge, dtype=pl.String).alias("optimum_at_edge"),
    ).with_columns(
        pl.col("best_objective_so_far").last().over("round").alias("round_best_objective"),
    )
    return history.select(HISTORY_COLUMNS), reason


def run_optimisation(
    paths: Mapping[str, ScenarioPaths] | Mapping[str, PortfolioPaths],
    objectives: InvestmentObjectives,
    settings: AgentSettings,
    proposer: Proposer | None = None,
    *,
    space: SearchSpace | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> OptimisationResult:
    """Run the whole loop in this process: rounds until the stop rule fires.

    Parameters
    ----------
    paths : scenario name -> its simulated paths (two-asset ScenarioPaths, or the
        PortfolioPaths of any portfolio); every config is evaluated in each.
    objectives : the mandate, the robustness threshold, the penalty weight and the one
        transaction-cost assumption (assumed_tc_bps) every config carries.
    settings : batch sizes, stop rule, seed and the proposer's name.
    proposer : the proposer of rounds 1, 2, ...; None builds the one ``settings.proposer``
        names ("tpe" or "lhs"; "bedrock" must be passed in). TPE stands in for any round
        it fails (:func:`~engine.optimisation.proposers.propose_round`).
    space : the search space (default ``SearchSpace()``).
    clock : seconds, monotonic; injectable for tests.

    Notes
    -----
    Round 0 is ``min(initial_batch, max_configs)`` Latin-hypercube configs; round r >= 1
    has ``min(batch_size, max_configs - evaluated)``. After each round the history is
    rescored and :func:`optimisation_history`'s stop rule decides. The same
    (paths, objectives, settings, space) give the same history: every proposer stream
    derives from ``settings.seed`` and the round index.
    """
    if not paths:
        raise ValueError("run_optimisation needs the paths of at least one scenario")
    started = clock()
    space = space or SearchSpace()
    tc_bps = objectives.assumed_tc_bps
    fallback = TpeProposer(space, tc_bps)
    proposer = proposer or _named_proposer(settings.proposer, space, tc_bps)
    local = local_proposer(settings, space, tc_bps)
    rounds: list[pl.DataFrame] = []
    tables: list[pl.DataFrame] = []
    fallbacks: list[tuple[int, str]] = []
    history = pl.DataFrame()
    round_index = 0
    while True:
        if round_index == 0:
            n = min(settings.initial_batch, settings.max_configs)
            batch = LhsProposer(space, tc_bps).propose(history, n, round_index=0,
                                                       seed=settings.seed)
            parts = [(batch, "lhs")]
        else:
            n = min(settings.batch_size, settings.max_configs - history.height)
            parts, reasons = propose_batch(proposer, local, fallback, history, n,
                                           local_share=settings.local_share,
                                           round_index=round_index, seed=settings.seed,
                                           space=space)
            fallbacks.extend((round_index, reason) for reason in reasons)
        batch = [config for configs, _ in parts for config in configs]
        rounds.extend(config_rows(configs, round_index=round_index, proposer=used)
                      for configs, used in parts)
        tables.extend(_evaluate(scenario, batch, objectives) for scenario in paths.values())
        evaluations = pl.concat(tables)
        history, stop = optimisation_history(pl.concat(rounds), evaluations, objectives,
                                             settings, elapsed_s=clock() - started,
                                             space=space)
        if stop is not None:
            return OptimisationResult(history, evaluations, stop, tuple(fallbacks))
        round_index += 1


def local_proposer(settings: AgentSettings, space: SearchSpace,
                   tc_bps: float) -> TrustRegionProposer | None:
    """The local refinement of rounds >= 1, or None when ``settings.local_share`` is 0."""
    if settings.local_share == 0.0:
        return None
    return TrustRegionProposer(space, tc_bps, radius=settings.trust_radius)


def _evaluate(
    paths: ScenarioPaths | PortfolioPaths, configs: Sequence[StrategyConfig],
    objectives: InvestmentObjectives,
) -> pl.DataFrame:
    """The evaluation table of one scenario, two-asset or portfolio paths; a portfolio
    table keeps the two-asset columns and the base mixes (its per-asset weights are for
    the reports, not the loop)."""
    if isinstance(paths, PortfolioPaths):
        table = evaluate_portfolio(paths, configs, objectives)
        return table.drop([f"weight_{name}_mean" for name in paths.names])
    return evaluate(paths, configs, objectives)


def _named_proposer(name: str, space: SearchSpace, tc_bps: float) -> Proposer:
    if name == "tpe":
        return TpeProposer(space, tc_bps)
    if name == "lhs":
        return LhsProposer(space, tc_bps)
    raise ConfigError(
        f"AgentSettings.proposer = {name!r} has no engine implementation; pass the"
        " proposer to run_optimisation (the Bedrock proposer lives in dynalloc_dagster)"
    )
