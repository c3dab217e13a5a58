"""Ingestion: market data from the configured source, validated at the edge, and its
calibration (Heston on the vol surface, the bootstrapped curve, rates and correlation
from history).

No `from __future__ import annotations` here: Dagster reads the Config and resource
annotations of asset functions at runtime."""


import datetime as dt
import math

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from dynalloc_dagster.portfolio import (
    PORTFOLIO_COLUMN,
    PortfolioConfig,
    equity_log_returns,
    is_multi_asset,
    lead_history,
    price_columns,
    spec_from_table,
    spec_json,
)
from dynalloc_dagster.resources import MarketDataSource
from dynalloc_dagster.storage.metadata import table_metadata
from engine.market.calibration import calibrate, regime_clips
from engine.market.validation import MarketDataError, validate_history
from engine.market.yield_curve import curve_from_frame
from engine.optimisation.search_space import SearchSpace
from engine.portfolio.calibration import calibrate_equities
from engine.portfolio.spec import TWO_ASSET

OWNERS = ["team:quant-research"]
AS_OF_COLUMN = "as_of"
"""The date the market was taken at, carried from calibration to the regimes and paths."""
LONGEST_WINDOW_MONTHS = SearchSpace().vol_window_months[1]
"""The longest vol window the agent may propose: the history must cover it plus a year."""
EARLIEST_AS_OF = dt.date(1900, 1, 1)
"""The earliest market date accepted (no daily index history is older)."""
CLIPS_CHECK = "calibration_within_model_ranges"


class MarketDataConfig(dg.Config):
    """``as_of``: ISO date the data is taken at, from ``EARLIEST_AS_OF`` to today (UTC):
    a later date's market is not known yet (the synthetic source would invent one).
    Default: today (UTC) for the synthetic source; the last date of the files for the
    files and s3 sources (no stale check). ``portfolio``: the portfolio whose market is
    fetched and studied (dynalloc_dagster.portfolio; default the two-asset study)."""

    portfolio: PortfolioConfig | None = Field(
        default=None, description="the portfolio studied: {name: global_six} or a"
        " PortfolioSpec.to_dict() mapping (default: the two-asset study)")

    as_of: str | None = Field(default=None, description="ISO date, e.g. 2026-11-23, from"
                              f" {EARLIEST_AS_OF} to today (UTC)")

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        # checked when the config is built, so a bad date fails naming the field
        if value is None:
            return value
        try:
            date = dt.date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"as_of must be an ISO date (YYYY-MM-DD): {error}") from None
        today = dt.datetime.now(dt.UTC).date()
        if date < EARLIEST_AS_OF:
            raise ValueError(f"as_of {value} is before {EARLIEST_AS_OF}")
        if date > today:
            raise ValueError(f"as_of {value} is after today ({today}, UTC): a future date's"
                             " market is not known")
        return value


# Each spec names the IO manager: without one, Dagster types a spec's output as Nothing
# and rejects the DataFrames yielded below.
def _ingestion_out(description: str) -> dg.AssetOut:
    return dg.AssetOut(description=description, kinds={"polars", "parquet"}, owners=OWNERS,
                       group_name="ingestion", code_version="2")


@dg.multi_asset(
    outs={
        "market_data": _ingestion_out(
            "Daily history: date, close (equity index), risk_free (annualised decimal),"
            " bond_close (bond index, when the source has one), dividend_yield."),
        "market_vol_surface": _ingestion_out(
            "Implied vols by expiry (years) and log-moneyness ln K/F (empty: none given)."),
        "market_yield_curve": _ingestion_out(
            "The yield curve as given: tenor_years and zero_yield (continuously compounded)"
            " or par_rate (empty: none given)."),
        "market_holdings": _ingestion_out(
            "Current holdings: asset (equity, bond) and units or weight (empty: none given)."),
    },
)
def market_data(config: MarketDataConfig, market_source: MarketDataSource):
    """Fetch the market of the portfolio's assets from the configured source (a
    multi-asset portfolio: one level column per asset, named by the asset, and its spec as
    JSON in the ``portfolio`` column, which every later step reads) and validate
    it before anything is stored: a violation (NaN, non-positive price, unsorted or
    duplicate dates, gaps, short or stale history, percent rates, an arbitrageable or
    negative vol surface, bad holdings) fails the step naming the file, the row or date
    and the rule, so the last good materialization stays in place and nothing
    downstream runs."""
    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else None
    spec = config.portfolio.spec() if config.portfolio else TWO_ASSET
    multi = is_multi_asset(spec)
    market = market_source.fetch(as_of, longest_window_months=LONGEST_WINDOW_MONTHS,
                                 portfolio=spec)
    history = market.history.with_columns(pl.lit(market.dividend_yield).alias("dividend_yield"))
    if multi:
        history = history.with_columns(pl.lit(spec_json(spec)).alias(PORTFOLIO_COLUMN))
    lead = lead_history(spec, history) if multi else history
    _check_calibratable(lead, market.yield_curve, market.origin)
    yield dg.Output(history, "market_data", metadata={
        **table_metadata(history.tail(10)), "dagster/row_count": history.height,
        "as_of": str(market.as_of), "first_date": str(history["date"][0]),
        "last_date": str(history["date"][-1]),
        "last_close": float(lead["close"][-1]),
        **({"assets": ", ".join(price_columns(spec, history))} if multi else {}),
        "last_risk_free": float(history["risk_free"][-1]),
        "source": market_source.kind, "origin": market.origin,
        "files": dg.MetadataValue.json(market.sources),
    })
    yield dg.Output(market.vol_surface, "market_vol_surface",
                    metadata=table_metadata(market.vol_surface))
    yield dg.Output(market.yield_curve, "market_yield_curve",
                    metadata=table_metadata(market.yield_curve))
    yield dg.Output(market.holdings, "market_holdings",
                    metadata=table_metadata(market.holdings))


def _check_calibratable(history: pl.DataFrame, yield_curve: pl.DataFrame, origin: str) -> None:
    """Rule ``not_calibratable``: the calibration's history estimates and curve bootstrap
    run on the new market before it is stored, so a market the ``calibration`` step would
    fail on never replaces the one the stored calibration came from. (The surface's
    Heston fit is left to that step: it fails only on vols the surface rules refuse.)"""
    try:
        calibrate(history, yield_curve=curve_from_frame(yield_curve) if yield_curve.height
                  else None)
    except Exception as error:
        raise MarketDataError(f"{origin}: rule not_calibratable: {type(error).__name__}:"
                              f" {error}") from None


@dg.asset_check(asset="market_data", blocking=True,
                description="The stored history passes every history rule of"
                " engine.market.validation (NaN, prices, dates, gaps, length); blocking:"
                " nothing downstream runs on a history that does not.")
def market_data_sanity(market_data: pl.DataFrame) -> dg.AssetCheckResult:
    prices = [c for c in market_data.columns
              if c not in ("date", "risk_free", "dividend_yield", PORTFOLIO_COLUMN)]
    try:
        validate_history(market_data, longest_window_months=LONGEST_WINDOW_MONTHS,
                         price_columns=prices)
        violations: list[str] = []
    except MarketDataError as error:
        violations = error.violations
    return dg.AssetCheckResult(passed=not violations, metadata={
        "violations": len(violations), "rows": market_data.height,
        "details": dg.MetadataValue.md("\n".join(f"- {v}" for v in violations[:50]) or "none"),
    })


@dg.asset(group_name="ingestion", owners=OWNERS, kinds={"polars", "parquet"}, code_version="3",
          check_specs=[dg.AssetCheckSpec(
              CLIPS_CHECK, asset="calibration",
              description="Every estimate reached the calibrated regime unclipped (a"
              " warning: the regime is still built, each clipped value at its range's end)")])
def calibration(
    market_data: pl.DataFrame, market_vol_surface: pl.DataFrame,
    market_yield_curve: pl.DataFrame,
):  # no return annotation: with check specs, Dagster types an annotated result's value Nothing
    """The market-implied dynamics (engine.market.calibration.calibrate): Heston fitted to
    the vol surface (by moments of the realised variance without one), the short rate
    from the bootstrapped curve (the last risk-free rate without one), Vasicek rate
    parameters from the rate history, equity-bond correlation and realised vol from the
    history. One row, with ``as_of`` the history's last date (the scenarios' seeds derive
from it); the fit's RMSE and time are in the metadata. For a multi-asset portfolio these
    are fitted to its first equity and first government bond, and the equities' vol
    ratios and Ledoit-Wolf correlation to their joint daily history
    (engine.portfolio.calibration.calibrate_equities); the calibrated spec is the
    ``portfolio`` column (JSON), which the scenarios simulate."""
    curve = curve_from_frame(market_yield_curve) if market_yield_curve.height else None
    spec = spec_from_table(market_data)
    multi = is_multi_asset(spec)
    history = lead_history(spec, market_data) if multi else market_data
    fitted = calibrate(
        history, vol_surface=market_vol_surface if market_vol_surface.height else None,
        yield_curve=curve, dividend_yield=float(market_data["dividend_yield"][-1]),
    )
    as_of = market_data["date"][-1]
    table = pl.DataFrame([fitted.to_dict() | {AS_OF_COLUMN: as_of}])
    portfolio_metadata = {}
    if multi:
        returns = equity_log_returns(spec, market_data)
        calibrated = spec if returns is None else calibrate_equities(spec, returns)
        table = table.with_columns(pl.lit(spec_json(calibrated)).alias(PORTFOLIO_COLUMN))
        portfolio_metadata = {
            "equities_calibrated": "no: an equity has no series (the spec's vol ratios and"
            " correlation kept)" if returns is None else "yes",
            **{f"vol_ratio_{a.name}": round(a.vol_ratio, 4) for a in calibrated.equities},
            "equity_correlation": dg.MetadataValue.json(
                [list(row) for row in calibrated.equity_correlation or ((1.0,),)]),
        }
    figures = {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else
                   (str(v) if isinstance(v, float) else v))
               for k, v in fitted.to_dict().items()}
    metadata = {**table_metadata(table), **figures, "as_of": str(as_of), **portfolio_metadata}
    if curve is not None:
        metadata["zero_curve"] = table_metadata(curve.to_frame())["preview"]
    clips = regime_clips(fitted)
    check = dg.AssetCheckResult(
        check_name=CLIPS_CHECK, passed=not clips, severity=dg.AssetCheckSeverity.WARN,
        metadata={"clips": len(clips),
                  "clipped": dg.MetadataValue.md("\n".join(f"- {c}" for c in clips) or "none")})
    return dg.MaterializeResult(value=table, metadata=metadata, check_results=[check])
