"""The multi-asset rule: the two-asset case agrees with the two-asset engine, the sleeve
and mix semantics, and the default spec routed to the two-asset code."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from engine.arrays import kernel_input
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.portfolio import evaluation
from engine.portfolio.evaluation import (
    evaluate_portfolio,
    market_from_portfolio_paths,
    run_portfolio,
)
from engine.portfolio.kernels import run_rule
from engine.portfolio.paths import PortfolioPaths, simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec
from engine.strategy import StrategyConfig, evaluate
from engine.strategy.kernels import INVERSE_VOL, Rules
from engine.strategy.metrics import METRICS, max_drawdown

BASE = REGIMES["base"]
CONFIGS = (
    StrategyConfig(0.10, "inverse_vol", 12),
    StrategyConfig(0.08, "inverse_vol_squared", 6, tc_bps=20.0, no_trade_band=0.05),
    StrategyConfig(0.12, "linear", 9, risk_aversion=2.5, max_allocation=1.5),
    StrategyConfig(0.15, "sigmoid", 24, risk_aversion=0.7, min_allocation=0.2, tc_bps=0.0),
)
SIX = PortfolioSpec(
    assets=(
        Asset("us", "equity"),
        Asset("eu", "equity", vol_ratio=1.2),
        Asset("em", "equity", vol_ratio=1.5),
        Asset("ust2", "government_bond", maturity_years=2.0),
        Asset("ust5", "government_bond", maturity_years=5.0),
        Asset("ust10", "government_bond", maturity_years=10.0),
    ),
    equity_correlation=((1.0, 0.7, 0.5), (0.7, 1.0, 0.6), (0.5, 0.6, 1.0)),
    risky_weights=(0.5, 0.3, 0.2),
)


@pytest.fixture(scope="module")
def two_asset_paths():
    return simulate_scenario(BASE, 24, 3, horizon_years=2)


def test_default_spec_is_the_two_asset_table(two_asset_paths):
    paths = simulate_portfolio(TWO_ASSET, BASE, 24, 3, horizon_years=2)
    assert evaluate_portfolio(paths, CONFIGS).equals(evaluate(two_asset_paths, CONFIGS))


def test_general_kernel_on_two_assets_matches_the_two_asset_engine(two_asset_paths):
    # The same equity and bond paths through the N-asset code (not routed): every metric
    # agrees with the two-asset engine to rounding (the formulas are the same, summed in
    # a different order).
    p = two_asset_paths
    general = PortfolioPaths("base", TWO_ASSET, np.stack([p.equity, p.bond]), p.variance[None],
                             p.short_rate, p.cash, p.warmup_months, p.measure)
    got = evaluate_portfolio(general, CONFIGS)
    expected = evaluate(p, CONFIGS)
    assert got.columns[: expected.width] == expected.columns
    for column in expected.columns:
        if expected[column].dtype == pl.Float64:
            np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(),
                                       rtol=1e-9, atol=1e-12, err_msg=column)
        else:
            assert got[column].to_list() == expected[column].to_list(), column
    np.testing.assert_allclose(got["weight_equity_mean"], expected["avg_equity_weight_mean"],
                               rtol=1e-12)
    np.testing.assert_allclose(got["weight_bond_mean"] + got["weight_equity_mean"], 1.0,
                               rtol=1e-12)


@pytest.fixture(scope="module")
def six_paths():
    return simulate_portfolio(SIX, BASE, 40, 8, horizon_years=2)


def test_six_asset_table_lists_every_asset_and_mix(six_paths):
    configs = [dataclasses.replace(CONFIGS[0], risky_mix=r, defensive_mix=d)
               for r in ("fixed", "inverse_vol", "risk_parity")
               for d in ("fixed", "risk_parity")]
    table = evaluate_portfolio(six_paths, configs)
    assert table.height == 6
    assert len(set(table["config_id"])) == 6
    assert table["risky_mix"].to_list() == [c.risky_mix for c in configs]
    weights = table.select([f"weight_{n}_mean" for n in six_paths.names]).to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(weights[:, :3].sum(axis=1), table["avg_equity_weight_mean"],
                               rtol=1e-12)
    # the fixed risky mix holds the spec's 50/30/20 in the sleeve (band 0: every month)
    fixed = weights[0, :3] / weights[0, :3].sum()
    np.testing.assert_allclose(fixed, (0.5, 0.3, 0.2), rtol=1e-12)
    # inverse vol leans to the lowest-vol equity (us), risk parity the same way
    assert weights[2, 0] > weights[2, 1] > weights[2, 2]
    assert weights[4, 0] > weights[4, 2]


def test_chunking_does_not_change_rows(six_paths):
    configs = [dataclasses.replace(c, risky_mix="risk_parity") for c in CONFIGS]
    whole = evaluate_portfolio(six_paths, configs)
    chunked = evaluate_portfolio(six_paths, configs, chunk_bytes=1)
    assert whole.equals(chunked)


def test_passes_over_a_few_paths_change_no_bit(six_paths, monkeypatch):
    # Mixes built and run through the rule 3 paths at a time (the last pass 1 path) give
    # the bits of one pass over all 40, every per-month array and weight path included.
    configs = [dataclasses.replace(c, risky_mix=mix, defensive_mix=mix)
               for c in CONFIGS for mix in ("fixed", "inverse_vol", "risk_parity")]
    market = market_from_portfolio_paths(six_paths)
    whole = run_portfolio(market, configs, keep_weight_paths=True)
    monkeypatch.setattr(evaluation, "PATHS_PER_PASS", 3)
    passes = run_portfolio(market, configs, keep_weight_paths=True)
    pairs = [(whole.asset_weights, passes.asset_weights),
             (whole.weight_paths, passes.weight_paths)]
    pairs += [(getattr(whole.run, name), getattr(passes.run, name))
              for name in ("monthly_returns", "weights", "costs")]
    pairs += [(whole.run.metrics[name], passes.run.metrics[name]) for name in METRICS]
    for expected, actual in pairs:
        assert np.array_equal(expected.view(np.uint64), actual.view(np.uint64))


def test_cash_defensive_sleeve(six_paths):
    spec = PortfolioSpec((*SIX.assets[:3], Asset("cash", "cash")),
                         equity_correlation=SIX.equity_correlation)
    paths = simulate_portfolio(spec, BASE, 16, 2, horizon_years=1)
    table = evaluate_portfolio(paths, [CONFIGS[0]])
    assert table["weight_cash_mean"][0] == pytest.approx(1 - table["avg_equity_weight_mean"][0])


def _rule_drawdowns(scale, risky_mix, defensive_mix, levels, days):
    """run_rule's max drawdowns with no costs and no band (weights = targets): each
    config's sleeve weight is the inverse_vol rule's tv / rv with tv = 1, rv = 1 / scale,
    unclipped."""
    n_configs, n_paths, n_months = scale.shape
    shaped = (n_configs, n_paths, n_months)
    monthly, costs, risky = (np.empty(shaped) for _ in range(3))
    fused = np.empty((len(METRICS), n_configs, n_paths))
    zeros, ones = np.zeros(n_configs), np.ones(n_configs)
    rules = Rules(np.full(n_configs, INVERSE_VOL), np.arange(n_configs), ones, zeros,
                  np.full(n_configs, -np.inf), np.full(n_configs, np.inf), zeros, zeros)
    run_rule(1.0 / scale, rules, np.ascontiguousarray(np.repeat(risky_mix, n_configs, 0)),
             np.zeros(n_configs, dtype=np.int64), defensive_mix, kernel_input(levels), 0, days,
             kernel_input(np.zeros((n_paths, n_months))), 1,
             monthly, costs, risky, np.empty((n_configs, n_paths, levels.shape[0])), fused,
             np.empty((0, 0, 0, 0)))
    return fused[METRICS.index("max_drawdown")], risky, monthly


def test_rule_drawdown_is_the_daily_scan_with_leverage():
    # Levered equity sleeves (s up to 1.6, so the bonds are held short in some months)
    # on volatile random levels: the kernel skips the months whose daily NAV cannot set a
    # new peak or drawdown, and its drawdown must still be the day-by-day scan's.
    rng = np.random.default_rng(5)
    n_paths, n_months, n_eq, n_def = 12, 18, 2, 2
    days = np.arange(n_months + 1, dtype=np.int64) * 21
    steps = rng.normal(0.0004, 0.02, (n_eq + n_def, n_paths, days[-1]))
    levels = np.concatenate([np.ones((n_eq + n_def, n_paths, 1)),
                             np.exp(np.cumsum(steps, axis=-1))], axis=-1)
    scale = rng.uniform(0.2, 1.6, (3, n_paths, n_months))
    risky_mix = rng.dirichlet(np.ones(n_eq), (1, n_paths, n_months))
    defensive_mix = rng.dirichlet(np.ones(n_def), (1, n_paths, n_months))
    got, sleeve, monthly = _rule_drawdowns(scale, risky_mix, defensive_mix, levels, days)
    np.testing.assert_allclose(sleeve, scale, rtol=1e-15)
    weights = np.concatenate([scale[..., None] * risky_mix,
                              (1.0 - scale[..., None]) * defensive_mix], axis=-1)
    assert (weights < 0).any() and (scale > 1).mean() > 0.3
    start = np.cumprod(np.concatenate([np.ones((*scale.shape[:2], 1)), 1.0 + monthly],
                                      axis=-1), axis=-1)[..., :-1]
    navs = []
    for k in range(n_months):
        growth = levels[:, :, days[k] + 1: days[k + 1] + 1] / levels[:, :, days[k], None]
        value = np.einsum("cpa,apt->cpt", weights[:, :, k], growth)
        navs.append(start[:, :, k, None] * value)
    expected = max_drawdown(np.concatenate(navs, axis=-1), initial=1.0)
    assert (expected > 0.2).any()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
