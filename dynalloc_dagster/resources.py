"""Resources: the market data source, the investment objectives, the optimisation agent's
settings and the folder report artifacts (charts, the report) are written to.

Every resource here takes run-config overrides (``{"resources": {"objectives": {"config":
{...}}}}``), so one pipeline run carries one set of objectives and agent settings into
every stage it chains.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

import dagster as dg
from pydantic import Field, model_validator

from dynalloc_dagster.storage import ObjectStorage, safe_component
from engine.market.market_data import MarketData, synthetic_market_data
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings

_OBJECTIVES = InvestmentObjectives()
_AGENT = AgentSettings()


class MarketDataSource(dg.ConfigurableResource):
    """Where market data comes from. ``synthetic`` (the default, offline) generates a
    seeded market (engine.market.market_data); real sources arrive behind the same ``fetch``."""

    kind: Literal["synthetic"] = "synthetic"
    seed: int = 0
    years: int = Field(default=10, ge=2, le=50, description="years of daily history")

    def fetch(self, as_of: dt.date) -> MarketData:
        """The market as of ``as_of``: history, vol surface, yield curve, dividend yield."""
        return synthetic_market_data(as_of, years=self.years, seed=self.seed)


class ObjectivesResource(dg.ConfigurableResource):
    """The investment objectives every stage judges configs by: the mandate's vol target,
    Sharpe, drawdown, VaR, CVaR and cost limits, the robustness threshold, the one
    transaction-cost assumption configs are ranked at and the penalty weight of the
    agent's objective. Defaults and allowed ranges are
    ``engine.objectives.InvestmentObjectives``' (docs/optimisation.md)."""

    target_vol: float = _OBJECTIVES.target_vol
    vol_tolerance: float = _OBJECTIVES.vol_tolerance
    min_sharpe: float = _OBJECTIVES.min_sharpe
    max_drawdown: float = _OBJECTIVES.max_drawdown
    max_var95: float = _OBJECTIVES.max_var95
    max_cvar95: float = _OBJECTIVES.max_cvar95
    max_cost_bps: float = _OBJECTIVES.max_cost_bps
    robustness_threshold: float = _OBJECTIVES.robustness_threshold
    assumed_tc_bps: float = _OBJECTIVES.assumed_tc_bps
    penalty_weight: float = _OBJECTIVES.penalty_weight

    @model_validator(mode="after")
    def _in_range(self) -> ObjectivesResource:
        self.objectives()
        return self

    def objectives(self) -> InvestmentObjectives:
        """The engine's objectives; raises ConfigError naming a field out of its range."""
        names = [f.name for f in dataclasses.fields(InvestmentObjectives)]
        return InvestmentObjectives(**{name: getattr(self, name) for name in names})


class OptimisationAgent(dg.ConfigurableResource):
    """How the optimisation agent searches: the proposer of rounds after the first
    (``tpe``, ``lhs`` or ``bedrock``), the batch sizes, and the stop rule (best objective
    improving by less than ``tolerance`` over ``window`` configs, ``max_configs``, or
    ``time_budget_s`` of wall time). Defaults and ranges are
    ``engine.optimisation.loop.AgentSettings``'."""

    proposer: Literal["tpe", "lhs", "bedrock"] = _AGENT.proposer  # type: ignore[assignment]
    initial_batch: int = _AGENT.initial_batch
    batch_size: int = _AGENT.batch_size
    max_configs: int = _AGENT.max_configs
    window: int = _AGENT.window
    tolerance: float = _AGENT.tolerance
    time_budget_s: float = _AGENT.time_budget_s
    seed: int = _AGENT.seed

    @model_validator(mode="after")
    def _in_range(self) -> OptimisationAgent:
        self.settings()
        return self

    def settings(self) -> AgentSettings:
        """The engine's settings; raises ConfigError naming a field out of its range."""
        names = [f.name for f in dataclasses.fields(AgentSettings)]
        return AgentSettings(**{name: getattr(self, name) for name in names})


class ArtifactStore(dg.ConfigurableResource):
    """Where human-facing files (PNG, PDF, markdown) are stored: the ``artifacts`` folder of
    the data storage (``<data root>/artifacts`` locally, ``s3://<bucket>/<prefix>/artifacts``
    on AWS), so it moves with the data. Assets hand it bytes; the storage writes them whole
    with their sha256 (a reader never sees a partial file) and it returns where they are."""

    storage: ObjectStorage = Field(description="the data storage (local folder or S3)")
    folder: str = Field(default="artifacts", description="folder of the artifacts in it")

    @property
    def root(self) -> str:
        """Where the artifacts are: a folder, or an ``s3://`` prefix."""
        return f"{self.storage.location.rstrip('/')}/{safe_component(self.folder)}"

    def key(self, name: str) -> str:
        """The storage key of artifact ``name`` (a plain file name)."""
        return f"{safe_component(self.folder)}/{safe_component(name)}"

    def write(self, name: str, data: bytes) -> str:
        """Store ``data`` as ``name`` (a plain file name) and return its URI (``file://``
        locally, ``s3://`` on S3)."""
        key = self.key(name)
        self.storage.put(key, data)
        return self.storage.uri(key)
