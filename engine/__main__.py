"""``python -m engine``: the full sweep (5 regimes x paths x LHS configs), then the leaderboard."""

from __future__ import annotations

import argparse

import polars as pl

from engine.analysis.robustness import best_per_scenario, robustness_scores
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.strategy.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--paths", type=int, default=1000, help="paths per regime")
    parser.add_argument("--configs", type=int, default=100, help="LHS configs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=10, help="leaderboard rows shown")
    args = parser.parse_args()

    configs = sample_configs(args.configs, args.seed)
    evaluations = pl.concat(
        evaluate(simulate_scenario(regime, args.paths, args.seed), configs)
        for regime in REGIMES.values()
    )
    leaderboard = robustness_scores(evaluations).join(
        evaluations.group_by("config_id").agg(
            pl.col("weight_fn").first(),
            pl.col("target_vol").first(),
            pl.col("vol_window_months").first(),
            pl.col("risk_aversion").first(),
            pl.col("tc_bps").first(),
            pl.col("sharpe_mean").min().alias("worst_sharpe"),
        ),
        on="config_id",
    ).sort("rank")
    with pl.Config(tbl_rows=args.top, tbl_cols=-1, tbl_width_chars=160, float_precision=3):
        print("Best config per scenario (mean Sharpe across paths):")
        print(best_per_scenario(evaluations))
        print(f"Robustness leaderboard (top {args.top} of {leaderboard.height}):")
        print(leaderboard.head(args.top))


if __name__ == "__main__":
    main()
