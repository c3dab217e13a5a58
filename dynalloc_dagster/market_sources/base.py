"""What every market data source returns, and the validation it passes before use.

A source returns :class:`MarketInputs` (history, vol surface, yield curve, holdings);
:func:`validate_inputs` runs the rules of ``engine.market.validation`` on them and raises
one ``MarketDataError`` listing every violation (file, row or date, rule), so nothing
downstream runs on a bad file. docs/market_data.md describes the columns and units.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from engine.market.validation import (
    MAX_GAP_BUSINESS_DAYS,
    MAX_STALE_BUSINESS_DAYS,
    MarketDataError,
    validate_history,
    validate_vol_surface,
    validate_yield_curve,
)
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec

SourceKind = Literal["synthetic", "files", "s3"]
ASSETS: tuple[str, ...] = ("equity", "bond")
"""Holdings rows of the two-asset study name one of these; ``bond`` is the bond index, or
cash without one. A portfolio's holdings name its assets."""
TWO_ASSET_COLUMNS = {"equity": "close", "bond": "bond_close"}
"""The two-asset history's column of each asset of :data:`TWO_ASSET`."""
RESERVED_COLUMNS: tuple[str, ...] = ("date", "risk_free", "dividend_yield")
"""Columns of the stored history that are not an asset's levels."""
WEIGHT_TOLERANCE = 1e-6
"""How far holdings weights may sum from 1."""

HISTORY_SCHEMA = {"date": pl.Date, "close": pl.Float64, "risk_free": pl.Float64}
SURFACE_SCHEMA = {"expiry_years": pl.Float64, "log_moneyness": pl.Float64,
                  "implied_vol": pl.Float64}
CURVE_SCHEMA = {"tenor_years": pl.Float64, "zero_yield": pl.Float64}
HOLDINGS_SCHEMA = {"asset": pl.String, "units": pl.Float64, "weight": pl.Float64}


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """The market as one source delivers it.

    Attributes
    ----------
    history : date (pl.Date, increasing) and risk_free (annualised decimal); for the
        two-asset spec close (equity index level) and optionally bond_close (bond index
        level), for any other portfolio one level column per asset of
        :func:`level_assets`, named by the asset (equity index closes, bond buckets'
        total-return index levels), in ``spec.ordered`` order.
    vol_surface : expiry_years, log_moneyness (ln K/F), implied_vol (decimal); may be empty.
    yield_curve : tenor_years and zero_yield (continuously compounded) or par_rate (with an
        optional integer ``frequency``, coupons a year); may be empty.
    holdings : asset (equity or bond; a portfolio's asset names) and units (index units
        held) or weight (of NAV); may be empty (no current holdings known).
    dividend_yield : q, annualised, of the (first) equity index (the surface's forwards).
    as_of : the date the market is taken at; the history ends on or before it.
    origin : where the data came from, for metadata (a folder, an s3:// URI, "synthetic").
    sources : logical table name -> the file or object it was read from (errors name it).
    """

    history: pl.DataFrame
    vol_surface: pl.DataFrame
    yield_curve: pl.DataFrame
    holdings: pl.DataFrame
    dividend_yield: float
    as_of: dt.date
    origin: str
    sources: dict[str, str]


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty table with ``schema`` (a missing optional input)."""
    return pl.DataFrame(schema=schema)


def level_assets(spec: PortfolioSpec) -> tuple[Asset, ...]:
    """The assets with a level column in the history: every asset with a ``series``
    except cash (it earns ``risk_free``), in ``spec.ordered`` order. An asset named like
    another column of the stored history (RESERVED_COLUMNS) is refused (rule
    ``reserved_name``)."""
    assets = tuple(a for a in spec.ordered if a.series is not None and a.asset_class != "cash")
    clashes = [a.name for a in assets if a.name in RESERVED_COLUMNS]
    if clashes:
        raise MarketDataError(f"portfolio: rule reserved_name: asset(s) {', '.join(clashes)}"
                              " named like a column of the history"
                              f" ({', '.join(RESERVED_COLUMNS)}); rename them")
    return assets


def asset_levels(inputs: MarketInputs, spec: PortfolioSpec) -> pl.DataFrame:
    """date, risk_free and one level column per asset of :func:`level_assets` named by
    the asset, whatever the history's layout: the two-asset history's ``close`` becomes
    ``equity`` and its ``bond_close`` (when present; else the bond leg is cash) ``bond``."""
    history = inputs.history
    if spec == TWO_ASSET:
        renames = {c: a for a, c in TWO_ASSET_COLUMNS.items() if c in history.columns}
        return history.select("date", "risk_free", *(pl.col(c).alias(a)
                                                     for c, a in renames.items()))
    names = [a.name for a in level_assets(spec)]
    missing = [n for n in names if n not in history.columns]
    if missing:
        raise MarketDataError(f"{inputs.sources.get('history', inputs.origin)}: rule"
                              f" missing_column: no level column for asset(s)"
                              f" {', '.join(missing)}; found {', '.join(history.columns)}")
    return history.select("date", "risk_free", *names)


def validate_inputs(
    inputs: MarketInputs, *, longest_window_months: int,
    portfolio: PortfolioSpec = TWO_ASSET, check_stale: bool = True,
    max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
    max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS,
) -> None:
    """Every rule on every table; one MarketDataError listing all violations.

    The history must cover the longest vol window plus a year
    (``engine.market.validation.required_history_rows``) and, with ``check_stale``, end
    within ``max_stale_business_days`` of ``as_of``; for a portfolio other than the
    two-asset one the price rules run on each asset's level column and holdings name
    the portfolio's assets.
    """
    violations: list[str] = []
    name = inputs.sources.get
    two_asset = portfolio == TWO_ASSET
    prices = None if two_asset else [a.name for a in level_assets(portfolio)]
    checks = [
        lambda: validate_history(
            inputs.history, as_of=inputs.as_of if check_stale else None,
            longest_window_months=longest_window_months,
            max_gap_business_days=max_gap_business_days,
            max_stale_business_days=max_stale_business_days, source=name("history"),
            price_columns=prices),
    ]
    if inputs.vol_surface.height:
        checks.append(lambda: validate_vol_surface(inputs.vol_surface,
                                                   source=name("vol_surface")))
    if inputs.yield_curve.height:
        checks.append(lambda: validate_yield_curve(inputs.yield_curve,
                                                   source=name("yield_curve")))
    if inputs.holdings.height:
        checks.append(lambda: validate_holdings(
            inputs.holdings, source=name("holdings"),
            assets=ASSETS if two_asset else portfolio.names))
    for check in checks:
        try:
            check()
        except MarketDataError as error:
            violations.extend(error.violations)
    if violations:
        raise MarketDataError(violations)


def validate_holdings(holdings: pl.DataFrame, *, source: str | None = None,
                      assets: tuple[str, ...] = ASSETS) -> None:
    """Holdings rules: asset is one of ``assets`` (the two-asset study's equity and bond
    by default, a portfolio's asset names), once each (rule ``holdings_asset``); units
    finite, >= 0 and not all 0 (``holdings_units``), or weights in [0, 1] summing to 1
    (``holdings_weights``); exactly one of the two columns (``holdings_columns``)."""
    where = f"{source}:" if source else "holdings:"
    has_units, has_weight = "units" in holdings.columns, "weight" in holdings.columns
    if "asset" not in holdings.columns or has_units == has_weight:
        raise MarketDataError(
            f"{where} rule holdings_columns: need asset and exactly one of units, weight;"
            f" found {', '.join(holdings.columns)}")
    problems = []
    for row, asset in enumerate(holdings["asset"].to_list()):
        if asset not in assets:
            problems.append(f"{where} column 'asset', row {row}: rule holdings_asset: {asset!r}"
                            f" is not one of {', '.join(assets)}")
    duplicated = holdings.filter(pl.col("asset").is_duplicated())["asset"].unique().to_list()
    if duplicated:
        problems.append(f"{where} column 'asset': rule holdings_asset: {', '.join(duplicated)}"
                        " listed more than once")
    column = "units" if has_units else "weight"
    values = holdings[column].cast(pl.Float64).to_list()
    for row, value in enumerate(values):
        if value is None or value != value or value < 0 or (column == "weight" and value > 1):
            bound = ">= 0" if column == "units" else "in [0, 1]"
            problems.append(f"{where} column {column!r}, row {row}: rule holdings_{column}:"
                            f" {value!r} is not {bound}")
    if column == "units" and not problems and not any(values):
        problems.append(f"{where} column 'units': rule holdings_units: every unit is 0, a"
                        " portfolio worth nothing; leave the file out when nothing is held")
    if column == "weight" and not problems and abs(sum(values) - 1.0) > WEIGHT_TOLERANCE:
        problems.append(f"{where} column 'weight': rule holdings_weights: weights sum to"
                        f" {sum(values)!r}, not 1")
    if problems:
        raise MarketDataError(problems)


def up_to(inputs: MarketInputs, as_of: dt.date) -> MarketInputs:
    """``inputs`` with the history cut at ``as_of`` (later rows are not known yet)."""
    return replace(inputs, history=inputs.history.filter(pl.col("date") <= as_of), as_of=as_of)
