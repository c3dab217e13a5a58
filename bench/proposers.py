"""TPE against Latin hypercube sampling at the same budget, over several seeds.

Each proposer runs the engine's optimisation loop (5 scenarios x 1000 paths, round 0 the
same 32-config Latin hypercube batch, then batches of 8, no trust-region share) to a
fixed budget of configs with the convergence stop switched off. The objective is
relative (a config's share of the best Sharpe found in each scenario), so runs that
found different bests cannot be compared on their own scores: every run's configs are
pooled and rescored together, and each run's best config is reported on that common
scale.

    python bench/proposers.py [--budget 60] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import polars as pl

from engine.analysis.scoring import score_configs
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, run_optimisation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--paths", type=int, default=1000)
    args = parser.parse_args()
    objectives = InvestmentObjectives()
    paths = {name: simulate_scenario(regime, args.paths, 0) for name, regime in REGIMES.items()}
    runs: dict[tuple[str, int], pl.DataFrame] = {}
    evaluations = []
    walls: dict[str, list[float]] = {"lhs": [], "tpe": []}
    for seed in range(args.seeds):
        for proposer in ("lhs", "tpe"):
            settings = AgentSettings(proposer=proposer, initial_batch=32, batch_size=8,
                                     local_share=0.0, max_configs=args.budget,
                                     window=10 * args.budget, seed=seed)
            start = time.perf_counter()
            result = run_optimisation(paths, objectives, settings)
            walls[proposer].append(time.perf_counter() - start)
            runs[proposer, seed] = result.history
            evaluations.append(result.evaluations)
    pooled = pl.concat(evaluations).unique(subset=["scenario", "config_id"], keep="first")
    common = dict(score_configs(pooled, objectives).select("config_id", "objective").iter_rows())
    print(f"budget {args.budget} configs, {args.seeds} seeds, {args.paths} paths x 5 scenarios;"
          f" objectives rescored on the pooled {pooled['config_id'].n_unique()} configs")
    print(f"{'proposer':<9}{'mean best':>10}{'stdev':>8}{'min':>8}{'max':>8}{'s/run':>8}")
    for proposer in ("lhs", "tpe"):
        best = [max(common[c] for c in runs[proposer, s]["config_id"]) for s in range(args.seeds)]
        print(f"{proposer:<9}{statistics.mean(best):>10.4f}{statistics.stdev(best):>8.4f}"
              f"{min(best):>8.4f}{max(best):>8.4f}{statistics.mean(walls[proposer]):>8.1f}")
    wins = sum(
        max(common[c] for c in runs["tpe", s]["config_id"])
        > max(common[c] for c in runs["lhs", s]["config_id"]) for s in range(args.seeds))
    print(f"tpe better than lhs in {wins} of {args.seeds} seeds")


if __name__ == "__main__":
    main()
