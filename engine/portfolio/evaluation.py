"""The vol-targeting rule on a portfolio of several assets, for many configs and paths.

The risky sleeve (the equities) holds its base mix b_k scaled by s_k = f(rv_k), the
same four weight functions of :func:`engine.strategy.config.target_weights` applied to the
sleeve's trailing vol rv_k = sqrt(b_k' Sigma_k b_k) (Sigma_k the trailing covariance of the
equities' daily log returns); the defensive sleeve (bond buckets, cash) holds the rest,
1 - s_k, by its own base mix d_k. With one equity and one bond this is the two-asset rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.arrays import kernel_input
from engine.market.paths import ScenarioPaths
from engine.objectives import InvestmentObjectives
from engine.portfolio.kernels import run_rule
from engine.portfolio.paths import PortfolioPaths
from engine.portfolio.sleeve_mixes import SleeveMixer, SleeveMixes
from engine.portfolio.spec import PortfolioSpec
from engine.strategy.config import MIX_FIELDS, StrategyConfig
from engine.strategy.evaluation import CHUNK_BYTES, evaluate, metrics_table
from engine.strategy.metrics import METRICS, path_mean, tail_count
from engine.strategy.portfolio import Rules, StrategyRun, compiled_rules
from engine.types import FloatArray, IntArray

PATHS_PER_PASS = 64
"""Paths whose base mixes are built, then run through the rule, at a time: the mixes of
64 paths (some 11 MB at a sweep's 100 configs) are written into the same arrays, still in
cache when the rule reads them, instead of arrays for every path (176 MB at 1000 paths,
whose first touch alone took some 0.13 s of CPU a regime)."""


@dataclass(frozen=True, slots=True)
class PortfolioMarket:
    """Daily levels of every asset, (n_assets, n_paths, n_days + 1), in ``spec.ordered``
    order, the cash account (n_paths, n_days + 1) and the rebalance days (n_months + 1,)."""

    spec: PortfolioSpec
    levels: FloatArray
    cash: FloatArray
    rebalance_days: IntArray


@dataclass(frozen=True, slots=True)
class PortfolioRun:
    """A :class:`engine.strategy.portfolio.StrategyRun` (``weights`` the equity sleeve's)
    plus ``asset_weights`` (n_configs, n_paths, n_assets), each asset's mean weight, and
    with ``keep_weight_paths`` ``weight_paths`` (n_configs, n_paths, n_months, n_assets),
    every asset's weight after each rebalance (else None)."""

    run: StrategyRun
    asset_weights: FloatArray
    weight_paths: FloatArray | None = None


def market_from_portfolio_paths(paths: PortfolioPaths) -> PortfolioMarket:
    """Rebalanced at every month-end from the end of the warm-up."""
    return PortfolioMarket(paths.spec, paths.levels, paths.cash,
                           paths.month_ends[paths.warmup_months:])


def run_portfolio(market: PortfolioMarket, configs: Sequence[StrategyConfig], *,
                  keep_weight_paths: bool = False, per_month: bool = True) -> PortfolioRun:
    """Simulate every config on every path and compute the per-path metrics.

    Notes
    -----
    At rebalance k the target weights are w*_k = (s_k b_k, (1 - s_k) d_k). The weights
    drifted from the last rebalance are w^d_k = w_{k-1} (1 + R_{k-1}) / (1 + R^G_{k-1})
    (elementwise); the new weights are w*_k, or w^d_k when the one-way turnover
    sum_a |w*_a - w^d_a| / 2 is below the no-trade band; the inception trades nothing.
    The cost is c_k = tc_bps / 1e4 x sum_a |w_a - w^d_a|, the month's gross return
    R^G_k = sum_a w_a R_a,k and the net return (1 - c_k)(1 + R^G_k) - 1 (for two assets
    the formulas of :func:`engine.strategy.portfolio.rebalance`). The daily NAV within month
    k is A_k sum_a w_a g_a,t; the month's realised vol is sqrt(w' S_k w) with S_k the
    annualised covariance of its daily simple returns. Turnover is the one-way turnover
    per year, avg_equity_weight the equity sleeve's mean weight. For ``PATHS_PER_PASS``
    paths at a time, :class:`engine.portfolio.sleeve_mixes.SleeveMixer` builds the base
    mixes, then one compiled pass per path (:func:`engine.portfolio.kernels.run_rule`)
    rebalances and computes every metric (the annualised return and VaR/CVaR as
    engine.strategy.kernels computes the two-asset ones). With ``per_month`` False the
    run keeps the metrics only (no configs x paths x months arrays).
    """
    rule = RulePass.of(market, configs, keep_weight_paths=keep_weight_paths,
                       per_month=per_month)
    mixes = rule.mixer.empty(min(rule.n_paths, PATHS_PER_PASS))
    for first in range(0, rule.n_paths, PATHS_PER_PASS):
        rule.mixer.fill(rule.levels, first, mixes)
        rule.run(mixes, first)
    return rule.result()


@dataclass(frozen=True, slots=True)
class RulePass:
    """What :func:`run_portfolio`'s compiled rule pass reads and writes for every path: the
    base mixes' builder (``mixer``), the configs as the kernel reads them, the market's
    levels and cash returns as read-only inputs, and the outputs it fills path by path."""

    configs: tuple[StrategyConfig, ...]
    mixer: SleeveMixer
    rules: Rules
    defensive_index: IntArray
    levels: FloatArray
    days: IntArray
    cash_returns: FloatArray
    tail_months: int
    monthly: FloatArray
    costs: FloatArray
    risky: FloatArray
    weight_sum: FloatArray
    fused: FloatArray
    weight_paths: FloatArray
    keep_weight_paths: bool
    per_month: bool

    @classmethod
    def of(cls, market: PortfolioMarket, configs: Sequence[StrategyConfig], *,
           keep_weight_paths: bool = False, per_month: bool = True) -> RulePass:
        """The pass of ``configs`` on ``market`` (arguments as :func:`run_portfolio`), its
        outputs not yet written."""
        configs = tuple(configs)
        spec = market.spec
        days = np.asarray(market.rebalance_days, dtype=np.int64)
        starts = days[:-1]
        longest = max(c.window_days for c in configs)
        if starts.min() < longest:
            raise ValueError(
                f"the first rebalance (day {starts.min()}) comes before a full trailing"
                f" window of {longest} days; simulate a longer warm-up or shorten"
                " vol_window_months"
            )
        mixer = SleeveMixer.of(spec, starts,
                               sorted({(c.window_days, c.risky_mix) for c in configs}),
                               sorted({(c.window_days, c.defensive_mix) for c in configs}))
        n_paths, n_months = market.levels.shape[1], len(starts)
        shape = (len(configs), n_paths, n_months)
        cash = market.cash[:, days]
        return cls(
            configs, mixer,
            compiled_rules(configs, [mixer.risky_keys.index((c.window_days, c.risky_mix))
                                     for c in configs]),
            np.array([mixer.defensive_keys.index((c.window_days, c.defensive_mix))
                      for c in configs]),
            kernel_input(market.levels), days, kernel_input(cash[:, 1:] / cash[:, :-1] - 1.0),
            tail_count(n_months),
            *(np.empty(shape if per_month else (0, 0, 0)) for _ in range(3)),
            np.empty((len(configs), n_paths, len(spec.ordered))),
            np.empty((len(METRICS), len(configs), n_paths)),
            np.empty((len(configs), n_paths, n_months, len(spec.assets))
                     if keep_weight_paths else (0, 0, 0, 0)),
            keep_weight_paths, per_month)

    @property
    def n_paths(self) -> int:
        return self.levels.shape[1]

    def run(self, mixes: SleeveMixes, first: int) -> None:
        """The rule on paths first, first + 1, ... whose base mixes ``mixes`` holds (as
        :meth:`SleeveMixer.fill` wrote them): their outputs written."""
        run_rule(mixes.risky_vol, self.rules, mixes.risky, self.defensive_index,
                 mixes.defensive, self.levels, first, self.days, self.cash_returns,
                 self.tail_months, self.monthly, self.costs, self.risky, self.weight_sum,
                 self.fused, self.weight_paths)

    def result(self) -> PortfolioRun:
        """The run, once :meth:`run` has written every path."""
        metrics = dict(zip(METRICS, self.fused, strict=True))
        run = (StrategyRun(self.configs, self.monthly, self.risky, self.costs, metrics)
               if self.per_month
               else StrategyRun(self.configs, None, None, None, metrics))
        n_months = self.days.size - 1
        return PortfolioRun(run, self.weight_sum / n_months,
                            self.weight_paths if self.keep_weight_paths else None)


def evaluate_portfolio(
    paths: PortfolioPaths,
    configs: Sequence[StrategyConfig],
    objectives: InvestmentObjectives | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> pl.DataFrame:
    """Metrics of every config on one scenario of a portfolio, one row per config.

    The two-asset spec is evaluated by :func:`engine.strategy.evaluation.evaluate` itself
    (the table of the two-asset study, bit for bit). Otherwise the table has the same
    columns, then ``risky_mix`` and ``defensive_mix``, then ``weight_<asset>_mean``, each
    asset's mean weight across months and paths. Configs are run in chunks so the working
    memory stays near ``chunk_bytes``.
    """
    if not configs:
        raise ValueError("evaluate_portfolio needs at least one StrategyConfig")
    if paths.two_asset is not None:
        return evaluate(paths.two_asset, configs, objectives, chunk_bytes=chunk_bytes)
    market = market_from_portfolio_paths(paths)
    n_months = len(market.rebalance_days) - 1
    step = max(1, chunk_bytes // (8 * 8 * paths.n_paths * max(n_months, 1)))
    tables = []
    for start in range(0, len(configs), step):
        chunk = configs[start:start + step]
        result = run_portfolio(market, chunk, per_month=False)
        table = metrics_table(result.run, scenario=paths.regime, objectives=objectives)
        extra = {name: [getattr(c, name) for c in chunk] for name in MIX_FIELDS}
        for i, name in enumerate(paths.names):
            extra[f"weight_{name}_mean"] = path_mean(result.asset_weights[:, :, i])
        tables.append(table.with_columns(pl.DataFrame(extra)))
    return tables[0] if len(tables) == 1 else pl.concat(tables)


def evaluate_paths(
    paths: ScenarioPaths | PortfolioPaths,
    configs: Sequence[StrategyConfig],
    objectives: InvestmentObjectives | None = None,
) -> pl.DataFrame:
    """:func:`engine.strategy.evaluation.evaluate` of a two-asset scenario or
    :func:`evaluate_portfolio` of a portfolio's: one call for either kind of paths."""
    if isinstance(paths, PortfolioPaths):
        return evaluate_portfolio(paths, configs, objectives)
    return evaluate(paths, configs, objectives)

