"""A portfolio's market data from files: one file per series, or zero yields by maturity.

The layout (docs/market_data.md), in a folder or under an S3 prefix:

================== ======== ======================================================
file               required columns
================== ======== ======================================================
series/<s>.csv     per      date, close: the level of series ``s`` (an equity index
                   series   close, a bond bucket's total-return index level)
yields             no       date and one ``y_<years>`` column per tenor (y_2, y_0.25):
                            zero yields, continuously compounded, decimal
risk_free          yes      date, risk_free (annualised decimal)
yield_curve,       no       as for the two-asset study (``market_sources.files``)
vol_surface
holdings           no       asset (the portfolio's asset names) and units or weight
================== ======== ======================================================

Each asset with a series (cash excepted) gets one level column named by the asset: an
equity or a bond whose series is ``s`` reads ``series/s.csv`` (or ``.parquet``); a
government bond whose series is ``y_<T>`` (T its maturity_years) is the constant-maturity
index built from ``yields`` (engine.market.constant_maturity). Each series is checked on
its own rows first, then put on the first equity's calendar: each date takes the
series' latest value on or before it; the history starts on the first date every series
covers. Series files no asset names are ignored and listed in ``sources`` as unused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from dynalloc_dagster.market_sources.base import (
    CURVE_SCHEMA,
    HOLDINGS_SCHEMA,
    SURFACE_SCHEMA,
    MarketInputs,
    empty,
    level_assets,
)
from dynalloc_dagster.market_sources.tables import (
    FORMATS,
    TableReader,
    find_tables,
    numbers,
    parse_dates,
    read_curve,
    read_dated,
    read_holdings,
    read_surface,
    read_table,
)
from engine.market.constant_maturity import constant_maturity_index
from engine.market.validation import (
    MAX_GAP_BUSINESS_DAYS,
    MAX_STALE_BUSINESS_DAYS,
    MarketDataError,
    check_calendar,
    check_stale,
    validate_history,
)
from engine.portfolio.spec import Asset, PortfolioSpec

SERIES_FOLDER = "series"
YIELDS = "yields"
YIELD_PREFIX = "y_"
TABLES: tuple[str, ...] = ("risk_free", YIELDS, "yield_curve", "vol_surface", "holdings")
REQUIRED: tuple[str, ...] = ("risk_free",)


@dataclass(frozen=True, slots=True)
class _Series:
    """One asset's levels on their own dates (date, <asset name>) and where they came
    from, as errors name it."""

    frame: pl.DataFrame
    where: str


def yield_tenor(series: str) -> float | None:
    """The tenor in years a ``y_<years>`` name stands for, or None for another name."""
    if not series.startswith(YIELD_PREFIX):
        return None
    try:
        tenor = float(series[len(YIELD_PREFIX):])
    except ValueError:
        return None
    return tenor if np.isfinite(tenor) and tenor > 0 else None


def load_portfolio_tables(
    reader: TableReader, spec: PortfolioSpec, *, as_of: dt.date | None,
    dividend_yield: float = 0.0, max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
    max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS, min_rows: int | None = None,
) -> MarketInputs:
    """Read, check and align the series of ``spec``'s assets and the other tables.

    ``as_of`` cuts the history (``None``: the first equity's last date). ``min_rows``,
    the rows the history needs, makes a series that starts too late to leave them an
    error naming it (rule ``coverage``). Raises MarketDataError listing every violation.
    """
    violations: list[str] = []

    def attempt(step: Callable[[], object]) -> object:
        try:
            return step()
        except MarketDataError as error:
            violations.extend(error.violations)
            return None

    found = find_tables(reader.names(), reader, TABLES, REQUIRED, problems=violations)
    series_files = reader.names(SERIES_FOLDER)
    assets = level_assets(spec)
    calendar_asset = next((a for a in assets if a.asset_class == "equity"), None)
    if calendar_asset is None:
        violations.append(f"{reader.origin}: rule missing_series: no equity of the portfolio"
                          f" ({', '.join(a.name for a in spec.equities)}) names a series;"
                          " the history's calendar is the first equity's")
    yields = attempt(lambda: _yields(reader, found[YIELDS], max_gap_business_days)) \
        if YIELDS in found else None
    levels: dict[str, _Series] = {}
    used: set[str] = set()
    for asset in assets:
        got = attempt(lambda a=asset: _levels(reader, a, found, series_files, yields,
                                              max_gap_business_days, used))
        if isinstance(got, _Series):
            levels[asset.name] = got
    rate = attempt(lambda: read_dated(reader, found["risk_free"], (), ("risk_free",),
                                      max_gap_business_days)) if "risk_free" in found else None
    curve = attempt(lambda: read_curve(reader, found["yield_curve"])) \
        if "yield_curve" in found else empty(CURVE_SCHEMA)
    surface = attempt(lambda: read_surface(reader, found["vol_surface"])) \
        if "vol_surface" in found else empty(SURFACE_SCHEMA)
    holdings = attempt(lambda: read_holdings(reader, found["holdings"], spec.names)) \
        if "holdings" in found else empty(HOLDINGS_SCHEMA)
    if violations or calendar_asset is None or not isinstance(rate, pl.DataFrame):
        raise MarketDataError(violations)
    assert isinstance(curve, pl.DataFrame) and isinstance(surface, pl.DataFrame)
    assert isinstance(holdings, pl.DataFrame)
    others = [(a.name, levels[a.name]) for a in assets if a is not calendar_asset]
    others.append(("risk_free", _Series(rate, reader.locate(found["risk_free"]))))
    history = _common_calendar(levels[calendar_asset.name], others, as_of=as_of,
                               min_rows=min_rows,
                               max_stale_business_days=max_stale_business_days)
    history = history.select("date", *(a.name for a in assets), "risk_free")
    sources = {"history": levels[calendar_asset.name].where,
               **{f"asset:{name}": s.where for name, s in levels.items()},
               **{t: reader.locate(found[t]) for t in TABLES if t in found},
               **{f"unused:{name}": reader.locate(name) for name in sorted(series_files - used)}}
    return MarketInputs(history=history, vol_surface=surface, yield_curve=curve,
                        holdings=holdings, dividend_yield=dividend_yield,
                        as_of=as_of or history["date"][-1], origin=reader.origin,
                        sources=sources)


def _levels(reader: TableReader, asset: Asset, found: dict[str, str], series_files: set[str],
            yields: object, max_gap_business_days: int, used: set[str]) -> _Series | None:
    """The asset's levels: its ``series/<s>`` file, or for a government bond named
    ``y_<T>`` the constant-maturity index built from the yields table (None when that
    table broke rules of its own, listed already)."""
    series = str(asset.series)
    tenor = yield_tenor(series) if asset.asset_class == "government_bond" else None
    if tenor is not None:
        return _from_yields(reader, asset, tenor, found, yields)
    candidates = [f"{SERIES_FOLDER}/{series}.{fmt}" for fmt in FORMATS]
    names = [n for n in candidates if n in series_files]
    if not names:
        raise MarketDataError(
            f"{reader.locate(candidates[0])}: rule missing_series: asset {asset.name!r} names"
            f" series {series!r}, and neither {' nor '.join(reader.locate(n) for n in candidates)}"
            " exists")
    if len(names) > 1:
        raise MarketDataError(f"{reader.locate(names[0])}: rule ambiguous_file: both"
                              f" {' and '.join(names)} exist; keep one")
    used.add(names[0])
    frame = read_dated(reader, names[0], ("close",), (), max_gap_business_days)
    return _Series(frame.rename({"close": asset.name}), reader.locate(names[0]))


def _from_yields(reader: TableReader, asset: Asset, tenor: float, found: dict[str, str],
                 yields: object) -> _Series | None:
    series = str(asset.series)
    if YIELDS not in found:
        looked = " nor ".join(reader.locate(f"{YIELDS}.{fmt}") for fmt in FORMATS)
        raise MarketDataError(
            f"{reader.locate(f'{YIELDS}.csv')}: rule missing_series: asset {asset.name!r}"
            f" names series {series!r}, the {tenor:g}-year zero yield, and neither {looked}"
            " exists")
    where = reader.locate(found[YIELDS])
    if tenor != asset.maturity_years:
        raise MarketDataError(
            f"{where}: column {series!r}: rule series_maturity: asset {asset.name!r} has"
            f" maturity_years {asset.maturity_years:g} but series {series!r} is the"
            f" {tenor:g}-year yield; name the yield of its own maturity")
    if not isinstance(yields, pl.DataFrame):
        return None
    tenors = {yield_tenor(c): c for c in yields.columns if c != "date"}
    if tenor not in tenors:
        raise MarketDataError(
            f"{where}: rule missing_series: asset {asset.name!r} names series {series!r}, a"
            f" column the file lacks; found {', '.join(yields.columns)}")
    ordered = sorted(tenors)
    index = constant_maturity_index(
        yields["date"].to_list(), np.array(ordered),
        yields.select(tenors[t] for t in ordered).to_numpy(), float(tenor),
        coupon_rate=asset.coupon_rate, roll=asset.roll)
    return _Series(pl.DataFrame({"date": yields["date"], asset.name: index}),
                   f"{where} (column {series!r})")


def _yields(reader: TableReader, name: str, max_gap_business_days: int) -> pl.DataFrame:
    """The yields table: date and its ``y_<years>`` columns (others ignored), checked like
    a rate file (decimals, dates increasing, no gaps, no missing value); rule
    ``yield_column`` for a ``y_`` column whose tenor is not a positive number of years
    or repeats another's."""
    where = reader.locate(name)
    frame = read_table(reader, name, ("date",))
    columns = [c for c in frame.columns if c.startswith(YIELD_PREFIX)]
    tenors = [yield_tenor(c) for c in columns]
    problems = [f"{where}: column {c!r}: rule yield_column: not y_<tenor in years>, e.g."
                " y_2 or y_0.25" for c, t in zip(columns, tenors, strict=True) if t is None]
    repeated = sorted({c for c, t in zip(columns, tenors, strict=True)
                       if t is not None and tenors.count(t) > 1})
    if repeated:
        problems.append(f"{where}: rule yield_column: columns {', '.join(repeated)} are the"
                        " same tenor")
    if not columns:
        problems.append(f"{where}: rule missing_column: no y_<tenor> column (zero yields by"
                        f" tenor in years, e.g. y_2, y_10); found {', '.join(frame.columns)}")
    if problems:
        raise MarketDataError(problems)
    frame = numbers(parse_dates(frame.select("date", *columns), where), tuple(columns), where)
    validate_history(frame, source=where, price_columns=[], rate_columns=columns,
                     max_gap_business_days=max_gap_business_days)
    return frame


def _common_calendar(
    calendar: _Series, others: list[tuple[str, _Series]], *, as_of: dt.date | None,
    min_rows: int | None, max_stale_business_days: int,
) -> pl.DataFrame:
    """The calendar series' dates up to ``as_of`` from the first date every series has a
    value on, with each other series' latest value on or before each date. Rules
    ``coverage`` (a series starts too late for ``min_rows`` rows, or after the calendar
    ends), ``stale`` (it ends long before the calendar) and ``calendar``."""
    frame = calendar.frame
    if as_of is not None:
        frame = frame.filter(pl.col("date") <= as_of)
    if frame.height == 0:
        raise MarketDataError(f"{calendar.where}: rule history_too_short: no rows on or"
                              f" before as_of {as_of}")
    dates = frame["date"]
    enough = dates[-min_rows] if min_rows and dates.len() >= min_rows else None
    problems = []
    for name, series in others:
        start = series.frame["date"][0]
        if start > dates[-1] or (enough is not None and start > enough):
            needed = (f"the first of the {min_rows} rows the history needs is {enough}"
                      if enough is not None and start <= dates[-1] else
                      f"the history ends {dates[-1]}")
            problems.append(
                f"{series.where}: column 'date', row 0 ({start}): rule coverage: {name}"
                f" starts {start}, too late: {needed} ({calendar.where} starts {dates[0]})")
        try:
            check_stale(series.frame.filter(pl.col("date") <= dates[-1]), dates[-1],
                        max_stale_business_days=max_stale_business_days, source=series.where)
        except MarketDataError as error:
            problems.extend(error.violations)
    if problems:
        raise MarketDataError(problems)
    frame = frame.filter(pl.col("date") >= max(s.frame["date"][0] for _, s in others))
    for name, series in others:
        if name != "risk_free":
            try:
                check_calendar(frame["date"], series.frame["date"], source=series.where)
            except MarketDataError as error:
                problems.extend(error.violations)
        frame = frame.join_asof(series.frame.select("date", name), on="date",
                                strategy="backward")
    if problems:
        raise MarketDataError(problems)
    return frame
