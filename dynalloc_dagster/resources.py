"""Resources: the market data source, the investment objectives, the optimisation agent's
settings and the folder report artifacts (charts, the report) are written to.

Every resource here takes run-config overrides (``{"resources": {"objectives": {"config":
{...}}}}``), so one pipeline run carries one set of objectives and agent settings into
every stage it chains.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Literal, TypeVar

import dagster as dg
from pydantic import Field, model_validator

from dynalloc_dagster.market_sources.base import MarketInputs, validate_inputs
from dynalloc_dagster.market_sources.files import FolderReader, load_tables
from dynalloc_dagster.market_sources.s3 import BucketReader
from dynalloc_dagster.market_sources.synthetic import synthetic_inputs
from dynalloc_dagster.storage import ObjectStorage, safe_component
from engine.market.validation import (
    MAX_GAP_BUSINESS_DAYS,
    MAX_STALE_BUSINESS_DAYS,
    required_history_rows,
)
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec

SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data"
"""The shipped real sample (S&P 500 closes, risk-free rate; sample_data/README.md)."""
T = TypeVar("T")
_OBJECTIVES = InvestmentObjectives()
_AGENT = AgentSettings()


class MarketDataSource(dg.ConfigurableResource):
    """Where market data comes from (docs/market_data.md), by ``kind``:

    - ``synthetic`` (default, offline): ``years`` of a seeded base-regime market ending at
      ``as_of``, seeded from ``(seed, as_of)`` so each week's data differ;
    - ``files``: CSV or Parquet tables in the folder ``path`` (the shipped real sample is
      :data:`SAMPLE_DATA`);
    - ``s3``: the same tables under ``s3://bucket/prefix/``.

    :meth:`fetch` returns validated :class:`MarketInputs` or raises MarketDataError
    naming the file, the row or date and the rule of every violation.
    """

    kind: Literal["synthetic", "files", "s3"] = "synthetic"
    seed: int = Field(default=0, ge=0, description="synthetic: seed, combined with as_of")
    years: int = Field(default=10, ge=2, le=50, description="synthetic: years of history")
    path: str | None = Field(default=None, description="files: folder of the tables")
    bucket: str | None = Field(default=None, description="s3: bucket of the tables")
    prefix: str = Field(default="", description="s3: key prefix of the tables")
    endpoint_url: str | None = Field(default=None, description="s3: endpoint (default:"
                                     " boto3's, e.g. AWS_ENDPOINT_URL_S3)")
    region_name: str | None = Field(default=None, description="s3: region")
    dividend_yield: float = Field(default=0.0, ge=0.0, le=0.2,
                                  description="files, s3: the equity index's dividend yield")
    max_gap_business_days: int = Field(default=MAX_GAP_BUSINESS_DAYS, ge=1, le=60)
    max_stale_business_days: int = Field(default=MAX_STALE_BUSINESS_DAYS, ge=0, le=260)

    @model_validator(mode="after")
    def _location(self) -> MarketDataSource:
        if self.kind == "files" and not self.path:
            raise ValueError("market_source kind 'files' needs path (a folder; the shipped"
                             f" sample is {SAMPLE_DATA})")
        if self.kind == "s3" and not self.bucket:
            raise ValueError("market_source kind 's3' needs bucket")
        return self

    def fetch(self, as_of: dt.date | None, *, longest_window_months: int,
              portfolio: PortfolioSpec = TWO_ASSET) -> MarketInputs:
        """The market of ``portfolio``'s assets as of ``as_of``, validated (history long
        enough for the longest vol window plus a year). ``as_of=None``: today (synthetic)
        or the last date of the files (files, s3; then no stale check). The two-asset
        default reads the two-asset tables; any other portfolio one level column per
        asset with a series (docs/market_data.md)."""
        if self.kind == "synthetic":
            inputs = synthetic_inputs(as_of or dt.datetime.now(dt.UTC).date(),
                                      years=self.years, seed=self.seed, portfolio=portfolio)
        else:
            reader = (FolderReader(self.path or "") if self.kind == "files" else
                      BucketReader(self.bucket or "", self.prefix, endpoint_url=self.endpoint_url,
                                   region_name=self.region_name))
            inputs = load_tables(reader, as_of=as_of, portfolio=portfolio,
                                 dividend_yield=self.dividend_yield,
                                 max_gap_business_days=self.max_gap_business_days,
                                 max_stale_business_days=self.max_stale_business_days,
                                 min_rows=required_history_rows(longest_window_months))
        validate_inputs(inputs, longest_window_months=longest_window_months,
                        portfolio=portfolio, check_stale=as_of is not None,
                        max_gap_business_days=self.max_gap_business_days,
                        max_stale_business_days=self.max_stale_business_days)
        return inputs


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
        return _engine_settings(InvestmentObjectives, self)


def _engine_settings(cls: type[T], resource: dg.ConfigurableResource) -> T:
    """The engine dataclass ``cls`` built from the resource's fields of the same names."""
    return cls(**{f.name: getattr(resource, f.name) for f in dataclasses.fields(cls)})


class OptimisationAgent(dg.ConfigurableResource):
    """How the optimisation agent searches: the global proposer of rounds after the first
    (``tpe``, ``lhs`` or ``bedrock``), the batch sizes, the share of each later round
    refined locally around the incumbents (``local_share``, first step ``trust_radius``),
    and the stop rule (best objective
    improving by less than ``tolerance`` over ``window`` configs, ``max_configs``, or
    ``time_budget_s`` of wall time). Defaults and ranges are
    ``engine.optimisation.loop.AgentSettings``'."""

    proposer: Literal["tpe", "lhs", "bedrock"] = _AGENT.proposer  # type: ignore[assignment]
    initial_batch: int = _AGENT.initial_batch
    batch_size: int = _AGENT.batch_size
    local_share: float = _AGENT.local_share
    trust_radius: float = _AGENT.trust_radius
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
        return _engine_settings(AgentSettings, self)


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
