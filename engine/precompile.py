"""Compile every numba kernel into numba's on-disk cache before it is needed.

A kernel compiles the first time a process calls it with new argument types and stays in
numba's cache (``__pycache__`` next to its module, or ``NUMBA_CACHE_DIR``) for every later
process. From cold that is over a minute of one core, paid by each process that gets there
first: every worker of a test run, the first pipeline run on a new machine. This module
calls the engine on a few paths, so that each kernel compiles for the argument types the
engine gives it, and runs its groups in separate processes, one per core.

The argument types include whether an array is read-only and its layout; the engine
hands its kernels every array they only read as a read-only C-contiguous view
(engine.arrays.kernel_input), so paths simulated here compile the kernels the pipeline's
stored paths run.

    python -m engine.precompile [--jobs N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.live import backtest_portfolio, todays_weights
from engine.portfolio.market_data import synthetic_portfolio_data
from engine.portfolio.paths import simulate_portfolio
from engine.strategy.backtest import backtest_history
from engine.strategy.config import BASE_MIXES
from engine.strategy.evaluation import evaluate


def two_asset() -> None:
    """The two-asset study's kernels: scenario paths, the market and strategy passes."""
    evaluate(simulate_scenario(REGIMES["base"], 4, 0, horizon_years=1), sample_configs(4, 0))


def portfolio() -> None:
    """The multi-asset kernels: portfolio paths with bond buckets, every base mix of both
    sleeves (fixed, inverse vol, risk parity) and the rule pass."""
    configs = [dataclasses.replace(c, risky_mix=BASE_MIXES[i % 3],
                                   defensive_mix=BASE_MIXES[(i // 3) % 3])
               for i, c in enumerate(sample_configs(9, 0))]
    paths = simulate_portfolio(GLOBAL_SIX, REGIMES["base"], 4, 0, horizon_years=3)
    evaluate_portfolio(paths, configs)


def live() -> None:
    """The live signal's kernels: today's weights of every base mix (trailing covariances,
    inverse vol, risk parity) and the backtests of both studies on one history."""
    history = synthetic_portfolio_data(GLOBAL_SIX, dt.date(2026, 1, 2), years=3).history
    levels = np.stack([history[name].to_numpy() for name in GLOBAL_SIX.names])
    dates, risk_free = history["date"], history["risk_free"]
    for i, config in enumerate(sample_configs(3, 0)):
        config = dataclasses.replace(config, risky_mix=BASE_MIXES[i],
                                     defensive_mix=BASE_MIXES[(i + 1) % 3])
        todays_weights(levels, GLOBAL_SIX, config)
        backtest_portfolio(dates, levels, risk_free, GLOBAL_SIX, config)
        backtest_history(dates, levels[0], risk_free, config, levels[-1])


GROUPS: dict[str, Callable[[], None]] = {"portfolio": portfolio, "two_asset": two_asset,
                                         "live": live}
"""The groups, longest first: each compiles its kernels in a process of its own."""


def _timed(name: str) -> tuple[str, float]:
    start = time.perf_counter()
    GROUPS[name]()
    return name, time.perf_counter() - start


def precompile(jobs: int | None = None) -> dict[str, float]:
    """Run every group of :data:`GROUPS`, ``jobs`` processes at a time (default: one per
    core, at most one per group); returns each group's wall seconds."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    jobs = min(len(GROUPS), jobs or os.cpu_count() or 1)
    if jobs == 1:
        return dict(_timed(name) for name in GROUPS)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return dict(pool.map(_timed, GROUPS))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes compiling at once (default: one per core)")
    args = parser.parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    start = time.perf_counter()
    seconds = precompile(args.jobs)
    for name, s in seconds.items():
        print(f"{name:<10} {s:6.1f} s")
    print(f"kernels compiled or loaded from numba's cache in"
          f" {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
