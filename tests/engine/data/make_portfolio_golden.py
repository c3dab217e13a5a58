"""Store the multi-asset engine's outputs for small fixed cases, to test that a faster
engine computes the same numbers.

Run from the repository root with the code whose outputs are the reference:

    PYTHONPATH=. python tests/engine/data/make_portfolio_golden.py

It writes ``portfolio_golden.npz`` next to this file: every array of
``simulate_portfolio`` for three small cases (physical QE with the QE step's exponential
branch, monthly rolls, coupons and cash; risk-neutral Euler antithetic) and every column of
``evaluate_portfolio`` on them and on a larger case, for configs cycling through the base
mixes. tests/engine/test_portfolio_golden.py recomputes them with today's code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.paths import PortfolioPaths, simulate_portfolio
from engine.portfolio.spec import Asset, PortfolioSpec
from engine.strategy import StrategyConfig
from engine.strategy.config import BASE_MIXES

GOLDEN = Path(__file__).with_name("portfolio_golden.npz")
PATH_FIELDS = ("levels", "variance", "short_rate", "cash")

SEVEN = PortfolioSpec(
    assets=(
        Asset("us", "equity"),
        Asset("eu", "equity", vol_ratio=1.25, drift_spread=0.01),
        Asset("em", "equity", vol_ratio=1.6, drift_spread=-0.02),
        Asset("ust2", "government_bond", maturity_years=2.0),
        Asset("ust5", "government_bond", maturity_years=5.0, roll="monthly"),
        Asset("ust10", "government_bond", maturity_years=10.0, coupon_rate=0.03),
        Asset("cash", "cash"),
    ),
    equity_correlation=((1.0, 0.7, 0.4), (0.7, 1.0, 0.55), (0.4, 0.55, 1.0)),
)
"""Every kind of defensive asset: daily and monthly rolls, a coupon bond, cash."""


def golden_configs(n: int = 12) -> list[StrategyConfig]:
    """``sample_configs(n, 0)`` with the risky and defensive base mixes cycling through
    every pair (as bench/engine_sweep.py does), windows of 6 to 24 months."""
    return [dataclasses.replace(c, risky_mix=BASE_MIXES[i % 3],
                                defensive_mix=BASE_MIXES[(i // 3) % 3])
            for i, c in enumerate(sample_configs(n, 0))]


def golden_cases() -> dict[str, PortfolioPaths]:
    """The stored-path cases (small, so the file stays ~1 MB)."""
    return {
        "global_six_base_physical_qe": simulate_portfolio(GLOBAL_SIX, REGIMES["base"], 6, 7,
                                                          horizon_years=1),
        "seven_low_vol_physical_qe": simulate_portfolio(SEVEN, REGIMES["low_vol"], 6, 7,
                                                        horizon_years=1),
        "seven_high_vol_risk_neutral_euler_antithetic": simulate_portfolio(
            SEVEN, REGIMES["high_vol"], 6, 11, horizon_years=1, measure="risk_neutral",
            scheme="euler", antithetic=True,
        ),
    }


def evaluated_cases() -> dict[str, PortfolioPaths]:
    """Cases whose tables (not paths) are stored: the stored-path ones and a larger one,
    where risk parity is solved on thousands of (path, month) covariances."""
    return golden_cases() | {
        "global_six_bear_150_paths": simulate_portfolio(GLOBAL_SIX, REGIMES["bear"], 150, 3,
                                                        horizon_years=2),
    }


def table_arrays(case: str, table: pl.DataFrame) -> dict[str, np.ndarray]:
    """Every column of an evaluation table, keyed ``case/evaluate/column``."""
    out = {f"{case}/evaluate/__columns__": np.array(table.columns)}
    for column in table.columns:
        series = table[column]
        out[f"{case}/evaluate/{column}"] = (np.array(series.to_list())
                                            if series.dtype == pl.String else series.to_numpy())
    return out


def golden_arrays() -> dict[str, np.ndarray]:
    """Every stored array, keyed ``case/paths/field`` and ``case/evaluate/column``."""
    out: dict[str, np.ndarray] = {}
    configs = golden_configs()
    stored = golden_cases()
    for case, paths in evaluated_cases().items():
        if case in stored:
            for field in PATH_FIELDS:
                out[f"{case}/paths/{field}"] = getattr(paths, field)
        out |= table_arrays(case, evaluate_portfolio(paths, configs))
    return out


if __name__ == "__main__":
    np.savez_compressed(GOLDEN, **golden_arrays())
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size / 1e6:.2f} MB)")
