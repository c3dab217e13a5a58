"""The full engine sweep: 5 regimes x 1000 paths x (24 + 60) months daily x 100 configs.

Prints wall time, peak memory, throughput, the time split (paths / rolling vol and month
sums / rule (target weights), backtest and metrics, one compiled pass / summary tables) in
wall and CPU seconds (CPU: every thread of this process, the figure to compare on a busy machine),
and the same evaluation through a naive per-path, per-month Python loop for 2 configs so
the speed-up is visible. Then the same sweep on the
6-asset portfolio engine.portfolio.examples.GLOBAL_SIX (3 equity indices, 3 bond buckets;
the configs' base mixes cycle through fixed, inverse_vol and risk_parity) and its time
against the two-asset sweep's.

    python bench/engine_sweep.py [--paths 1000] [--configs 100] [--naive-paths 1000]
        [--repeat 1]   (more: both sweeps again, alternating; each ratio and their median)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import resource
import statistics
import time
from collections import defaultdict

import numpy as np
import polars as pl
from conditions import conditions

from engine.analysis.robustness import robustness_scores
from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_YEAR
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.sampling import sample_configs
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.paths import simulate_portfolio
from engine.strategy import StrategyConfig, market_from_paths, metrics_table, target_weights
from engine.strategy.config import BASE_MIXES
from engine.strategy.portfolio import month_inputs, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--naive-paths", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="time both sweeps this many times, alternating, and print the"
                        " ratio of each pair and their median")
    args = parser.parse_args()
    print(conditions())

    t0 = time.perf_counter()
    _warm_up_kernels()
    compile_s = time.perf_counter() - t0

    split: dict[str, float] = defaultdict(float)
    split_cpu: dict[str, float] = defaultdict(float)
    configs = sample_configs(args.configs, args.seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    evaluations, leaderboard, all_paths, fast_sharpes = _two_asset_sweep(
        configs, args.paths, args.seed, _Split(split, split_cpu))
    sweep_s = time.perf_counter() - start
    sweep_cpu = time.process_time() - start_cpu
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    n_months = 60
    path_months = len(REGIMES) * args.paths * n_months * args.configs
    print(f"sweep: {len(REGIMES)} regimes x {args.paths} paths x (24 + 60) months daily"
          f" x {args.configs} configs")
    print(f"wall (sweep)           {sweep_s:8.2f} s")
    print(f"cpu (sweep)            {sweep_cpu:8.2f} s (all threads)")
    print(f"numba kernels ready in {compile_s:8.2f} s (compile on first run, cache after)")
    print(f"wall (total)           {sweep_s + compile_s:8.2f} s")
    print(f"peak memory (RSS)      {peak_gib:8.2f} GiB")
    print(f"throughput             {path_months / sweep_s:,.0f} config-path-months / s")
    for stage, seconds in split.items():
        print(f"  {stage:<22} {seconds:7.2f} s  ({100 * seconds / sweep_s:4.1f}%)"
              f"   cpu {split_cpu[stage]:7.2f} s  ({100 * split_cpu[stage] / sweep_cpu:4.1f}%)")
    print(f"evaluation rows        {evaluations.height}")
    print(f"robust configs         {int(leaderboard['robust'].sum())}"
          f" (best robustness {leaderboard['robustness'][0]:.3f})")

    naive_configs = configs[:2]
    naive_paths = min(args.naive_paths, args.paths)
    tick = time.perf_counter()
    gaps = []
    for name, paths in all_paths.items():
        for i, config in enumerate(naive_configs):
            naive = _naive_sharpes(paths, config, naive_paths)
            gaps.append(np.max(np.abs(np.array(naive) - fast_sharpes[name][i, :naive_paths])))
    naive_s = time.perf_counter() - tick
    per_config_naive = naive_s / (len(naive_configs) * naive_paths / args.paths)
    per_config_fast = sweep_s / args.configs
    print(f"naive loop, 2 configs x {naive_paths} paths x 5 regimes: {naive_s:.2f} s"
          f" -> {per_config_naive:.2f} s per config at {args.paths} paths")
    print(f"naive vs vectorised Sharpe, max abs difference: {max(gaps):.2e}")
    print(f"vectorised sweep: {per_config_fast:.3f} s per config (paths included)"
          f" -> speed-up x{per_config_naive / per_config_fast:,.0f}")
    del all_paths
    ratios = [_portfolio_sweep(configs, args.paths, args.seed, sweep_s, sweep_cpu)]
    for _ in range(args.repeat - 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        _two_asset_sweep(configs, args.paths, args.seed,
                         _Split(defaultdict(float), defaultdict(float)))
        ratios.append(_portfolio_sweep(configs, args.paths, args.seed,
                                       time.perf_counter() - start,
                                       time.process_time() - start_cpu, quiet=True))
    if args.repeat > 1:
        print("6-asset / two-asset, each pair (wall): "
              + ", ".join(f"{r:.2f}" for r in ratios)
              + f"; median {statistics.median(ratios):.2f} x (target <= 3)")


def _two_asset_sweep(configs: list[StrategyConfig], n_paths: int, seed: int, clock: _Split
                     ) -> tuple[pl.DataFrame, pl.DataFrame, dict, dict]:
    """Every regime's paths simulated and every config evaluated on them: the evaluations,
    the robustness leaderboard, the paths and the first two configs' Sharpe ratios by
    regime (for the naive loop's comparison)."""
    tables, all_paths, fast_sharpes = [], {}, {}
    for name, regime in REGIMES.items():
        with clock("paths"):
            paths = simulate_scenario(regime, n_paths, seed)
        with clock("rolling vol + sums"):
            market = market_from_paths(paths)
            inputs = month_inputs(market, configs)
        with clock("rule+backtest+metrics"):
            run = simulate(market, inputs, configs, per_month=False)
        with clock("summary tables"):
            tables.append(metrics_table(run, scenario=name))
        all_paths[name] = paths
        fast_sharpes[name] = run.metrics["sharpe"][:2]
        del market, inputs, run
    with clock("summary tables"):
        evaluations = pl.concat(tables)
        leaderboard = robustness_scores(evaluations, InvestmentObjectives().robustness_threshold)
    return evaluations, leaderboard, all_paths, fast_sharpes


def _portfolio_sweep(configs, n_paths: int, seed: int, two_asset_s: float,
                     two_asset_cpu: float, *, quiet: bool = False) -> float:
    """The same sweep on the 6-asset portfolio, printed against the two-asset one (only
    the ratio when ``quiet``); returns the ratio of their wall times."""
    mixed = [dataclasses.replace(c, risky_mix=BASE_MIXES[i % 3],
                                 defensive_mix=BASE_MIXES[(i // 3) % 3])
             for i, c in enumerate(configs)]
    evaluate_portfolio(simulate_portfolio(GLOBAL_SIX, REGIMES["base"], 4, 0, horizon_years=3),
                       mixed[:3])
    split: dict[str, float] = defaultdict(float)
    split_cpu: dict[str, float] = defaultdict(float)
    clock = _Split(split, split_cpu)
    start, start_cpu = time.perf_counter(), time.process_time()
    for regime in REGIMES.values():
        with clock("paths"):
            paths = simulate_portfolio(GLOBAL_SIX, regime, n_paths, seed)
        with clock("rule + metrics"):
            evaluate_portfolio(paths, mixed)
        del paths
    sweep_s = time.perf_counter() - start
    sweep_cpu = time.process_time() - start_cpu
    if quiet:
        print(f"again: two-asset {two_asset_s:.2f} s, 6-asset {sweep_s:.2f} s,"
              f" {sweep_s / two_asset_s:.2f} x wall, {sweep_cpu / two_asset_cpu:.2f} x cpu")
        return sweep_s / two_asset_s
    print(f"6-asset sweep ({', '.join(GLOBAL_SIX.names)}): {len(REGIMES)} regimes x"
          f" {n_paths} paths x {len(mixed)} configs")
    print(f"wall (6-asset sweep)   {sweep_s:8.2f} s")
    print(f"cpu (6-asset sweep)    {sweep_cpu:8.2f} s (all threads)")
    for stage, seconds in split.items():
        print(f"  {stage:<22} {seconds:7.2f} s  ({100 * seconds / sweep_s:4.1f}%)"
              f"   cpu {split_cpu[stage]:7.2f} s  ({100 * split_cpu[stage] / sweep_cpu:4.1f}%)")
    print(f"6-asset / two-asset    {sweep_s / two_asset_s:8.2f} x wall,"
          f" {sweep_cpu / two_asset_cpu:.2f} x cpu (target <= 3)")
    return sweep_s / two_asset_s


class _Split:
    """``with split("stage"):`` adds the block's wall and CPU seconds to the stage."""

    def __init__(self, wall: dict[str, float], cpu: dict[str, float]) -> None:
        self.wall, self.cpu, self.stage = wall, cpu, ""

    def __call__(self, stage: str) -> _Split:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *_: object) -> None:
        self.wall[self.stage] += time.perf_counter() - self.t0
        self.cpu[self.stage] += time.process_time() - self.c0


def _warm_up_kernels() -> None:
    paths = simulate_scenario(REGIMES["base"], 4, 0, horizon_years=1)
    market = market_from_paths(paths)
    configs = sample_configs(2, 0)
    simulate(market, month_inputs(market, configs), configs, per_month=False)


def _naive_sharpes(paths, config: StrategyConfig, n_paths: int) -> list[float]:
    """Per path, per month: trailing vol, weight, drift, cost, return; then Sharpe and
    max drawdown per path, all in plain Python loops."""
    sharpes = []
    window = config.window_days
    for p in range(n_paths):
        equity, bond, cash = paths.equity[p], paths.bond[p], paths.cash[p]
        nav, peak, worst, drifted, excess = 1.0, 1.0, 0.0, None, []
        for k in range(paths.warmup_months, paths.n_months):
            d0, d1 = k * 21, (k + 1) * 21
            logs = np.diff(np.log(equity[d0 - window : d0 + 1]))
            rv = float(np.std(logs, ddof=1)) * math.sqrt(TRADING_DAYS_PER_YEAR)
            w = float(target_weights(np.array(rv), config))
            cost = 0.0 if drifted is None else 2 * config.tc_bps / 1e4 * abs(w - drifted)
            after = nav * (1 - cost)
            for t in range(d0 + 1, d1 + 1):
                value = after * (w * equity[t] / equity[d0] + (1 - w) * bond[t] / bond[d0])
                peak = max(peak, value)
                worst = max(worst, 1 - value / peak)
            r_e, r_b = equity[d1] / equity[d0] - 1, bond[d1] / bond[d0] - 1
            gross = w * r_e + (1 - w) * r_b
            drifted = w * (1 + r_e) / (1 + gross)
            new_nav = after * (1 + gross)
            excess.append(new_nav / nav - 1 - (cash[d1] / cash[d0] - 1))
            nav = new_nav
        sharpes.append(float(np.mean(excess) / np.std(excess, ddof=1)) * math.sqrt(MONTHS_PER_YEAR))
    return sharpes


if __name__ == "__main__":
    main()
