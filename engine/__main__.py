"""``python -m engine``: the optimisation loop over the five regimes, without Dagster.

Round 0 is a Latin hypercube, later rounds come from the proposer, until the stop rule
fires; prints each round's best objective and the final leaderboard.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.landscape import search_rounds
from engine.optimisation.loop import AgentSettings, OptimisationResult, run_optimisation

DEFAULTS = AgentSettings()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--paths", type=int, default=1000, help="paths per regime")
    parser.add_argument("--horizon-years", type=int, default=5, help="evaluation years")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed,
                        help="seeds the paths and every proposer")
    parser.add_argument("--proposer", choices=("tpe", "lhs"), default=DEFAULTS.proposer)
    parser.add_argument("--initial-batch", type=int, default=DEFAULTS.initial_batch)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--local-share", type=float, default=DEFAULTS.local_share,
                        help="share of each later round refined around the incumbents")
    parser.add_argument("--max-configs", type=int, default=DEFAULTS.max_configs)
    parser.add_argument("--window", type=int, default=DEFAULTS.window)
    parser.add_argument("--tolerance", type=float, default=DEFAULTS.tolerance)
    parser.add_argument("--time-budget", type=float, default=DEFAULTS.time_budget_s,
                        help="seconds of wall time")
    parser.add_argument("--tc-bps", type=float, default=InvestmentObjectives().assumed_tc_bps,
                        help="the cost assumption every config is ranked at")
    parser.add_argument("--top", type=int, default=10, help="leaderboard rows shown")
    args = parser.parse_args(argv)

    settings = AgentSettings(
        proposer=args.proposer, initial_batch=args.initial_batch, batch_size=args.batch_size,
        local_share=args.local_share, max_configs=args.max_configs, window=args.window,
        tolerance=args.tolerance, time_budget_s=args.time_budget, seed=args.seed,
    )
    objectives = InvestmentObjectives(assumed_tc_bps=args.tc_bps)
    started = time.perf_counter()
    paths = {
        name: simulate_scenario(regime, args.paths, args.seed, horizon_years=args.horizon_years)
        for name, regime in REGIMES.items()
    }
    result = run_optimisation(paths, objectives, settings)
    elapsed = time.perf_counter() - started
    _print(result, objectives, args.top, elapsed)


def _print(
    result: OptimisationResult, objectives: InvestmentObjectives, top: int, elapsed: float
) -> None:
    history = result.history
    per_round = search_rounds(history)
    leaderboard = history.sort(["objective", "config_id"], descending=[True, False],
                               nulls_last=True).select(
        pl.int_range(1, pl.len() + 1).alias("rank"), "config_id", "round", "proposer",
        "weight_fn", "target_vol", "vol_window_months", "risk_aversion", "objective",
        "robustness", "penalty", "robust", "worst_scenario",
    )
    with pl.Config(tbl_rows=max(top, per_round.height), tbl_cols=-1, tbl_width_chars=160,
                   float_precision=4):
        print(f"Rounds (objectives rescored against all {history.height} configs;"
              f" assumed costs {objectives.assumed_tc_bps:g} bp):")
        print(per_round)
        print(f"Leaderboard (top {top} of {history.height}; robust = robustness >="
              f" {objectives.robustness_threshold:g}):")
        print(leaderboard.head(top))
    for round_index, reason in result.fallbacks:
        print(f"round {round_index}: fell back to tpe ({reason})")
    print(f"stopped: {result.stop_reason} after {history.height} configs in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
