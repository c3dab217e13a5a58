"""Compile every numba kernel into numba's on-disk cache before it is needed.

A kernel compiles the first time a process calls it with new argument types and stays in
numba's cache (:mod:`engine.kernel_cache`: a folder per version of the engine) for every later
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
import polars as pl

from engine.analysis.allocation import weight_paths
from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_MONTH
from engine.market.market_data import synthetic_market_data
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.portfolio.evaluation import (
    PortfolioMarket,
    RulePass,
    evaluate_portfolio,
    market_from_portfolio_paths,
)
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.live import backtest_portfolio, todays_weights
from engine.portfolio.market_data import synthetic_portfolio_data
from engine.portfolio.paths import PortfolioPaths, simulate_portfolio
from engine.strategy.backtest import backtest_history
from engine.strategy.config import BASE_MIXES, StrategyConfig
from engine.strategy.evaluation import evaluate

AS_OF = dt.date(2026, 1, 2)
"""The last day of the histories the backtests run on (any weekday)."""
PATHS, WARMUP_MONTHS, HORIZON_YEARS = 4, 24, 3
"""The multi-asset paths the sweep's kernels compile on: how many, and their months."""


def two_asset() -> None:
    """The two-asset study's kernels: scenario paths, the market and strategy passes of the
    sweep and of the backtest on a history, the month-by-month weights of one rule."""
    configs = sample_configs(4, 0)
    paths = simulate_scenario(REGIMES["base"], 4, 0, horizon_years=1)
    evaluate(paths, configs)
    weight_paths(paths, configs[0])
    history = synthetic_market_data(AS_OF, years=3).history
    backtest_history(history["date"], history["close"], history["risk_free"], configs[0],
                     history["bond_close"])


def portfolio_mixes() -> None:
    """The multi-asset paths with bond buckets and the base mixes of both sleeves (fixed,
    inverse vol, risk parity), as the sweep builds them."""
    rule = RulePass.of(market_from_portfolio_paths(_six_asset_paths()), _mixed_configs())
    rule.mixer.fill(rule.levels, 0, rule.mixer.empty(rule.n_paths))


def portfolio_rule() -> None:
    """The multi-asset rule pass, on equal-weight base mixes of made-up levels: no path or
    mix kernel is compiled for it, so it compiles beside :func:`portfolio_mixes`."""
    months = HORIZON_YEARS * MONTHS_PER_YEAR
    n_days = (WARMUP_MONTHS + months) * TRADING_DAYS_PER_MONTH
    rng = np.random.default_rng(0)
    levels = np.exp(np.cumsum(rng.normal(0.0, 0.01, (len(GLOBAL_SIX.ordered), PATHS,
                                                      n_days + 1)), axis=-1))
    cash = np.exp(np.cumsum(np.full((PATHS, n_days + 1), 1e-4), axis=-1))
    market = PortfolioMarket(GLOBAL_SIX, levels, cash,
                             np.arange(WARMUP_MONTHS, WARMUP_MONTHS + months + 1,
                                       dtype=np.int64) * TRADING_DAYS_PER_MONTH)
    rule = RulePass.of(market, _mixed_configs())
    mixes = rule.mixer.empty(PATHS)
    mixes.risky[...] = 1.0 / mixes.risky.shape[-1]
    mixes.risky_vol[...] = 0.15
    mixes.defensive[...] = 1.0 / mixes.defensive.shape[-1]
    rule.run(mixes, 0)


def portfolio() -> None:
    """The sweep and the backtest on a history of the multi-asset portfolio, once
    :func:`portfolio_mixes` and :func:`portfolio_rule` have compiled their kernels: what
    they did not compile."""
    configs = _mixed_configs()
    evaluate_portfolio(_six_asset_paths(), configs)
    history, levels = _six_asset_history()
    backtest_portfolio(history["date"], levels, history["risk_free"], GLOBAL_SIX, configs[2])


def todays_weights_of_every_mix() -> None:
    """The live signal's multi-asset kernels: trailing covariances, inverse vol and the
    scalar risk-parity solve of today's weights."""
    _, levels = _six_asset_history()
    for config in _mixed_configs()[:3]:
        todays_weights(levels, GLOBAL_SIX, config)


def _six_asset_paths() -> PortfolioPaths:
    """:data:`PATHS` paths of the six-asset portfolio in the base regime."""
    return simulate_portfolio(GLOBAL_SIX, REGIMES["base"], PATHS, 0,
                              warmup_months=WARMUP_MONTHS, horizon_years=HORIZON_YEARS)


def _six_asset_history() -> tuple[pl.DataFrame, np.ndarray]:
    """Three years of synthetic six-asset history to :data:`AS_OF` and its levels
    (n_assets, n_days), in the spec's order."""
    history = synthetic_portfolio_data(GLOBAL_SIX, AS_OF, years=3).history
    return history, np.stack([history[name].to_numpy() for name in GLOBAL_SIX.names])


def _mixed_configs() -> list[StrategyConfig]:
    """Nine configs whose risky and defensive base mixes cover every pair."""
    return [dataclasses.replace(c, risky_mix=BASE_MIXES[i % 3],
                                defensive_mix=BASE_MIXES[(i // 3) % 3])
            for i, c in enumerate(sample_configs(9, 0))]


GROUPS: dict[str, tuple[Callable[[], None], ...]] = {
    "mixes": (portfolio_mixes,),
    "two_asset": (two_asset, portfolio_rule, todays_weights_of_every_mix),
}
"""The groups, longest first, each compiled in a process of its own and taking about as
long: the base mixes (some 40% of all the compiling) alone; the two-asset study, the
multi-asset rule pass and today's weights together. Today's weights share the risk-parity
solve and the path simulation with the base mixes, compiled again in the other process,
yet on two cores the whole took 58.4 s against 63.7 s with today's weights beside the
mixes (56 s and 51 s a group, against 61 s and 40 s)."""
LAST: dict[str, tuple[Callable[[], None], ...]] = {"portfolio": (portfolio,)}
"""Run after every group, in one of their processes: the multi-asset sweep and backtest,
whose kernels the groups have cached but for a few small ones."""


def _timed(name: str) -> tuple[str, float]:
    start = time.perf_counter()
    for compile_by_running in (GROUPS | LAST)[name]:
        compile_by_running()
    return name, time.perf_counter() - start


def precompile(jobs: int | None = None) -> dict[str, float]:
    """Run every group of :data:`GROUPS`, ``jobs`` processes at a time (default: one per
    core, at most one per group), then :data:`LAST`; returns each one's wall seconds."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    jobs = min(len(GROUPS), jobs or os.cpu_count() or 1)
    if jobs == 1:
        return dict(_timed(name) for name in (*GROUPS, *LAST))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return dict(pool.map(_timed, GROUPS)) | dict(pool.map(_timed, LAST))


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
