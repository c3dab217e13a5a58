"""Asset checks across assets: objectives compliance of the recommended rule."""

from __future__ import annotations

import dagster as dg
import polars as pl

from engine.objectives import OBJECTIVE_CHECKS


@dg.asset_check(
    asset="recommended_allocation",
    additional_ins={"strategy_evaluations": dg.AssetIn("strategy_evaluations")},
    description="The recommended config meets the investment objectives in every scenario"
    " (a warning, not an error: the best robust rule may still miss an ambitious target).",
)
def recommended_objectives_compliance(
    recommended_allocation: pl.DataFrame, strategy_evaluations: pl.DataFrame
) -> dg.AssetCheckResult:
    config_id = recommended_allocation["config_id"][0]
    rows = strategy_evaluations.filter(pl.col("config_id") == config_id)
    failures = {
        column: ", ".join(rows.filter(~pl.col(column))["scenario"].sort().to_list())
        for column in OBJECTIVE_CHECKS
    }
    failed = {k: v for k, v in failures.items() if v}
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"config_id": config_id, "scenarios": rows.height,
                  **{f"failed_{k}": v for k, v in failed.items()}},
    )
