"""The portfolio the pipeline studies: the ingest step's config naming a shipped spec or
giving one, the spec carried in the tables, and the labels every output names the assets by.

``ops: {market_data: {config: {portfolio: {name: global_six}}}}`` studies a shipped spec
(:data:`engine.portfolio.examples.PORTFOLIOS`); ``portfolio: {assets: [...],
equity_correlation: ..., risky_weights: ..., defensive_weights: ...}`` one given in the
form of ``PortfolioSpec.to_dict()``. Without either it is the two-asset study
(:data:`engine.portfolio.spec.TWO_ASSET`), whose tables are those of the two-asset
pipeline bit for bit. Any other spec runs the multi-asset path: its market data carries
the spec (the ``portfolio`` column, JSON), so every later step reads the portfolio from
the data it is computed from: calibrated equities, PortfolioPaths, evaluate_portfolio,
searched base mixes and every asset in every output.

No `from __future__ import annotations`: Dagster reads the Config annotations at runtime.
"""

import json
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, model_validator

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.market.legs import BOND_COLUMN
from engine.portfolio.examples import PORTFOLIOS
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec
from engine.validation import ConfigError

PORTFOLIO_COLUMN = "portfolio"
"""The column of market_data (the spec), calibration and market_regimes (the calibrated
spec) holding a multi-asset portfolio's spec as JSON; the two-asset tables have none."""


class AssetConfig(dg.Config):
    """One asset in the form of ``engine.portfolio.spec.Asset`` (fields left out take the
    Asset's defaults; ranges are the Asset's)."""

    name: str
    asset_class: str
    series: str | None = None
    maturity_years: float | None = None
    coupon_rate: float | None = None
    roll: str | None = None
    vol_ratio: float | None = None
    drift_spread: float | None = None


class PortfolioConfig(dg.Config):
    """The portfolio studied: ``name`` of a shipped spec (two_asset, global_six) or the
    spec itself (``assets`` and optionally ``equity_correlation``, ``risky_weights``,
    ``defensive_weights``), not both; default the two-asset study. A bad spec fails
    naming the field (PortfolioSpec's ConfigError)."""

    name: str | None = Field(default=None, description="a shipped portfolio: "
                             + ", ".join(PORTFOLIOS))
    assets: list[AssetConfig] | None = Field(default=None, description="the assets, in the"
                                             " form of PortfolioSpec.to_dict()")
    equity_correlation: list[list[float]] | None = None
    risky_weights: list[float] | None = None
    defensive_weights: list[float] | None = None

    @model_validator(mode="after")
    def _valid(self) -> "PortfolioConfig":
        self.spec()
        return self

    def spec(self) -> PortfolioSpec:
        """The PortfolioSpec; ConfigError naming the field when it is not valid."""
        given = {k: getattr(self, k) for k in ("equity_correlation", "risky_weights",
                                               "defensive_weights")
                 if getattr(self, k) is not None}
        if self.name is not None:
            if self.assets is not None or given:
                raise ConfigError("give name (a shipped portfolio) or assets, not both")
            if self.name not in PORTFOLIOS:
                raise ConfigError(f"portfolio.name = {self.name!r} is not a shipped portfolio;"
                                  f" allowed: {', '.join(PORTFOLIOS)}")
            return PORTFOLIOS[self.name]
        if self.assets is None:
            if given:
                raise ConfigError(f"{', '.join(given)} given without assets")
            return TWO_ASSET
        assets = [{k: v for k, v in a.model_dump().items() if v is not None}
                  for a in self.assets]
        return PortfolioSpec.from_dict({"assets": assets, **given})


def is_multi_asset(spec: PortfolioSpec) -> bool:
    """Whether ``spec`` runs the multi-asset path (anything but the default two-asset spec)."""
    return spec != TWO_ASSET


def spec_json(spec: PortfolioSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


def spec_from_table(table: pl.DataFrame | None) -> PortfolioSpec:
    """The spec a market_data, calibration or market_regimes table carries, or
    :data:`TWO_ASSET` (a two-asset table has no ``portfolio`` column)."""
    if table is None or PORTFOLIO_COLUMN not in table.columns:
        return TWO_ASSET
    return PortfolioSpec.from_dict(json.loads(table[PORTFOLIO_COLUMN][0]))


def defensive_leg(spec: PortfolioSpec) -> str:
    """"bond" when the defensive sleeve holds a government bond, else "cash"."""
    return "bond" if any(a.asset_class == "government_bond" for a in spec.defensive) else "cash"


def asset_label(asset: Asset, source_kind: str, columns: set[str] | None = None) -> str:
    """What the asset is and where its data comes from, e.g. ``ust_5y: 5y government
    bond, zero-coupon, daily roll (files series ust_5y)``."""
    if asset.asset_class == "equity":
        kind = "equity index"
    elif asset.asset_class == "cash":
        kind = "cash at the risk-free rate"
    else:
        coupon = f"{asset.coupon_rate:.2%} coupon" if asset.coupon_rate else "zero-coupon"
        kind = f"{asset.maturity_years:g}y government bond, {coupon}, {asset.roll} roll"
    if asset.asset_class == "cash":
        where = f"{source_kind} risk_free"
    elif source_kind == "synthetic":
        where = "synthetic, simulated"
    elif asset.series is None or (columns is not None and asset.name not in columns):
        where = "no series: simulated only"
    else:
        where = f"{source_kind} series {asset.series}"
    return f"{asset.name}: {kind} ({where})"


def asset_weights(spec: PortfolioSpec, weights: Any, source_kind: str,
                  columns: set[str] | None = None) -> list[dict[str, Any]]:
    """[{asset, label, weight}] in ``spec.ordered`` order: the multi-asset outputs' list."""
    return [{"asset": a.name, "label": asset_label(a, source_kind, columns),
             "weight": float(w)} for a, w in zip(spec.ordered, weights, strict=True)]


def price_columns(spec: PortfolioSpec, history: pl.DataFrame) -> list[str]:
    """The history's level columns of ``spec``'s assets, in ``spec.ordered`` order (a
    multi-asset history names them by asset; cash has none)."""
    return [a.name for a in spec.ordered if a.name in history.columns]


def history_levels(spec: PortfolioSpec, history: pl.DataFrame) -> np.ndarray:
    """(n_assets, n_days) levels of every asset in ``spec.ordered`` order: its column, or
    for cash the money-market account cash_t = cash_{t-1} (1 + rf_{t-1} / 252). An asset
    with neither fails naming it: the live signal needs every asset's history."""
    rate = history["risk_free"].to_numpy()
    cash = np.concatenate([[1.0], np.cumprod(1.0 + rate[:-1] / TRADING_DAYS_PER_YEAR)])
    rows = []
    for asset in spec.ordered:
        if asset.name in history.columns:
            rows.append(history[asset.name].to_numpy().astype(np.float64))
        elif asset.asset_class == "cash":
            rows.append(cash)
        else:
            raise ValueError(f"asset {asset.name!r} (series {asset.series!r}) has no column in"
                             " the market data: the live signal needs a history of every"
                             " asset; give its series to the market source")
    return np.stack(rows)


def lead_history(spec: PortfolioSpec, history: pl.DataFrame) -> pl.DataFrame:
    """The two-asset view of a multi-asset history the market-level estimates use (the
    calibrated regime, the regime classifier): date, close (the first equity), risk_free,
    bond_close (the first government bond with a column, when there is one) and the
    other columns that are not asset levels (dividend_yield)."""
    names = set(spec.names)
    lead = spec.equities[0].name
    bonds = [a.name for a in spec.defensive
             if a.asset_class == "government_bond" and a.name in history.columns]
    return history.select(
        "date", pl.col(lead).alias("close"), "risk_free",
        *([pl.col(bonds[0]).alias(BOND_COLUMN)] if bonds else []),
        *(c for c in history.columns if c not in names | {"date", "risk_free"}))


def equity_log_returns(spec: PortfolioSpec, history: pl.DataFrame) -> np.ndarray | None:
    """Daily log returns of the equities, (n_days - 1, n_equities), or None when one has
    no column (it keeps the spec's vol ratio and correlation)."""
    columns = [a.name for a in spec.equities]
    if not set(columns) <= set(history.columns):
        return None
    return np.diff(np.log(history.select(columns).to_numpy()), axis=0)
