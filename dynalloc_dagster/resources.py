"""Resources: the market data source (one method, swappable for real sources) and the
folder report artifacts (charts, the markdown report) are written to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from engine.market.market_data import MarketData, synthetic_market_data


class MarketDataSource(dg.ConfigurableResource):
    """Where market data comes from. ``synthetic`` (the default, offline) generates a
    seeded market (engine.market.market_data); real sources arrive behind the same ``fetch``."""

    kind: Literal["synthetic"] = "synthetic"
    seed: int = 0
    years: int = Field(default=10, ge=2, le=50, description="years of daily history")

    def fetch(self, as_of: dt.date) -> MarketData:
        """The market as of ``as_of``: history, vol surface, yield curve, dividend yield."""
        return synthetic_market_data(as_of, years=self.years, seed=self.seed)


class ArtifactStore(dg.ConfigurableResource):
    """The folder of human-facing files (PNG, PDF, markdown); ``<data root>/artifacts``
    by default, so it moves with ``DYNALLOC_DATA_ROOT``."""

    root: str

    def path(self, name: str) -> Path:
        """``<root>/<name>``; ``name`` is a plain file name chosen by the code."""
        return Path(self.root) / name
