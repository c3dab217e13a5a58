"""Market data from files: CSV or Parquet tables in a folder (or under an S3 prefix).

One file per table, named ``<table>.csv`` or ``<table>.parquet`` (docs/market_data.md):

========== ======== ==========================================================
table      required columns
========== ======== ==========================================================
equity     yes      date, close
risk_free  yes      date, risk_free (annualised decimal)
bond       no       date, bond_close
yield_curve no      tenor_years and zero_yield or par_rate [, frequency]
vol_surface no      expiry_years, implied_vol and log_moneyness, or moneyness
                    (K / F), or strike and forward
holdings   no       asset (equity, bond) and units or weight
========== ======== ==========================================================

Each file is checked on its own first (so an error names the file and its row), then the
risk-free rate and the bond index are aligned to the equity dates: each equity date takes
the latest rate / bond close dated on or before it. :func:`load_tables` does the parsing
for any :class:`~dynalloc_dagster.market_sources.tables.TableReader` (a folder here, a
bucket in ``market_sources.s3``); a portfolio other than the two-asset one reads one file
per series instead (``market_sources.series``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl

from dynalloc_dagster.market_sources.base import (
    CURVE_SCHEMA,
    HOLDINGS_SCHEMA,
    SURFACE_SCHEMA,
    MarketInputs,
    empty,
)
from dynalloc_dagster.market_sources.series import load_portfolio_tables
from dynalloc_dagster.market_sources.tables import (
    TableReader,
    align,
    find_tables,
    read_curve,
    read_dated,
    read_holdings,
    read_surface,
)
from engine.market.validation import (
    MAX_GAP_BUSINESS_DAYS,
    MAX_STALE_BUSINESS_DAYS,
    MarketDataError,
)
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec

TABLES: tuple[str, ...] = ("equity", "risk_free", "bond", "yield_curve", "vol_surface",
                           "holdings")
REQUIRED: tuple[str, ...] = ("equity", "risk_free")


class FolderReader:
    """Files in a local folder. A file may be a link to another file in the folder; a
    link leading outside it is refused unread (rule ``outside_folder``): an error would
    otherwise show a line of a file nobody meant to hand over."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MarketDataError(f"{self.folder}: rule missing_folder: not a folder")

    def names(self, under: str = "") -> set[str]:
        folder = self.folder / under
        if not folder.is_dir():
            return set()
        return {f"{under}/{p.name}" if under else p.name for p in folder.iterdir()
                if p.is_file()}

    def read(self, name: str) -> bytes:
        path = self.folder / name
        if not path.resolve().is_relative_to(self.folder.resolve()):
            raise MarketDataError(f"{path}: rule outside_folder: a link to a file outside"
                                  f" {self.folder}; copy the file into the folder")
        return path.read_bytes()

    def locate(self, name: str) -> str:
        return str(self.folder / name)

    @property
    def origin(self) -> str:
        return str(self.folder.resolve())


def load_tables(
    reader: TableReader, *, as_of: dt.date | None, portfolio: PortfolioSpec = TWO_ASSET,
    dividend_yield: float = 0.0, max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
    max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS, min_rows: int | None = None,
) -> MarketInputs:
    """Read, check and align the tables of ``reader`` for ``portfolio``.

    ``as_of`` cuts the history (rows after it are not known yet); ``None`` takes the last
    (first) equity date. The two-asset default reads the tables above; any other
    portfolio one series per asset (:func:`~dynalloc_dagster.market_sources.series.
    load_portfolio_tables`, which ``min_rows``, the rows the history needs, lets name a
    series that starts too late). Raises MarketDataError listing every violation found
    in the files.
    """
    if portfolio != TWO_ASSET:
        return load_portfolio_tables(
            reader, portfolio, as_of=as_of, dividend_yield=dividend_yield,
            max_gap_business_days=max_gap_business_days,
            max_stale_business_days=max_stale_business_days, min_rows=min_rows)
    present = reader.names()
    found = find_tables(present, reader, TABLES, REQUIRED)
    violations: list[str] = []

    def attempt(step: Callable[[], pl.DataFrame | None]) -> pl.DataFrame | None:
        try:
            return step()
        except MarketDataError as error:
            violations.extend(error.violations)
            return None

    frames: dict[str, pl.DataFrame | None] = {}
    for table, columns, rates in (("equity", ("close",), ()),
                                  ("risk_free", (), ("risk_free",)),
                                  ("bond", ("bond_close",), ())):
        if table in found:
            frames[table] = attempt(lambda t=table, c=columns, r=rates: read_dated(
                reader, found[t], c, r, max_gap_business_days))
    curve = attempt(lambda: read_curve(reader, found["yield_curve"])) \
        if "yield_curve" in found else empty(CURVE_SCHEMA)
    surface = attempt(lambda: read_surface(reader, found["vol_surface"])) \
        if "vol_surface" in found else empty(SURFACE_SCHEMA)
    holdings = attempt(lambda: read_holdings(reader, found["holdings"])) \
        if "holdings" in found else empty(HOLDINGS_SCHEMA)
    if violations or any(frames.get(t) is None for t in REQUIRED):
        raise MarketDataError(violations)
    equity, rate, bond = frames["equity"], frames["risk_free"], frames.get("bond")
    assert equity is not None and rate is not None
    if as_of is not None:
        equity = equity.filter(pl.col("date") <= as_of)
    if equity.height == 0:
        raise MarketDataError(f"{reader.locate(found['equity'])}: rule history_too_short: no"
                              f" rows on or before as_of {as_of}")
    as_of = as_of or equity["date"][-1]
    history = align(equity, rate, "risk_free", reader.locate(found["risk_free"]),
                     max_stale_business_days)
    if bond is not None:
        history = align(history, bond, "bond_close", reader.locate(found["bond"]),
                         max_stale_business_days)
    sources = {"history": reader.locate(found["equity"]),
               **{t: reader.locate(found[t]) for t in TABLES if t in found}}
    return MarketInputs(history=history, vol_surface=surface, yield_curve=curve,
                        holdings=holdings, dividend_yield=dividend_yield, as_of=as_of,
                        origin=reader.origin, sources=sources)


