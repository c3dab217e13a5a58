"""Ingestion: market data and its calibration.

No `from __future__ import annotations` here: Dagster reads the Config and resource
annotations of asset functions at runtime."""


import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from dynalloc_dagster.metadata import table_metadata
from dynalloc_dagster.resources import MarketDataSource
from engine.market.calibration import calibrate

OWNERS = ["team:quant-research"]


class MarketDataConfig(dg.Config):
    """``as_of``: ISO date the data is taken at (default: today, UTC)."""

    as_of: str | None = Field(default=None, description="ISO date, e.g. 2026-11-23")

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        # checked when the config is built, so a bad date fails naming the field
        if value is not None:
            try:
                dt.date.fromisoformat(value)
            except ValueError as error:
                raise ValueError(f"as_of must be an ISO date (YYYY-MM-DD): {error}") from None
        return value


# Each spec names the IO manager: without one, Dagster types a spec's output as Nothing
# and rejects the DataFrames yielded below.
def _ingestion_out(description: str) -> dg.AssetOut:
    return dg.AssetOut(description=description, kinds={"polars", "parquet"}, owners=OWNERS,
                       group_name="ingestion", code_version="1")


@dg.multi_asset(
    outs={
        "market_data": _ingestion_out(
            "Daily history: date, close (equity total-return index), bond_close (7y"
            " constant-maturity index), risk_free, dividend_yield."),
        "market_vol_surface": _ingestion_out(
            "Implied vols by expiry (years) and log-moneyness."),
        "market_yield_curve": _ingestion_out(
            "Zero-coupon yields by tenor (continuously compounded)."),
    },
)
def market_data(config: MarketDataConfig, market_source: MarketDataSource):
    """Fetch the market from the configured source (synthetic and offline by default)."""
    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else dt.datetime.now(dt.UTC).date()
    market = market_source.fetch(as_of)
    history = market.history.with_columns(pl.lit(market.dividend_yield).alias("dividend_yield"))
    yield dg.Output(history, "market_data", metadata={
        **table_metadata(history.tail(10)), "dagster/row_count": history.height,
        "as_of": str(as_of), "first_date": str(history["date"][0]),
        "last_close": float(history["close"][-1]), "source": market_source.kind,
    })
    yield dg.Output(market.vol_surface, "market_vol_surface",
                    metadata=table_metadata(market.vol_surface))
    yield dg.Output(market.yield_curve, "market_yield_curve",
                    metadata=table_metadata(market.yield_curve))


@dg.asset_check(asset="market_data", description="No nulls or duplicate dates, dates "
                "increasing, positive closes, at least 12 months (252 days) of history.")
def market_data_sanity(market_data: pl.DataFrame) -> dg.AssetCheckResult:
    problems = {
        "null_values": int(market_data.null_count().sum_horizontal()[0]),
        "duplicate_dates": int(market_data.height - market_data["date"].n_unique()),
        "non_increasing_dates": int((market_data["date"].diff().dt.total_days() <= 0).sum()),
        "non_positive_closes": int(((market_data["close"] <= 0)
                                    | (market_data["bond_close"] <= 0)).sum()),
        "short_history": int(market_data.height < 252),
    }
    return dg.AssetCheckResult(passed=not any(problems.values()), metadata=problems)


@dg.asset(group_name="ingestion", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1")
def calibration(market_data: pl.DataFrame) -> dg.MaterializeResult:
    """Regime dynamics estimated from the history by moment matching (engine.market.calibration):
    equity drift and vol, Heston kappa / vol of vol / spot-variance correlation,
    equity-bond correlation, short rate and rate vol."""
    fitted = calibrate(market_data)
    table = pl.DataFrame([fitted.to_dict()])
    return dg.MaterializeResult(
        value=table,
        metadata={**table_metadata(table), **{k: float(v) for k, v in fitted.to_dict().items()}},
    )
