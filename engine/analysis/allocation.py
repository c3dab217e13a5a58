"""Allocation dynamics: the weights one rule sets, month by month, on every path: the
equity weight of the two-asset study, every asset's of a multi-asset portfolio."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from engine.market.paths import ScenarioPaths
from engine.portfolio.evaluation import market_from_portfolio_paths, run_portfolio
from engine.portfolio.paths import PortfolioPaths
from engine.strategy.config import StrategyConfig
from engine.strategy.evaluation import market_from_paths
from engine.strategy.portfolio import rebalance, target_weights_for
from engine.types import FloatArray

BAND_QUANTILES: tuple[float, float, float] = (0.05, 0.50, 0.95)


def weight_paths(paths: ScenarioPaths | PortfolioPaths, config: StrategyConfig) -> FloatArray:
    """The equity weight ``config`` holds after each month-end rebalance of the evaluation
    (of a portfolio: the risky sleeve's, engine.portfolio.evaluation.run_portfolio).

    Returns
    -------
    Array of shape (n_paths, n_months): w_k after the rebalance at the k-th month-end
    from the end of the warm-up (the target w*_k = f(rv_k), or the drifted weight where
    the no-trade band skips the trade), as in :func:`engine.strategy.portfolio.rebalance`.
    """
    if isinstance(paths, PortfolioPaths):
        if paths.two_asset is None:
            return run_portfolio(market_from_portfolio_paths(paths), [config]).run.weights[0]
        paths = paths.two_asset
    market = market_from_paths(paths)
    targets = target_weights_for(market, [config])
    return rebalance(market, targets, [config]).weights[0]


def asset_weight_paths(paths: PortfolioPaths, config: StrategyConfig) -> FloatArray:
    """Every asset's weight ``config`` holds after each month-end rebalance of the
    evaluation of a multi-asset portfolio (engine.portfolio.evaluation.run_portfolio).

    Returns
    -------
    Array of shape (n_paths, n_months, n_assets), assets in ``paths.names`` order:
    w_a,k = s_k b_a,k for an equity, (1 - s_k) d_a,k for a defensive asset, or the drifted
    weight where the no-trade band skips the trade; each (path, month) sums to 1. The
    equities' sum is :func:`weight_paths`.
    """
    run = run_portfolio(market_from_portfolio_paths(paths), [config], keep_weight_paths=True)
    return run.weight_paths[0]  # type: ignore[index]


def asset_weight_bands(paths: PortfolioPaths, config: StrategyConfig,
                       quantiles: Sequence[float] = BAND_QUANTILES) -> pl.DataFrame:
    """:func:`weight_bands` of every asset's weight path, one block of rows per asset:
    ``asset`` (``paths.names`` order), then the :func:`weight_bands` columns. The ``mean``
    columns of one month sum to 1 across assets."""
    weights = asset_weight_paths(paths, config)
    return pl.concat([weight_bands(weights[:, :, i], quantiles)
                      .select(pl.lit(name).alias("asset"), pl.all())
                      for i, name in enumerate(paths.names)])


def weight_bands(
    weights: FloatArray, quantiles: Sequence[float] = BAND_QUANTILES
) -> pl.DataFrame:
    """Quantiles across paths of a weight path, month by month.

    Parameters
    ----------
    weights : shape (n_paths, n_months), e.g. :func:`weight_paths`.
    quantiles : in [0, 1]; numpy's default (linear) interpolation between order statistics.

    Returns
    -------
    One row per month: ``month`` (1 = the first month of the evaluation), ``mean``, and
    one column per quantile q named ``p<100 q>`` (``p5``, ``p50``, ``p95`` by default).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] == 0:
        raise ValueError(f"weights must have shape (n_paths, n_months), got {weights.shape}")
    if any(not 0.0 <= q <= 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie in [0, 1], got {list(quantiles)}")
    values = np.quantile(weights, list(quantiles), axis=0)
    columns: dict[str, object] = {"month": np.arange(1, weights.shape[1] + 1, dtype=np.int64),
                                  "mean": weights.mean(axis=0)}
    for q, row in zip(quantiles, values, strict=True):
        columns[f"p{round(q * 100):g}"] = row
    return pl.DataFrame(columns)
