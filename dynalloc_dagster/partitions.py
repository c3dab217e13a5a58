"""Partitions: scenarios (static), the agent's config batches (dynamic), and their product.

Evaluations are partitioned by scenario x batch, a batch being the configs one round of
the optimisation agent proposed: a unit a user can inspect and re-run, few enough keys
that Dagster's per-key bookkeeping stays small (5 scenarios x 10 rounds, not 5 x 100
configs; 10,000 configs in one batch are still 5 keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import dagster as dg

from engine.market.regimes import REGIMES

CALIBRATED = "calibrated"
"""The sixth scenario: the market-implied regime (engine.market.calibration)."""
SCENARIOS: tuple[str, ...] = (*REGIMES, CALIBRATED)
"""Every scenario, in the one order charts and tables show them: the five named regimes as
engine.market.regimes lists them, then the market-implied one."""
SCENARIO_LABELS: Mapping[str, str] = MappingProxyType({
    "base": "Base case", "bull": "Bull market", "bear": "Bear market",
    "high_vol": "High volatility", "low_vol": "Low volatility",
    CALIBRATED: "Market-implied",
})
"""The scenarios' names for people: every chart and table label reads them from here."""
scenario_partitions = dg.StaticPartitionsDefinition(list(SCENARIOS))
batch_partitions = dg.DynamicPartitionsDefinition(name="config_batches")
evaluation_partitions = dg.MultiPartitionsDefinition(
    {"scenario": scenario_partitions, "batch": batch_partitions}
)
"""Keys read ``batch|scenario`` (Dagster sorts dimensions by name); use
``keys_by_dimension`` rather than splitting strings."""


def scenario_label(name: str) -> str:
    """A scenario's human name; a name without one (a test's ad hoc regime) reads with
    spaces for underscores."""
    return SCENARIO_LABELS.get(name, name.replace("_", " "))


def in_scenario_order(names: Iterable[str]) -> list[str]:
    """The distinct ``names`` in the order of :data:`SCENARIOS`, names outside it last, by
    name."""
    rank = {name: i for i, name in enumerate(SCENARIOS)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def batch_key(round_index: int, config_ids: Sequence[str]) -> str:
    """``r<round>-<8 hex>``: the round and a SHA-256 of the batch's config ids (a rerun
    with the same seed gives the same key). This is round 0's key; the later rounds of
    the loop take their keys from it (:func:`next_batch_key`)."""
    digest = hashlib.sha256("|".join(config_ids).encode("utf-8")).hexdigest()[:8]
    return f"r{round_index:03d}-{digest}"


def next_batch_key(batch: str) -> str:
    """The key of the round after ``batch``'s in the same loop: the next round and round
    0's digest, so every key of a loop ends with the digest of the Latin hypercube batch
    that started it (``r000-1a2b3c4d``, ``r001-1a2b3c4d``, ...). The agent's later rounds
    are a function of that start (and the stored history), so a key still names one set
    of configs, and it is known before the round's configs exist: the round's run is
    created with its evaluation partitions and runs configs, evaluations and history in
    one go."""
    prefix, _, digest = batch.partition("-")
    if not (prefix[:1] == "r" and prefix[1:].isdigit() and len(digest) == 8):
        raise ValueError(f"{batch!r} is not a config batch key (r<round>-<8 hex>)")
    return f"r{int(prefix[1:]) + 1:03d}-{digest}"
