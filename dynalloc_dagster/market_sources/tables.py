"""Parsing and checking the market tables of a :class:`TableReader`, whatever the layout.

Each function reads one file, checks it on its own rows (so an error names the file, its
column and row or date) and returns a typed table; :func:`align` puts a dated table on
another's calendar. ``market_sources.files`` assembles the two-asset study's tables,
``market_sources.series`` a portfolio's.
"""

from __future__ import annotations

import io
from typing import Protocol

import polars as pl

from dynalloc_dagster.market_sources.base import (
    ASSETS,
    SURFACE_SCHEMA,
    validate_holdings,
)
from engine.market.validation import (
    MarketDataError,
    check_stale,
    validate_history,
    validate_yield_curve,
)

FORMATS: tuple[str, ...] = ("csv", "parquet")
DATE_FORMAT = "%Y-%m-%d"


class TableReader(Protocol):
    """Where the files are: the names present, their bytes, and how to name them."""

    def names(self, under: str = "") -> set[str]:
        """Files directly in the folder ``under`` ("" the top), named from the top (no
        folders), e.g. {"equity.csv", "risk_free.parquet"} or {"series/us_equity.csv"}."""
        ...

    def read(self, name: str) -> bytes: ...

    def locate(self, name: str) -> str:
        """The file as an error should name it (a path or an s3:// URI)."""
        ...

    @property
    def origin(self) -> str: ...


def find_tables(present: set[str], reader: TableReader, tables: tuple[str, ...],
                required: tuple[str, ...], *, problems: list[str] | None = None
                ) -> dict[str, str]:
    """Table name -> its file among ``present`` (``<table>.csv`` or ``.parquet``); rules
    ``ambiguous_file`` (both exist) and ``missing_file`` (one of ``required`` absent),
    raised together, or appended to ``problems`` when given (the tables found are then
    returned all the same)."""
    found: dict[str, str] = {}
    collect = problems is not None
    problems = [] if problems is None else problems
    for table in tables:
        names = [f"{table}.{fmt}" for fmt in FORMATS if f"{table}.{fmt}" in present]
        if len(names) > 1:
            problems.append(f"{reader.locate(names[0])}: rule ambiguous_file: both"
                            f" {' and '.join(names)} exist; keep one")
        elif names:
            found[table] = names[0]
        elif table in required:
            problems.append(f"{reader.locate(table + '.csv')}: rule missing_file: {table}.csv"
                            f" or {table}.parquet is required")
    if problems and not collect:
        raise MarketDataError(problems)
    return found


def read_table(reader: TableReader, name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """The file's table with ``columns`` (other columns ignored); CSV cells as text."""
    where = reader.locate(name)
    data = reader.read(name)
    is_csv = not name.endswith(".parquet")
    try:
        frame = (pl.read_csv(io.BytesIO(data), infer_schema_length=0) if is_csv
                 else pl.read_parquet(io.BytesIO(data)))
    except Exception as error:
        raise MarketDataError((is_csv and _csv_format(data, where))
                              or f"{where}: rule unreadable: {error}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MarketDataError((is_csv and _csv_format(data, where))
                              or f"{where}: rule missing_column: column(s)"
                              f" {', '.join(missing)} missing; found {', '.join(frame.columns)}")
    return frame


def _csv_format(data: bytes, where: str) -> str | None:
    """Rule ``csv_format``: what a CSV in another locale looks like and what is expected,
    or None when the file does not look like one (a header without commas but with ';'
    or tabs; a row with more fields than the header)."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return None
    expected = "expected comma-separated with '.' decimals, e.g. 2020-01-02,3.5"
    header = lines[0]
    for separator, label in ((";", "';'-separated"), ("\t", "tab-separated")):
        if separator in header and "," not in header:
            return f"{where}: rule csv_format: the header is {label}; {expected}"
    wide = next((row for row, line in enumerate(lines[1:])
                 if line.count(",") > header.count(",")), None)
    if wide is not None:
        return (f"{where}: rule csv_format: row {wide} has more fields than the header"
                f" ({header.count(',') + 1}): a decimal comma?; {expected}")
    return None


def numbers(frame: pl.DataFrame, columns: tuple[str, ...], where: str) -> pl.DataFrame:
    """Cast ``columns`` to Float64; a cell that is not a number is an error naming its row
    (empty cells become null, which the ``nan`` rule reports with its date)."""
    problems = []
    for column in columns:
        raw = frame[column]
        text = raw.cast(pl.String).str.strip_chars() if raw.dtype == pl.String else None
        cast = (text.replace("", None) if text is not None else raw).cast(pl.Float64,
                                                                          strict=False)
        bad = (cast.is_null() & raw.is_not_null()
               & (text.ne("") if text is not None else True)).arg_true()
        if len(bad):
            row = int(bad[0])
            problems.append(f"{where}: column {column!r}, row {row}: rule not_a_number:"
                            f" {raw[row]!r}")
        frame = frame.with_columns(cast.alias(column))
    if problems:
        raise MarketDataError(problems)
    return frame


def parse_dates(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    raw = frame["date"]
    if raw.dtype == pl.String:
        parsed = raw.str.strip_chars().str.to_date(DATE_FORMAT, strict=False)
        bad = (parsed.is_null() & raw.is_not_null()).arg_true()
        if len(bad):
            row = int(bad[0])
            raise MarketDataError(f"{where}: column 'date', row {row}: rule date_format:"
                                  f" {raw[row]!r} is not YYYY-MM-DD")
    elif isinstance(raw.dtype, pl.Datetime):
        parsed = raw.dt.date()  # a zoned timestamp's date in its own zone, not UTC's
    elif raw.dtype == pl.Date:
        parsed = raw
    else:
        raise MarketDataError(f"{where}: column 'date': rule date_format: type {raw.dtype}"
                              " is not a date or YYYY-MM-DD text")
    return frame.with_columns(parsed.alias("date"))


def read_dated(reader: TableReader, name: str, prices: tuple[str, ...],
               rates: tuple[str, ...], max_gap_business_days: int) -> pl.DataFrame:
    """A dated file (equity, risk_free, bond, a series) checked on its own rows."""
    where = reader.locate(name)
    columns = (*prices, *rates)
    frame = read_table(reader, name, ("date", *columns)).select("date", *columns)
    frame = numbers(parse_dates(frame, where), columns, where)
    validate_history(frame, source=where, price_columns=list(prices) or None,
                     rate_columns=rates, max_gap_business_days=max_gap_business_days)
    return frame


def align(left: pl.DataFrame, right: pl.DataFrame, column: str, where: str,
          max_stale_business_days: int) -> pl.DataFrame:
    """``left`` with ``right``'s ``column`` as known on each of its dates (the latest
    value dated on or before it). Rules: ``coverage`` (left starts before right) and
    ``stale`` (right ends long before left)."""
    first = right["date"][0]
    if left["date"][0] < first:
        raise MarketDataError(f"{where}: column 'date', row 0 ({first}): rule coverage: starts"
                              f" after the equity history ({left['date'][0]}); no {column}"
                              " for the first dates")
    right = right.filter(pl.col("date") <= left["date"][-1])
    check_stale(right, left["date"][-1], max_stale_business_days=max_stale_business_days,
                source=where)
    return left.join_asof(right.select("date", column), on="date", strategy="backward")


def read_curve(reader: TableReader, name: str) -> pl.DataFrame:
    where = reader.locate(name)
    frame = read_table(reader, name, ("tenor_years",))
    rate = next((c for c in ("zero_yield", "par_rate") if c in frame.columns), None)
    if rate is None:
        raise MarketDataError(f"{where}: rule missing_column: zero_yield or par_rate needed;"
                              f" found {', '.join(frame.columns)}")
    columns = ("tenor_years", rate, *(("frequency",) if rate == "par_rate"
                                      and "frequency" in frame.columns else ()))
    frame = numbers(frame.select(columns), columns, where)
    validate_yield_curve(frame, source=where)
    if "frequency" in frame.columns:
        frame = frame.with_columns(pl.col("frequency").cast(pl.Int64))
    return frame


def read_surface(reader: TableReader, name: str) -> pl.DataFrame:
    """The surface in log-moneyness: ln K/F from ``log_moneyness``, ``moneyness`` (K/F)
    or ``strike`` and ``forward``."""
    where = reader.locate(name)
    frame = read_table(reader, name, ("expiry_years", "implied_vol"))
    if "log_moneyness" in frame.columns:
        given = ("log_moneyness",)
    elif "moneyness" in frame.columns:
        given = ("moneyness",)
    elif {"strike", "forward"} <= set(frame.columns):
        given = ("strike", "forward")
    else:
        raise MarketDataError(f"{where}: rule missing_column: log_moneyness, moneyness, or"
                              f" strike and forward needed; found {', '.join(frame.columns)}")
    columns = ("expiry_years", *given, "implied_vol")
    frame = numbers(frame.select(columns), columns, where)
    for column in given:
        bad = (frame[column] <= 0).arg_true() if column != "log_moneyness" else []
        if len(bad):
            row = int(bad[0])
            raise MarketDataError(f"{where}: column {column!r}, row {row}: rule"
                                  f" non_positive_price: {frame[column][row]!r} <= 0")
    if given == ("moneyness",):
        frame = frame.with_columns(pl.col("moneyness").log().alias("log_moneyness"))
    elif given == ("strike", "forward"):
        frame = frame.with_columns((pl.col("strike") / pl.col("forward")).log()
                                   .alias("log_moneyness"))
    return frame.select(list(SURFACE_SCHEMA))


def read_holdings(reader: TableReader, name: str,
                  assets: tuple[str, ...] = ASSETS) -> pl.DataFrame:
    """Holdings naming ``assets`` (the two-asset study's by default)."""
    where = reader.locate(name)
    frame = read_table(reader, name, ("asset",))
    kind = tuple(c for c in ("units", "weight") if c in frame.columns)
    if len(kind) != 1:
        raise MarketDataError(f"{where}: rule holdings_columns: need exactly one of units,"
                              f" weight; found {', '.join(frame.columns)}")
    frame = numbers(frame.select("asset", *kind), kind, where)
    frame = frame.with_columns(pl.col("asset").cast(pl.String).str.strip_chars())
    validate_holdings(frame, source=where, assets=assets)
    return frame
