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
for any :class:`TableReader` (a folder here, a bucket in ``market_sources.s3``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import polars as pl

from dynalloc_dagster.market_sources.base import (
    CURVE_SCHEMA,
    HOLDINGS_SCHEMA,
    SURFACE_SCHEMA,
    MarketInputs,
    empty,
    validate_holdings,
)
from engine.market.validation import (
    MAX_GAP_BUSINESS_DAYS,
    MAX_STALE_BUSINESS_DAYS,
    MarketDataError,
    check_stale,
    validate_history,
    validate_yield_curve,
)

TABLES: tuple[str, ...] = ("equity", "risk_free", "bond", "yield_curve", "vol_surface",
                           "holdings")
REQUIRED: tuple[str, ...] = ("equity", "risk_free")
FORMATS: tuple[str, ...] = ("csv", "parquet")
DATE_FORMAT = "%Y-%m-%d"


class TableReader(Protocol):
    """Where the files are: the names present, their bytes, and how to name them."""

    def names(self) -> set[str]:
        """File names present (no folders), e.g. {"equity.csv", "risk_free.parquet"}."""
        ...

    def read(self, name: str) -> bytes: ...

    def locate(self, name: str) -> str:
        """The file as an error should name it (a path or an s3:// URI)."""
        ...

    @property
    def origin(self) -> str: ...


class FolderReader:
    """Files in a local folder. A file may be a link to another file in the folder; a
    link leading outside it is refused unread (rule ``outside_folder``): an error would
    otherwise show a line of a file nobody meant to hand over."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MarketDataError(f"{self.folder}: rule missing_folder: not a folder")

    def names(self) -> set[str]:
        return {p.name for p in self.folder.iterdir() if p.is_file()}

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
    reader: TableReader, *, as_of: dt.date | None, dividend_yield: float = 0.0,
    max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
    max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS,
) -> MarketInputs:
    """Read, check and align the tables of ``reader``.

    ``as_of`` cuts the history (rows after it are not known yet); ``None`` takes the last
    equity date. Raises MarketDataError listing every violation found in the files.
    """
    present = reader.names()
    found = _find(present, reader)
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
            frames[table] = attempt(lambda t=table, c=columns, r=rates: _dated(
                reader, found[t], c, r, max_gap_business_days))
    curve = attempt(lambda: _curve(reader, found["yield_curve"])) \
        if "yield_curve" in found else empty(CURVE_SCHEMA)
    surface = attempt(lambda: _surface(reader, found["vol_surface"])) \
        if "vol_surface" in found else empty(SURFACE_SCHEMA)
    holdings = attempt(lambda: _holdings(reader, found["holdings"])) \
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
    history = _align(equity, rate, "risk_free", reader.locate(found["risk_free"]),
                     max_stale_business_days)
    if bond is not None:
        history = _align(history, bond, "bond_close", reader.locate(found["bond"]),
                         max_stale_business_days)
    sources = {"history": reader.locate(found["equity"]),
               **{t: reader.locate(found[t]) for t in TABLES if t in found}}
    return MarketInputs(history=history, vol_surface=surface, yield_curve=curve,
                        holdings=holdings, dividend_yield=dividend_yield, as_of=as_of,
                        origin=reader.origin, sources=sources)


def _find(present: set[str], reader: TableReader) -> dict[str, str]:
    found: dict[str, str] = {}
    problems = []
    for table in TABLES:
        names = [f"{table}.{fmt}" for fmt in FORMATS if f"{table}.{fmt}" in present]
        if len(names) > 1:
            problems.append(f"{reader.locate(names[0])}: rule ambiguous_file: both"
                            f" {' and '.join(names)} exist; keep one")
        elif names:
            found[table] = names[0]
        elif table in REQUIRED:
            problems.append(f"{reader.locate(table + '.csv')}: rule missing_file: {table}.csv"
                            f" or {table}.parquet is required")
    if problems:
        raise MarketDataError(problems)
    return found


def _read(reader: TableReader, name: str, columns: tuple[str, ...]) -> pl.DataFrame:
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


def _numbers(frame: pl.DataFrame, columns: tuple[str, ...], where: str) -> pl.DataFrame:
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


def _dates(frame: pl.DataFrame, where: str) -> pl.DataFrame:
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


def _dated(reader: TableReader, name: str, prices: tuple[str, ...], rates: tuple[str, ...],
           max_gap_business_days: int) -> pl.DataFrame:
    """A dated file (equity, risk_free, bond) checked on its own rows."""
    where = reader.locate(name)
    columns = (*prices, *rates)
    frame = _read(reader, name, ("date", *columns)).select("date", *columns)
    frame = _numbers(_dates(frame, where), columns, where)
    validate_history(frame, source=where, price_columns=list(prices) or None,
                     rate_columns=rates, max_gap_business_days=max_gap_business_days)
    return frame


def _align(left: pl.DataFrame, right: pl.DataFrame, column: str, where: str,
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


def _curve(reader: TableReader, name: str) -> pl.DataFrame:
    where = reader.locate(name)
    frame = _read(reader, name, ("tenor_years",))
    rate = next((c for c in ("zero_yield", "par_rate") if c in frame.columns), None)
    if rate is None:
        raise MarketDataError(f"{where}: rule missing_column: zero_yield or par_rate needed;"
                              f" found {', '.join(frame.columns)}")
    columns = ("tenor_years", rate, *(("frequency",) if rate == "par_rate"
                                      and "frequency" in frame.columns else ()))
    frame = _numbers(frame.select(columns), columns, where)
    validate_yield_curve(frame, source=where)
    if "frequency" in frame.columns:
        frame = frame.with_columns(pl.col("frequency").cast(pl.Int64))
    return frame


def _surface(reader: TableReader, name: str) -> pl.DataFrame:
    """The surface in log-moneyness: ln K/F from ``log_moneyness``, ``moneyness`` (K/F)
    or ``strike`` and ``forward``."""
    where = reader.locate(name)
    frame = _read(reader, name, ("expiry_years", "implied_vol"))
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
    frame = _numbers(frame.select(columns), columns, where)
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


def _holdings(reader: TableReader, name: str) -> pl.DataFrame:
    where = reader.locate(name)
    frame = _read(reader, name, ("asset",))
    kind = tuple(c for c in ("units", "weight") if c in frame.columns)
    if len(kind) != 1:
        raise MarketDataError(f"{where}: rule holdings_columns: need exactly one of units,"
                              f" weight; found {', '.join(frame.columns)}")
    frame = _numbers(frame.select("asset", *kind), kind, where)
    frame = frame.with_columns(pl.col("asset").cast(pl.String).str.strip_chars())
    validate_holdings(frame, source=where)
    return frame
