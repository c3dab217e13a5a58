"""engine.analysis.allocation: a rule's weight path and its bands across paths."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.analysis.allocation import (
    asset_weight_bands,
    asset_weight_paths,
    weight_bands,
    weight_paths,
)
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.portfolio.evaluation import market_from_portfolio_paths, run_portfolio
from engine.portfolio.examples import US_INDICES
from engine.portfolio.paths import simulate_portfolio
from engine.strategy import StrategyConfig

RTOL = 1e-12


@pytest.fixture(scope="module")
def paths():
    return simulate_scenario(REGIMES["high_vol"], n_paths=12, seed=4, warmup_months=3,
                             horizon_years=1)


def test_weights_are_the_rule_applied_to_a_plain_realized_vol(paths) -> None:
    config = StrategyConfig(target_vol=0.12, weight_fn="inverse_vol", vol_window_months=2,
                            max_allocation=1.0)
    weights = weight_paths(paths, config)
    assert weights.shape == (paths.n_paths, paths.n_months - paths.warmup_months)
    # slow reference: the sample std (ddof 1) of the 42 daily log returns before each
    # month-end, annualised by sqrt(252); w = min(1, tv / rv)
    log_returns = np.diff(np.log(paths.equity), axis=1)
    for k, day in enumerate(paths.month_ends[paths.warmup_months:-1]):
        rv = log_returns[:, day - 42:day].std(axis=1, ddof=1) * np.sqrt(252)
        np.testing.assert_allclose(weights[:, k], np.minimum(1.0, 0.12 / rv), rtol=1e-9)


def test_a_no_trade_band_holds_the_drifted_weight(paths) -> None:
    banded = StrategyConfig(target_vol=0.12, weight_fn="inverse_vol", vol_window_months=2,
                            no_trade_band=1.0)
    weights = weight_paths(paths, banded)
    # a band of 1 skips every trade: after the inception the weight only drifts
    eq = paths.equity[:, paths.month_ends[paths.warmup_months:]]
    bd = paths.bond[:, paths.month_ends[paths.warmup_months:]]
    w0 = weights[:, 0]
    re, rb = eq[:, 1] / eq[:, 0] - 1, bd[:, 1] / bd[:, 0] - 1
    np.testing.assert_allclose(weights[:, 1], w0 * (1 + re) / (1 + w0 * re + (1 - w0) * rb),
                               rtol=1e-12)


def test_bands_are_quantiles_across_paths() -> None:
    weights = np.array([[0.1, 0.5], [0.2, 0.7], [0.3, 0.9], [0.4, 1.1], [0.5, 1.3]])
    bands = weight_bands(weights)
    assert bands.columns == ["month", "mean", "p5", "p50", "p95"]
    assert bands["month"].to_list() == [1, 2]
    # linear interpolation: position q (n - 1) = 0.2 and 3.8 among 5 sorted values
    np.testing.assert_allclose(bands["p5"].to_numpy(), [0.1 + 0.2 * 0.1, 0.5 + 0.2 * 0.2],
                               rtol=RTOL)
    np.testing.assert_allclose(bands["p50"].to_numpy(), [0.3, 0.9], rtol=RTOL)
    np.testing.assert_allclose(bands["p95"].to_numpy(), [0.4 + 0.8 * 0.1, 1.1 + 0.8 * 0.2],
                               rtol=RTOL)
    np.testing.assert_allclose(bands["mean"].to_numpy(), [0.3, 0.9], rtol=RTOL)


def test_bad_shapes_and_quantiles_are_refused() -> None:
    with pytest.raises(ValueError, match="n_paths, n_months"):
        weight_bands(np.zeros(3))
    with pytest.raises(ValueError, match="quantiles"):
        weight_bands(np.zeros((2, 2)), (0.5, 1.5))


@pytest.fixture(scope="module")
def us_indices():
    return simulate_portfolio(US_INDICES, REGIMES["high_vol"], n_paths=10, seed=4,
                              warmup_months=3, horizon_years=1)


def test_every_asset_weight_is_the_sleeve_times_its_mix(us_indices) -> None:
    """Fixed mix, no band: w = (s 0.75, s 0.25, 1 - s) with s the equity sleeve's weight
    (weight_paths); their monthly mean is run_portfolio's mean weight."""
    config = StrategyConfig(target_vol=0.12, weight_fn="inverse_vol", vol_window_months=2)
    weights = asset_weight_paths(us_indices, config)
    sleeve = weight_paths(us_indices, config)
    assert weights.shape == (*sleeve.shape, 3)
    np.testing.assert_allclose(weights[..., 0], 0.75 * sleeve, rtol=RTOL)
    np.testing.assert_allclose(weights[..., 1], 0.25 * sleeve, rtol=RTOL)
    np.testing.assert_allclose(weights[..., 2], 1.0 - sleeve, rtol=RTOL)
    mean = run_portfolio(market_from_portfolio_paths(us_indices), [config]).asset_weights[0]
    np.testing.assert_allclose(weights.mean(axis=1), mean, rtol=RTOL)


def test_a_no_trade_band_drifts_every_asset_weight(us_indices) -> None:
    """A band of 1 skips every trade: w_k = w_{k-1} (1 + R_k-1) / (1 + R^G_k-1) asset by
    asset, computed here from the month-end levels."""
    config = StrategyConfig(target_vol=0.12, weight_fn="inverse_vol", vol_window_months=2,
                            no_trade_band=1.0)
    weights = asset_weight_paths(us_indices, config)
    levels = us_indices.levels[:, :, us_indices.month_ends[us_indices.warmup_months:]]
    returns = np.moveaxis(levels[:, :, 1:] / levels[:, :, :-1] - 1.0, 0, -1)
    for k in range(1, weights.shape[1]):
        grown = weights[:, k - 1] * (1.0 + returns[:, k - 1])
        np.testing.assert_allclose(weights[:, k], grown / grown.sum(axis=1, keepdims=True),
                                   rtol=1e-12)


def test_asset_bands_have_a_block_per_asset_whose_means_sum_to_one(us_indices) -> None:
    config = StrategyConfig(target_vol=0.12, weight_fn="inverse_vol", vol_window_months=2,
                            risky_mix="risk_parity")
    bands = asset_weight_bands(us_indices, config)
    assert bands["asset"].unique(maintain_order=True).to_list() == ["sp500", "nasdaq", "cash"]
    assert bands.columns == ["asset", "month", "mean", "p5", "p50", "p95"]
    totals = bands.group_by("month").agg(pl.col("mean").sum())["mean"].to_numpy()
    np.testing.assert_allclose(totals, 1.0, rtol=1e-12)
