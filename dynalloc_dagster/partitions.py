"""Partitions: scenarios (static), sampled configs (dynamic), and their product."""

from __future__ import annotations

import dagster as dg

from engine.market.regimes import REGIMES

SCENARIOS: tuple[str, ...] = tuple(REGIMES)
scenario_partitions = dg.StaticPartitionsDefinition(list(SCENARIOS))
config_partitions = dg.DynamicPartitionsDefinition(name="strategy_configs")
evaluation_partitions = dg.MultiPartitionsDefinition(
    {"scenario": scenario_partitions, "config": config_partitions}
)
"""Keys read ``config|scenario`` (Dagster sorts dimensions by name); use
``keys_by_dimension`` rather than splitting strings."""
