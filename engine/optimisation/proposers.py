"""Proposers of the next batch of configs from the optimisation history: LHS and TPE.

A proposer reads the history table (engine.optimisation.loop.optimisation_history: one
row per evaluated config; only config_id, the parameter columns and ``objective`` are
read) and returns new configs that repeat no config_id of the history or of the batch.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
import polars as pl

from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import PARAMETERS, SearchSpace
from engine.rng import seed_sequence_for
from engine.strategy.config import MIX_FIELDS, RISK_AVERSION_FNS, StrategyConfig
from engine.validation import ConfigError

MAX_ATTEMPTS_PER_CONFIG = 50
"""Draws a proposer may spend per requested config before giving up on duplicates."""


class Proposer(Protocol):
    """Anything that proposes the next batch: ``name`` goes into the history's proposer
    column."""

    name: str

    def propose(
        self, history: pl.DataFrame, n: int, *, round_index: int, seed: int
    ) -> list[StrategyConfig]:
        """``n`` new configs given the history so far, for round ``round_index``."""
        ...


@dataclass(frozen=True, slots=True)
class LhsProposer:
    """A fresh Latin hypercube batch each round, ignoring the results (for comparison).

    Round r draws :func:`~engine.optimisation.sampling.sample_configs` seeded from
    SeedSequence(seed, "lhs", r); configs already in the history are dropped and made up
    from further draws (seeded with the attempt number too).
    """

    space: SearchSpace
    tc_bps: float
    name: str = field(default="lhs", init=False)

    def propose(
        self, history: pl.DataFrame, n: int, *, round_index: int, seed: int
    ) -> list[StrategyConfig]:
        seen = _seen_ids(history)
        configs: list[StrategyConfig] = []
        for attempt in range(MAX_ATTEMPTS_PER_CONFIG):
            stream = seed_sequence_for(seed, self.name, str(round_index), str(attempt))
            for config in sample_configs(n, stream, self.space, tc_bps=self.tc_bps):
                if config.config_id not in seen and len(configs) < n:
                    seen.add(config.config_id)
                    configs.append(config)
            if len(configs) == n:
                return configs
        raise RuntimeError(f"LhsProposer: no {n} new configs in {MAX_ATTEMPTS_PER_CONFIG} draws")


@dataclass(frozen=True, slots=True)
class TpeProposer:
    """Tree-structured Parzen estimator (optuna's TPESampler) through the ask/tell API.

    Notes
    -----
    Each round rebuilds an in-memory study from the history: every evaluated config is
    added as a finished trial (``study.add_trial``) with its objective as the value to
    maximise (a config without an objective is added as failed). The sampler is
    ``TPESampler(multivariate=True, group=True, constant_liar=True, seed=s)`` with s
    drawn from SeedSequence(seed, "tpe", round_index), so a round is a pure function of
    (history, n, round_index, seed). multivariate models the parameters jointly; group
    splits the space by which parameters a trial has, since risk_aversion exists only
    for linear and sigmoid (a conditional parameter); constant_liar treats the batch's
    pending trials as bad, so the n asks of one round spread out instead of piling on
    one point. A proposal whose config_id is already in the history is told that
    config's objective and asked again; one already in the batch stays pending.
    """

    space: SearchSpace
    tc_bps: float
    name: str = field(default="tpe", init=False)

    def propose(
        self, history: pl.DataFrame, n: int, *, round_index: int, seed: int
    ) -> list[StrategyConfig]:
        distributions = _distributions(self.space)
        known = _objectives_by_id(history)
        configs: list[StrategyConfig] = []
        batch: set[str] = set()
        with _quiet_optuna():
            sampler = optuna.samplers.TPESampler(
                multivariate=True, group=True, constant_liar=True,
                seed=_round_seed(seed, self.name, round_index),
            )
            study = optuna.create_study(direction="maximize", sampler=sampler)
            for row in history.iter_rows(named=True):
                study.add_trial(_finished_trial(row, distributions))
            for _ in range(MAX_ATTEMPTS_PER_CONFIG * n):
                trial = study.ask()
                config = self.space.make_config(_suggest(trial, self.space), self.tc_bps)
                if config.config_id in known:
                    objective = known[config.config_id]
                    if _missing(objective):
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    else:
                        study.tell(trial, objective)
                elif config.config_id not in batch:
                    batch.add(config.config_id)
                    configs.append(config)
                    if len(configs) == n:
                        return configs
        raise RuntimeError(
            f"TpeProposer: no {n} new configs in {MAX_ATTEMPTS_PER_CONFIG * n} asks"
        )


def propose_round(
    proposer: Proposer,
    fallback: Proposer,
    history: pl.DataFrame,
    n: int,
    *,
    round_index: int,
    seed: int,
    space: SearchSpace,
) -> tuple[list[StrategyConfig], str, str | None]:
    """One round's batch from ``proposer``, or from ``fallback`` if it fails.

    Returns
    -------
    (configs, the name of the proposer that produced them, the reason for falling back
    or None). The proposer's batch is used when it returns exactly ``n`` configs, each a
    point of ``space`` (:meth:`SearchSpace.validate`), none repeating a config_id of the
    history or of the batch. Any exception it raises, or any invalid batch, hands the
    round to ``fallback`` (the loop passes a TpeProposer) with the reason recorded; the
    fallback's batch is checked the same way and its errors propagate.
    """
    try:
        configs = proposer.propose(history, n, round_index=round_index, seed=seed)
        check_proposals(configs, history, n, space)
        return configs, proposer.name, None
    except Exception as error:  # any failure of the proposer hands the round over
        reason = f"{proposer.name} failed: {type(error).__name__}: {error}"
    configs = fallback.propose(history, n, round_index=round_index, seed=seed)
    check_proposals(configs, history, n, space)
    return configs, fallback.name, reason


def propose_batch(
    proposer: Proposer,
    local: Proposer | None,
    fallback: Proposer,
    history: pl.DataFrame,
    n: int,
    *,
    local_share: float,
    round_index: int,
    seed: int,
    space: SearchSpace,
) -> tuple[list[tuple[list[StrategyConfig], str]], tuple[str, ...]]:
    """One round's batch, split between a global proposer and local refinement.

    Parameters
    ----------
    proposer : proposes n - n_local configs (TPE, LHS, an LLM).
    local : proposes n_local = round(local_share n) configs (the trust region); None: 0.
    fallback : stands in for either that fails (:func:`propose_round`).
    local_share : in [0, 1].

    Returns
    -------
    The parts, each (configs, the name of the proposer that produced them), in order, and
    the reasons of the fallbacks. The local part is asked second, with the global part's
    configs appended to the history as pending rows (no objective), so the two never
    propose the same config.
    """
    n_local = round(local_share * n) if local is not None else 0
    parts: list[tuple[list[StrategyConfig], str]] = []
    reasons: list[str] = []
    for who, count in ((proposer, n - n_local), (local, n_local)):
        if who is None or count == 0:
            continue
        pending = _with_pending(history, [c for configs, _ in parts for c in configs])
        configs, used, reason = propose_round(who, fallback, pending, count,
                                              round_index=round_index, seed=seed, space=space)
        parts.append((configs, used))
        if reason is not None:
            reasons.append(reason)
    return parts, tuple(reasons)


def _with_pending(history: pl.DataFrame, configs: list[StrategyConfig]) -> pl.DataFrame:
    """The history plus one row per proposed, not yet evaluated config (objective null)."""
    if not configs:
        return history
    pending = pl.DataFrame(
        {"config_id": [c.config_id for c in configs],
         **{name: [getattr(c, name) for c in configs] for name in PARAMETERS + MIX_FIELDS}},
        schema_overrides={"vol_window_months": pl.Int64, "risk_aversion": pl.Float64},
    ).with_columns(pl.lit(None, dtype=pl.Float64).alias("objective"))
    return pl.concat([history, pending], how="diagonal_relaxed")


def check_proposals(
    configs: object, history: pl.DataFrame, n: int, space: SearchSpace
) -> None:
    """Raise ConfigError unless ``configs`` is a list of ``n`` StrategyConfigs, each a
    point of ``space``, with no config_id of the history and none twice."""
    if not isinstance(configs, list) or len(configs) != n:
        size = len(configs) if isinstance(configs, list) else type(configs).__name__
        raise ConfigError(f"proposal: expected a list of {n} configs, got {size}")
    seen = _seen_ids(history)
    for config in configs:
        if not isinstance(config, StrategyConfig):
            raise ConfigError(f"proposal: {config!r} is not a StrategyConfig")
        space.validate(config)
        if config.config_id in seen:
            raise ConfigError(f"proposal: config {config.config_id} was already proposed")
        seen.add(config.config_id)


def _seen_ids(history: pl.DataFrame) -> set[str]:
    return set(history["config_id"].to_list()) if "config_id" in history.columns else set()


def _objectives_by_id(history: pl.DataFrame) -> dict[str, float | None]:
    if history.is_empty():
        return {}
    return dict(zip(history["config_id"].to_list(), history["objective"].to_list(), strict=True))


def _round_seed(seed: int, name: str, round_index: int) -> int:
    """A 32-bit seed for round ``round_index`` of proposer ``name``."""
    return int(seed_sequence_for(seed, name, str(round_index)).generate_state(1)[0])


def _distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    d = optuna.distributions
    return {
        "weight_fn": d.CategoricalDistribution(space.weight_fns),
        "target_vol": d.FloatDistribution(*space.target_vol),
        "vol_window_months": d.IntDistribution(*space.vol_window_months),
        "risk_aversion": d.FloatDistribution(*space.risk_aversion),
        **{name: d.CategoricalDistribution(choices)
           for name, choices in zip(MIX_FIELDS, space.mix_choices(), strict=True)
           if name in space.searched_mixes},
    }


def _suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One proposal from a trial; risk_aversion only for the rules that use it."""
    values: dict[str, Any] = {
        "weight_fn": trial.suggest_categorical("weight_fn", space.weight_fns),
        "target_vol": trial.suggest_float("target_vol", *space.target_vol),
        "vol_window_months": trial.suggest_int("vol_window_months", *space.vol_window_months),
    }
    if values["weight_fn"] in RISK_AVERSION_FNS:
        values["risk_aversion"] = trial.suggest_float("risk_aversion", *space.risk_aversion)
    for name, choices in zip(MIX_FIELDS, space.mix_choices(), strict=True):
        if name in space.searched_mixes:
            values[name] = trial.suggest_categorical(name, choices)
    return values


def _finished_trial(
    row: dict[str, Any], distributions: dict[str, optuna.distributions.BaseDistribution]
) -> optuna.trial.FrozenTrial:
    names = ["weight_fn", "target_vol", "vol_window_months"]
    if row["weight_fn"] in RISK_AVERSION_FNS:
        names.append("risk_aversion")
    names.extend(name for name in MIX_FIELDS if name in distributions)
    params = {name: row[name] for name in names}
    used = {name: distributions[name] for name in names}
    if _missing(row["objective"]):
        return optuna.trial.create_trial(
            params=params, distributions=used, state=optuna.trial.TrialState.FAIL
        )
    return optuna.trial.create_trial(params=params, distributions=used, value=row["objective"])


def _missing(objective: float | None) -> bool:
    return objective is None or math.isnan(objective)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence optuna's per-trial logging and its experimental-feature warnings here only."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
