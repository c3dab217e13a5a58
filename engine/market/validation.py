"""Market data validation: one function per rule, and run-all validators that report every
violation at once.

Each rule raises :class:`MarketDataError` (a ``ValueError``) whose message names the
source (file) when given, the column, the row or date, and the rule, e.g.
``prices.csv: column 'close', row 17 (2020-01-24): rule non_positive_price: value -3.0 <= 0``.
Frames are polars DataFrames with the columns of docs/engine.md ("Market data
validation"). Thresholds live here once: ``MAX_GAP_BUSINESS_DAYS``,
``MAX_STALE_BUSINESS_DAYS``, ``MAX_ABS_RATE``, ``MAX_MEDIAN_ABS_RATE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from scipy.special import ndtr

from engine.conventions import TRADING_DAYS_PER_MONTH, TRADING_DAYS_PER_YEAR

MAX_GAP_BUSINESS_DAYS = 5
"""Default largest number of business days allowed between two consecutive dates."""
MAX_STALE_BUSINESS_DAYS = 5
"""Default largest number of business days between the last date and ``as_of``."""
MAX_ABS_RATE = 1.0
"""A rate above 100% a year in absolute value is taken for a percent."""
MAX_MEDIAN_ABS_RATE = 0.5
"""A median absolute rate above 50% a year is taken for a percent series."""
ARBITRAGE_TOLERANCE = 1e-10
"""Slack of the calendar (total variance) and butterfly (normalised call price) checks."""


class MarketDataError(ValueError):
    """Market data break a rule. ``violations`` lists every message."""

    def __init__(self, violations: str | Sequence[str]) -> None:
        items = [violations] if isinstance(violations, str) else list(violations)
        self.violations: list[str] = items
        super().__init__(items[0] if len(items) == 1 else
                         f"{len(items)} market data violations:\n" + "\n".join(items))


def _where(source: str | None, column: str | None, row: int | None = None,
           date: object | None = None) -> str:
    parts = []
    if source:
        parts.append(f"{source}:")
    if column:
        parts.append(f"column {column!r},")
    if row is not None:
        parts.append(f"row {row}" + (f" ({date})" if date is not None else "") + ":")
    elif date is not None:
        parts.append(f"{date}:")
    return " ".join(parts)


def _date_at(frame: pl.DataFrame, row: int, column: str = "date") -> object | None:
    return frame[column][row] if column in frame.columns else None


def _require(frame: pl.DataFrame, columns: Sequence[str], source: str | None) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MarketDataError(
            f"{_where(source, None)} rule missing_column: column(s) {', '.join(missing)}"
            f" missing; found {', '.join(frame.columns)}".strip()
        )


def check_no_nan(frame: pl.DataFrame, columns: Sequence[str], *,
                 source: str | None = None) -> None:
    """Rule ``nan``: no null, NaN or infinite value in ``columns``."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        values = frame[column].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            found.append(
                f"{_where(source, column, row, _date_at(frame, row))} rule nan: {bad.size}"
                f" missing, NaN or infinite value(s), the first here"
            )
    if found:
        raise MarketDataError(found)


def check_positive(frame: pl.DataFrame, columns: Sequence[str], *,
                   source: str | None = None) -> None:
    """Rule ``non_positive_price``: every value of ``columns`` is > 0."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        values = frame[column].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            row = int(bad[0])
            found.append(
                f"{_where(source, column, row, _date_at(frame, row))} rule non_positive_price:"
                f" value {float(values[row])!r} <= 0 ({bad.size} such row(s))"
            )
    if found:
        raise MarketDataError(found)


def check_dates_sorted_unique(frame: pl.DataFrame, *, source: str | None = None,
                              column: str = "date") -> None:
    """Rules ``unsorted_dates`` and ``duplicate_date``: dates strictly increasing."""
    _require(frame, [column], source)
    dates = frame[column]
    if dates.null_count():
        row = int(np.flatnonzero(dates.is_null().to_numpy())[0])
        raise MarketDataError(f"{_where(source, column, row)} rule nan: missing date")
    days = dates.cast(pl.Date).to_physical().to_numpy().astype(np.int64)
    step = np.diff(days)
    if (step == 0).any():
        row = int(np.flatnonzero(step == 0)[0]) + 1
        raise MarketDataError(
            f"{_where(source, column, row, dates[row])} rule duplicate_date: the date of row"
            f" {row - 1} repeats"
        )
    if (step < 0).any():
        row = int(np.flatnonzero(step < 0)[0]) + 1
        raise MarketDataError(
            f"{_where(source, column, row, dates[row])} rule unsorted_dates: earlier than"
            f" row {row - 1} ({dates[row - 1]}); dates must increase"
        )


def business_days_between(start: dt.date, end: dt.date) -> int:
    """Weekdays d with start < d <= end (numpy.busday_count over (start, end])."""
    return int(np.busday_count(start + dt.timedelta(days=1), end + dt.timedelta(days=1)))


def check_gaps(frame: pl.DataFrame, *, max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
               source: str | None = None, column: str = "date") -> None:
    """Rule ``gap``: consecutive dates at most ``max_gap_business_days`` business days
    (weekdays) apart; holidays count as business days, so 5 allows a week's closure."""
    _require(frame, [column], source)
    dates = frame[column].cast(pl.Date).to_numpy().astype("datetime64[D]")
    gaps = np.busday_count(dates[:-1] + 1, dates[1:] + 1)
    bad = np.flatnonzero(gaps > max_gap_business_days)
    if bad.size:
        row = int(bad[0]) + 1
        raise MarketDataError(
            f"{_where(source, column, row, frame[column][row])} rule gap: {int(gaps[bad[0]])}"
            f" business days after {frame[column][row - 1]} (more than {max_gap_business_days})"
        )


def required_history_rows(longest_window_months: int) -> int:
    """Rows a history needs: the longest window plus a year, 21 m + 252 daily rows."""
    return TRADING_DAYS_PER_MONTH * int(longest_window_months) + TRADING_DAYS_PER_YEAR


def check_history_length(frame: pl.DataFrame, *, min_rows: int,
                         source: str | None = None) -> None:
    """Rule ``history_too_short``: at least ``min_rows`` rows."""
    if frame.height < min_rows:
        first = _date_at(frame, 0) if frame.height else None
        raise MarketDataError(
            f"{_where(source, None, None, first)} rule history_too_short: {frame.height}"
            f" rows, need at least {min_rows} (the longest window plus a year)".strip()
        )


def check_stale(frame: pl.DataFrame, as_of: dt.date, *,
                max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS,
                source: str | None = None, column: str = "date") -> None:
    """Rule ``stale``: the last date is at most ``max_stale_business_days`` business days
    before ``as_of`` (and not after it)."""
    _require(frame, [column], source)
    last = frame[column].cast(pl.Date).max()
    if last is None:
        raise MarketDataError(f"{_where(source, column)} rule stale: no dates")
    if last > as_of:
        raise MarketDataError(
            f"{_where(source, column, frame.height - 1, last)} rule stale: last date is after"
            f" as_of {as_of}"
        )
    lag = business_days_between(last, as_of)
    if lag > max_stale_business_days:
        raise MarketDataError(
            f"{_where(source, column, frame.height - 1, last)} rule stale: last date is {lag}"
            f" business days before as_of {as_of} (more than {max_stale_business_days})"
        )


def check_rates_decimal(frame: pl.DataFrame, columns: Sequence[str], *,
                        source: str | None = None) -> None:
    """Rule ``rate_in_percent``: rates are decimals: |r| <= ``MAX_ABS_RATE`` everywhere and
    median |r| <= ``MAX_MEDIAN_ABS_RATE``."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        values = frame[column].cast(pl.Float64).to_numpy()
        finite = np.isfinite(values)
        bad = np.flatnonzero(finite & (np.abs(values) > MAX_ABS_RATE))
        if bad.size:
            row = int(bad[0])
            found.append(
                f"{_where(source, column, row, _date_at(frame, row))} rule rate_in_percent:"
                f" {float(values[row])!r} is above {MAX_ABS_RATE:g} in absolute value; rates are"
                f" decimals (0.03 = 3%)"
            )
        elif finite.any() and np.median(np.abs(values[finite])) > MAX_MEDIAN_ABS_RATE:
            found.append(
                f"{_where(source, column)} rule rate_in_percent: median |rate|"
                f" {np.median(np.abs(values[finite])):g} above {MAX_MEDIAN_ABS_RATE:g};"
                f" rates are decimals (0.03 = 3%)"
            )
    if found:
        raise MarketDataError(found)


SURFACE_COLUMNS = ("expiry_years", "log_moneyness", "implied_vol")


def check_vols_positive(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rule ``non_positive_vol``: every implied vol and expiry > 0."""
    _require(surface, SURFACE_COLUMNS, source)
    for column in ("implied_vol", "expiry_years"):
        values = surface[column].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            row = int(bad[0])
            raise MarketDataError(
                f"{_where(source, column, row)} rule non_positive_vol: {float(values[row])!r} <= 0"
                f" at expiry {surface['expiry_years'][row]}, log-moneyness"
                f" {surface['log_moneyness'][row]}"
            )


def check_calendar_arbitrage(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rule ``calendar_arbitrage``: total implied variance w = iv^2 T is non-decreasing in T
    at every fixed log-moneyness k = ln(K / F) present at several expiries."""
    _require(surface, SURFACE_COLUMNS, source)
    frame = surface.with_row_index("_row").with_columns(
        (pl.col("implied_vol") ** 2 * pl.col("expiry_years")).alias("_w")
    ).sort("log_moneyness", "expiry_years")
    for (k,), group in frame.group_by("log_moneyness", maintain_order=True):
        w = group["_w"].to_numpy()
        drop = np.flatnonzero(np.diff(w) < -ARBITRAGE_TOLERANCE)
        if drop.size:
            i = int(drop[0])
            row = int(group["_row"][i + 1])
            raise MarketDataError(
                f"{_where(source, 'implied_vol', row)} rule calendar_arbitrage: total variance"
                f" {w[i + 1]:.6g} at expiry {group['expiry_years'][i + 1]} is below {w[i]:.6g}"
                f" at expiry {group['expiry_years'][i]} (log-moneyness {k})"
            )


def check_butterfly_arbitrage(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rules ``butterfly_arbitrage`` and ``call_spread_arbitrage``: at each expiry the
    undiscounted call price in forward units, c(K) = N(d1) - K N(d2) with K = e^k,
    d1,2 = -k / s +- s / 2, s = iv sqrt(T), is non-increasing and convex in K
    (a non-negative risk-neutral density, Breeden and Litzenberger 1978)."""
    _require(surface, SURFACE_COLUMNS, source)
    frame = surface.with_row_index("_row").sort("expiry_years", "log_moneyness")
    found: list[str] = []
    for (expiry,), group in frame.group_by("expiry_years", maintain_order=True):
        k = group["log_moneyness"].to_numpy()
        s = group["implied_vol"].to_numpy() * np.sqrt(group["expiry_years"].to_numpy())
        strike = np.exp(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            call = ndtr(-k / s + 0.5 * s) - strike * ndtr(-k / s - 0.5 * s)
        slope = np.diff(call) / np.diff(strike)
        rising = np.flatnonzero(slope > ARBITRAGE_TOLERANCE)
        if rising.size:
            i = int(rising[0]) + 1
            found.append(
                f"{_where(source, 'implied_vol', int(group['_row'][i]))} rule"
                f" call_spread_arbitrage: call price rises with strike at expiry {expiry},"
                f" log-moneyness {k[i]}"
            )
        concave = np.flatnonzero(np.diff(slope) < -ARBITRAGE_TOLERANCE)
        if concave.size:
            i = int(concave[0]) + 1  # the middle strike of the butterfly
            found.append(
                f"{_where(source, 'implied_vol', int(group['_row'][i]))} rule"
                f" butterfly_arbitrage: call prices not convex in strike (negative density)"
                f" at expiry {expiry}, log-moneyness {k[i]}"
            )
    if found:
        raise MarketDataError(found)


def _collect(checks: Sequence[Callable[[], None]]) -> None:
    violations: list[str] = []
    for check in checks:
        try:
            check()
        except MarketDataError as err:
            violations.extend(err.violations)
    if violations:
        raise MarketDataError(violations)


def validate_history(
    frame: pl.DataFrame,
    *,
    as_of: dt.date | None = None,
    longest_window_months: int | None = None,
    max_gap_business_days: int = MAX_GAP_BUSINESS_DAYS,
    max_stale_business_days: int = MAX_STALE_BUSINESS_DAYS,
    source: str | None = None,
    price_columns: Sequence[str] | None = None,
    rate_columns: Sequence[str] = ("risk_free",),
) -> None:
    """Run every history rule and raise one MarketDataError listing all violations.

    Columns: date, close, risk_free and optionally bond_close (price columns default to
    close and bond_close when present). ``as_of`` enables the stale check,
    ``longest_window_months`` the length check.
    """
    _require(frame, ["date", *rate_columns], source)
    prices = list(price_columns or [c for c in ("close", "bond_close") if c in frame.columns])
    _require(frame, prices, source)
    checks: list[Callable[[], None]] = [
        lambda: check_no_nan(frame, [*prices, *rate_columns], source=source),
        lambda: check_positive(frame, prices, source=source),
        lambda: check_dates_sorted_unique(frame, source=source),
        lambda: check_rates_decimal(frame, rate_columns, source=source),
    ]
    if frame["date"].null_count() == 0:
        checks.append(lambda: check_gaps(frame, max_gap_business_days=max_gap_business_days,
                                         source=source))
    if longest_window_months is not None:
        checks.append(lambda: check_history_length(
            frame, min_rows=required_history_rows(longest_window_months), source=source))
    if as_of is not None:
        checks.append(lambda: check_stale(frame, as_of,
                                          max_stale_business_days=max_stale_business_days,
                                          source=source))
    _collect(checks)


def validate_vol_surface(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Run every vol-surface rule (nan, non_positive_vol, calendar and butterfly
    arbitrage) and raise one MarketDataError listing all violations."""
    _require(surface, SURFACE_COLUMNS, source)
    _collect([lambda: check_no_nan(surface, SURFACE_COLUMNS, source=source)])
    _collect([
        lambda: check_vols_positive(surface, source=source),
        lambda: check_calendar_arbitrage(surface, source=source),
        lambda: check_butterfly_arbitrage(surface, source=source),
    ])


def validate_yield_curve(curve: pl.DataFrame, *, source: str | None = None) -> None:
    """Rules for a curve with tenor_years and zero_yield or par_rate: no NaN, tenors
    positive and strictly increasing (rule ``unsorted_tenors``), rates in decimals."""
    rate = "zero_yield" if "zero_yield" in curve.columns else "par_rate"
    _require(curve, ["tenor_years", rate], source)

    def tenors() -> None:
        values = curve["tenor_years"].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(values <= 0)
        if bad.size:
            raise MarketDataError(f"{_where(source, 'tenor_years', int(bad[0]))} rule"
                                  f" unsorted_tenors: tenor {float(values[bad[0]])!r} <= 0")
        step = np.flatnonzero(np.diff(values) <= 0)
        if step.size:
            row = int(step[0]) + 1
            raise MarketDataError(
                f"{_where(source, 'tenor_years', row)} rule unsorted_tenors: tenor"
                f" {float(values[row])!r} not above {float(values[row - 1])!r}"
            )

    _collect([
        lambda: check_no_nan(curve, ["tenor_years", rate], source=source),
        tenors,
        lambda: check_rates_decimal(curve, [rate], source=source),
    ])
