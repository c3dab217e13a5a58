"""Store the strategy simulation's outputs for small fixed cases, to test bit-identity.

Run from the repository root with the code whose outputs are the reference:

    PYTHONPATH=. python tests/engine/data/make_metrics_golden.py

It writes ``metrics_golden.npz`` next to this file: for each case, the per-path arrays
of ``run_strategies`` (monthly returns, weights, costs and every metric) and every
column of ``evaluate``. tests/engine/test_metrics_golden.py recomputes the cases with
today's code and compares every value bit for bit, so a faster kernel or a fused metric
pass has to reproduce the reference's floating-point operations exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES
from engine.strategy import StrategyConfig, evaluate, market_from_paths
from engine.strategy.portfolio import run_strategies

GOLDEN = Path(__file__).with_name("metrics_golden.npz")

CONFIGS = (
    StrategyConfig(0.10, "inverse_vol", 12),
    StrategyConfig(0.08, "inverse_vol_squared", 6, tc_bps=20.0, no_trade_band=0.05),
    StrategyConfig(0.12, "linear", 9, risk_aversion=2.5, max_allocation=1.5),
    StrategyConfig(0.15, "sigmoid", 24, risk_aversion=0.7, min_allocation=0.2, tc_bps=0.0),
    StrategyConfig(0.05, "inverse_vol", 1, min_allocation=1.0, max_allocation=1.0),
    StrategyConfig(0.30, "linear", 3, risk_aversion=40.0, no_trade_band=0.3, tc_bps=500.0),
)
"""One config per weight function, with bands, costs and allocation ranges set; a
constant full-equity rule; and a rule that often sits at zero equity."""


def golden_cases() -> dict[str, ScenarioPaths]:
    """The fixed cases: name -> paths. ``short`` has one-year paths, so some paths have
    no month below the risk-free (NaN Sortino) and VaR takes the single worst month;
    ``wide`` has more than 128 paths, so sums across paths take numpy's pairwise split."""
    return {
        "base": simulate_scenario(REGIMES["base"], 24, 7, horizon_years=2),
        "bear_antithetic": simulate_scenario(
            REGIMES["bear"], 16, 11, warmup_months=24, horizon_years=3, antithetic=True,
        ),
        "short": simulate_scenario(REGIMES["high_vol"], 40, 3, horizon_years=1),
        "wide": simulate_scenario(REGIMES["low_vol"], 300, 5, horizon_years=1),
    }


def golden_arrays() -> dict[str, np.ndarray]:
    """Every stored array, keyed ``case/run/name`` and ``case/evaluate/column``."""
    out: dict[str, np.ndarray] = {}
    for case, paths in golden_cases().items():
        run = run_strategies(market_from_paths(paths), CONFIGS)
        for name in ("monthly_returns", "weights", "costs"):
            out[f"{case}/run/{name}"] = getattr(run, name)
        for name, values in run.metrics.items():
            out[f"{case}/run/{name}"] = values
        table = evaluate(paths, CONFIGS)
        out[f"{case}/evaluate/__columns__"] = np.array(table.columns)
        for column in table.columns:
            series = table[column]
            if series.dtype == pl.String:
                out[f"{case}/evaluate/{column}"] = np.array(series.to_list())
            else:
                out[f"{case}/evaluate/{column}"] = series.to_numpy()
    return out


if __name__ == "__main__":
    np.savez_compressed(GOLDEN, **golden_arrays())
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e6:.2f} MB)")
