"""Market data validation: one function per rule, and run-all validators that report every
violation at once.

Each rule raises :class:`MarketDataError` (a ``ValueError``) whose message names the
source (file) when given, the column, the row or date, and the rule, e.g.
``prices.csv: column 'close', row 17 (2020-01-24): rule non_positive_price: value -3.0 <= 0``.
Frames are polars DataFrames with the columns of docs/engine.md ("Market data
validation"). Thresholds live here once: ``MAX_GAP_BUSINESS_DAYS``,
``MAX_STALE_BUSINESS_DAYS``, ``MAX_ABS_DAILY_LOG_RETURN``, ``MAX_ABS_RATE``,
``MAX_IMPLIED_VOL``, ``ARBITRAGE_TOLERANCE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl
from scipy.special import ndtr

from engine.conventions import TRADING_DAYS_PER_MONTH, TRADING_DAYS_PER_YEAR
from engine.market.yield_curve import COUPON_FREQUENCIES
from engine.types import FloatArray

MAX_GAP_BUSINESS_DAYS = 5
"""Default largest number of business days allowed between two consecutive dates."""
MAX_STALE_BUSINESS_DAYS = 5
"""Default largest number of business days between the last date and ``as_of``."""
MAX_ABS_DAILY_LOG_RETURN = 0.5
"""Largest |ln(P_t / P_{t-1})| between two rows of a price series: a move of x1.65 or
/1.65 in a day, twice the worst day of the S&P 500 since 1928 (-22.9% on 1987-10-19, a
log return of -0.26). Beyond it a row is taken for a bad print or a unit change."""
MAX_ABS_RATE = 0.25
"""A rate above 25% a year in absolute value is taken for a percent: the highest short
rate the model's regimes take (engine.market.regimes), so 0.36 written for 0.36% in a
low-rate era is refused instead of clipped."""
MAX_IMPLIED_VOL = 5.0
"""An implied vol above 5 (500% a year) is taken for a percent (20 written for 20%)."""
MIN_CALENDAR_SHARE = 0.9
"""A series of a portfolio quotes on at least this share of the history's dates (the first
equity's). Two exchanges' holiday calendars differ by 5-15 days a year (up to 6% of 252);
a weekly or monthly series, or daily dates shifted by a day, quote on 80% or fewer."""
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


def check_calendar(calendar: pl.Series, own: pl.Series, *, source: str | None = None,
                   column: str = "date", min_share: float = MIN_CALENDAR_SHARE) -> None:
    """Rule ``calendar``: the series dated ``own`` has a value of its own on at least
    ``min_share`` of the ``calendar`` dates; on the others it is carried forward from its
    latest earlier date, so a series on another calendar (weekly, monthly, shifted by a
    day) would show flat days and then a jump."""
    dates = calendar.cast(pl.Date)
    quoted = dates.is_in(own.cast(pl.Date).implode())
    if dates.len() == 0:
        return
    share = float(quoted.mean())  # type: ignore[arg-type]
    if share < min_share:
        first = dates.filter(~quoted)[0]
        raise MarketDataError(
            f"{_where(source, column, None, first)} rule calendar: a value dated on"
            f" {share:.0%} of the history's {dates.len()} dates (at least"
            f" {min_share:.0%} needed; {first} is the first without one): the series is"
            " on another calendar (weekly, monthly, or dates shifted by a day?)"
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
    """Rule ``rate_in_percent``: rates are decimals, |r| <= ``MAX_ABS_RATE`` everywhere."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        values = frame[column].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(np.isfinite(values) & (np.abs(values) > MAX_ABS_RATE))
        if bad.size:
            row = int(bad[0])
            found.append(
                f"{_where(source, column, row, _date_at(frame, row))} rule rate_in_percent:"
                f" {float(values[row])!r} is above {MAX_ABS_RATE:g} in absolute value; rates are"
                f" decimals (0.03 = 3%) and no regime's short rate exceeds {MAX_ABS_RATE:g}"
                f" ({bad.size} such row(s))"
            )
    if found:
        raise MarketDataError(found)


def _log_returns(frame: pl.DataFrame, column: str) -> FloatArray:
    """ln(P_t / P_{t-1}) of a price column; NaN where either price is not positive."""
    values = frame[column].cast(pl.Float64).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
    return np.diff(logs)


def check_jumps(frame: pl.DataFrame, columns: Sequence[str], *,
                max_abs_log_return: float = MAX_ABS_DAILY_LOG_RETURN,
                source: str | None = None) -> None:
    """Rule ``jump``: |ln(P_t / P_{t-1})| <= ``max_abs_log_return`` between consecutive
    rows (a one-day spike of x1000 is a log return of 6.9, then -6.9)."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        r = _log_returns(frame, column)
        bad = np.flatnonzero(np.abs(np.nan_to_num(r)) > max_abs_log_return)
        if bad.size:
            row = int(bad[0]) + 1
            found.append(
                f"{_where(source, column, row, _date_at(frame, row))} rule jump: daily log"
                f" return {float(r[row - 1]):.4g} beyond +-{max_abs_log_return:g}"
                f" ({float(frame[column][row - 1])!r} -> {float(frame[column][row])!r});"
                f" {bad.size} such move(s)"
            )
    if found:
        raise MarketDataError(found)


def check_variance(frame: pl.DataFrame, columns: Sequence[str], *,
                   source: str | None = None) -> None:
    """Rule ``constant_price``: a price series moves (its daily log returns are not all
    zero); a constant series has no variance to calibrate a model to."""
    _require(frame, columns, source)
    found: list[str] = []
    for column in columns:
        r = _log_returns(frame, column)
        if r.size and np.isfinite(r).all() and not np.any(r != 0.0):
            found.append(
                f"{_where(source, column)} rule constant_price: every one of the"
                f" {frame.height} values is {float(frame[column][0])!r}; a price series with"
                " no variance cannot be calibrated"
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


def check_vols_decimal(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rule ``vol_in_percent``: implied vols are decimals, <= ``MAX_IMPLIED_VOL``."""
    _require(surface, SURFACE_COLUMNS, source)
    values = surface["implied_vol"].cast(pl.Float64).to_numpy()
    bad = np.flatnonzero(np.isfinite(values) & (values > MAX_IMPLIED_VOL))
    if bad.size:
        row = int(bad[0])
        raise MarketDataError(
            f"{_where(source, 'implied_vol', row)} rule vol_in_percent: {float(values[row])!r}"
            f" is above {MAX_IMPLIED_VOL:g}; implied vols are decimals (0.2 = 20%)"
            f" ({bad.size} such row(s))"
        )


def check_unique_points(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rule ``duplicate_point``: each (expiry, log-moneyness) is quoted once."""
    _require(surface, SURFACE_COLUMNS, source)
    keys = surface.select("expiry_years", "log_moneyness").with_row_index("_row")
    first = keys.group_by("expiry_years", "log_moneyness").agg(pl.col("_row").min()
                                                               .alias("_first"))
    repeats = keys.join(first, on=["expiry_years", "log_moneyness"]).filter(
        pl.col("_row") != pl.col("_first")).sort("_row")
    if repeats.height:
        row, first_row = int(repeats["_row"][0]), int(repeats["_first"][0])
        raise MarketDataError(
            f"{_where(source, 'log_moneyness', row)} rule duplicate_point: expiry"
            f" {repeats['expiry_years'][0]}, log-moneyness {repeats['log_moneyness'][0]} is"
            f" the same as row {first_row} ({repeats.height} repeated point(s))"
        )


def check_calendar_arbitrage(surface: pl.DataFrame, *, source: str | None = None) -> None:
    """Rule ``calendar_arbitrage``: total implied variance w(k, T) = iv^2 T is
    non-decreasing in T at fixed log-moneyness k = ln(K / F).

    Notes
    -----
    Expiries rarely share a k (a strike grid against forwards that grow with T, or strikes
    set in standard deviations): for every pair of expiries T1 < T2, each node of one is
    compared with the other's w linearly interpolated in k, where the node lies within
    the other's k range. A violation is w(k, T2) < w(k, T1) - ``ARBITRAGE_TOLERANCE``.
    """
    _require(surface, SURFACE_COLUMNS, source)
    frame = surface.with_row_index("_row").with_columns(
        (pl.col("implied_vol") ** 2 * pl.col("expiry_years")).alias("_w")
    ).sort("expiry_years", "log_moneyness")
    slices = [(float(t), g["log_moneyness"].to_numpy(), g["_w"].to_numpy(), g["_row"].to_numpy())
              for (t,), g in frame.group_by("expiry_years", maintain_order=True)]
    found: list[str] = []
    for i, (t1, k1, w1, rows1) in enumerate(slices):
        for t2, k2, w2, rows2 in slices[i + 1:]:
            inside2 = (k2 >= k1[0]) & (k2 <= k1[-1])
            below = np.flatnonzero(inside2 & (w2 < np.interp(k2, k1, w1) - ARBITRAGE_TOLERANCE))
            inside1 = (k1 >= k2[0]) & (k1 <= k2[-1])
            above = np.flatnonzero(inside1 & (w1 > np.interp(k1, k2, w2) + ARBITRAGE_TOLERANCE))
            if below.size:
                j = int(below[0])
                later, earlier = w2[j], float(np.interp(k2[j], k1, w1))
                row, k = int(rows2[j]), k2[j]
            elif above.size:
                j = int(above[0])
                later, earlier = float(np.interp(k1[j], k2, w2)), w1[j]
                row, k = int(rows1[j]), k1[j]
            else:
                continue
            found.append(
                f"{_where(source, 'implied_vol', row)} rule calendar_arbitrage: total variance"
                f" {later:.6g} at expiry {t2:g} is below {earlier:.6g} at expiry {t1:g}"
                f" (log-moneyness {k:g}; linear in k between quoted points)"
            )
            break
        if found:
            break
    if found:
        raise MarketDataError(found)


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
        lambda: check_jumps(frame, prices, source=source),
        lambda: check_variance(frame, prices, source=source),
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
    """Run every vol-surface rule (nan, vol_in_percent, duplicate_point, non_positive_vol,
    calendar and butterfly arbitrage) and raise one MarketDataError listing all
    violations. The arbitrage rules run only on a surface in decimals without repeated
    points (they would misname a unit or a typo)."""
    _require(surface, SURFACE_COLUMNS, source)
    _collect([lambda: check_no_nan(surface, SURFACE_COLUMNS, source=source)])
    _collect([
        lambda: check_vols_decimal(surface, source=source),
        lambda: check_unique_points(surface, source=source),
    ])
    _collect([
        lambda: check_vols_positive(surface, source=source),
        lambda: check_calendar_arbitrage(surface, source=source),
        lambda: check_butterfly_arbitrage(surface, source=source),
    ])


def validate_yield_curve(curve: pl.DataFrame, *, source: str | None = None) -> None:
    """Rules for a curve with tenor_years and zero_yield or par_rate [, frequency]: no NaN,
    tenors positive and strictly increasing (rule ``unsorted_tenors``), rates in decimals,
    each par rate's coupons a year one of ``COUPON_FREQUENCIES`` (rule ``frequency``)."""
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

    def frequencies() -> None:
        if rate != "par_rate" or "frequency" not in curve.columns:
            return
        values = curve["frequency"].cast(pl.Float64).to_list()
        bad = [row for row, f in enumerate(values) if f not in COUPON_FREQUENCIES]
        if bad:
            allowed = ", ".join(str(f) for f in COUPON_FREQUENCIES)
            raise MarketDataError(
                f"{_where(source, 'frequency', bad[0])} rule frequency: {values[bad[0]]!r} is"
                f" not one of {allowed} (coupons a year; {len(bad)} such row(s))")

    _collect([
        lambda: check_no_nan(curve, ["tenor_years", rate], source=source),
        tenors,
        lambda: check_rates_decimal(curve, [rate], source=source),
        frequencies,
    ])
