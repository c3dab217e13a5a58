"""Resources: the market data source (one method, swappable for real sources)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import dagster as dg
from pydantic import Field

from engine.market_data import MarketData, synthetic_market_data


class MarketDataSource(dg.ConfigurableResource):
    """Where market data comes from. ``synthetic`` (the default, offline) generates a
    seeded market (engine.market_data); real sources arrive behind the same ``fetch``."""

    kind: Literal["synthetic"] = "synthetic"
    seed: int = 0
    years: int = Field(default=10, ge=2, le=50, description="years of daily history")

    def fetch(self, as_of: dt.date) -> MarketData:
        """The market as of ``as_of``: history, vol surface, yield curve, dividend yield."""
        return synthetic_market_data(as_of, years=self.years, seed=self.seed)
