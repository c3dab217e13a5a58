"""Store the two-asset engine's outputs for a small fixed case, to test bit-identity.

Run from the repository root with the code whose outputs are the reference:

    PYTHONPATH=. python tests/engine/data/make_two_asset_golden.py

It writes ``two_asset_golden.npz`` next to this file: the arrays of
``simulate_scenario`` for two regimes (physical and risk-neutral, QE and Euler) and
every column of ``evaluate`` on them. tests/engine/test_two_asset_golden.py recomputes
the same case with today's code and compares every value bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES
from engine.strategy import StrategyConfig, evaluate

GOLDEN = Path(__file__).with_name("two_asset_golden.npz")
PATH_FIELDS = ("equity", "variance", "short_rate", "bond", "cash")

CONFIGS = (
    StrategyConfig(0.10, "inverse_vol", 12),
    StrategyConfig(0.08, "inverse_vol_squared", 6, tc_bps=20.0, no_trade_band=0.05),
    StrategyConfig(0.12, "linear", 9, risk_aversion=2.5, max_allocation=1.5),
    StrategyConfig(0.15, "sigmoid", 24, risk_aversion=0.7, min_allocation=0.2, tc_bps=0.0),
)
"""One config per weight function, with bands, costs and allocation ranges set."""


def golden_cases() -> dict[str, ScenarioPaths]:
    """The fixed cases: name -> paths (small, so the stored file stays ~1 MB).

    ``low_vol_physical_qe`` has variances low enough (psi > 1.5) for the QE step's
    exponential branch on thousands of path-days; the others stay on the quadratic one.
    """
    return {
        "base_physical_qe": simulate_scenario(REGIMES["base"], 16, 7, horizon_years=2),
        "low_vol_physical_qe": simulate_scenario(REGIMES["low_vol"], 16, 7, horizon_years=2),
        "high_vol_risk_neutral_euler_antithetic": simulate_scenario(
            REGIMES["high_vol"], 16, 11, warmup_months=24, horizon_years=2,
            measure="risk_neutral", scheme="euler", antithetic=True, bond_maturity=10.0,
        ),
    }


def golden_arrays() -> dict[str, np.ndarray]:
    """Every stored array, keyed ``case/paths/field`` and ``case/evaluate/column``."""
    out: dict[str, np.ndarray] = {}
    for case, paths in golden_cases().items():
        for field in PATH_FIELDS:
            out[f"{case}/paths/{field}"] = getattr(paths, field)
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
