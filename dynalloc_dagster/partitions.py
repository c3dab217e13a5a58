"""Partitions: scenarios (static), the agent's config batches (dynamic), and their product.

Evaluations are partitioned by scenario x batch, a batch being the configs one round of
the optimisation agent proposed: a unit a user can inspect and re-run, few enough keys
that Dagster's per-key bookkeeping stays small (5 scenarios x 10 rounds, not 5 x 100
configs; 10,000 configs in one batch are still 5 keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import dagster as dg

from engine.market.regimes import REGIMES

CALIBRATED = "calibrated"
"""The sixth scenario: the market-implied regime (engine.market.calibration)."""
SCENARIOS: tuple[str, ...] = (*REGIMES, CALIBRATED)
scenario_partitions = dg.StaticPartitionsDefinition(list(SCENARIOS))
batch_partitions = dg.DynamicPartitionsDefinition(name="config_batches")
evaluation_partitions = dg.MultiPartitionsDefinition(
    {"scenario": scenario_partitions, "batch": batch_partitions}
)
"""Keys read ``batch|scenario`` (Dagster sorts dimensions by name); use
``keys_by_dimension`` rather than splitting strings."""


def batch_key(round_index: int, config_ids: Sequence[str]) -> str:
    """``r<round>-<8 hex>``: the round and a SHA-256 of the batch's config ids, so a key
    names exactly one set of configs (a rerun with the same seed gives the same key)."""
    digest = hashlib.sha256("|".join(config_ids).encode("utf-8")).hexdigest()[:8]
    return f"r{round_index:03d}-{digest}"
