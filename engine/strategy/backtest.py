"""The vol-targeting strategy on real history (an equity index, a risk-free rate, a bond index)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.market.validation import MAX_ABS_RATE
from engine.strategy.config import StrategyConfig, target_weights
from engine.strategy.metrics import METRICS
from engine.strategy.portfolio import Market, run_strategies
from engine.strategy.rolling import trailing_realized_vol
from engine.types import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """``monthly_returns``: date (the month-end the return is earned to),
    portfolio_return (net of costs), equity_weight (set at the previous month-end);
    ``metrics``: each name of engine.strategy.metrics.METRICS -> its single-path value."""

    config: StrategyConfig
    monthly_returns: pl.DataFrame
    metrics: dict[str, float]


def backtest_history(
    dates: Sequence[Any] | pl.Series | np.ndarray,
    close: Sequence[float] | np.ndarray | pl.Series,
    risk_free: Sequence[float] | np.ndarray | pl.Series,
    config: StrategyConfig,
    bond_close: Sequence[float] | np.ndarray | pl.Series | None = None,
) -> BacktestResult:
    """Run ``config`` on a daily history.

    Parameters
    ----------
    dates : trading dates, strictly increasing (date, datetime or ISO strings).
    close : equity index closes (a total-return index for a like-for-like result).
    risk_free : the annualised risk-free rate known on each date (0.03 = 3%).
    config : the strategy.
    bond_close : optional bond index closes; the non-equity part holds it instead of cash.

    Notes
    -----
    Month-ends are the last trading day of each calendar month. The weight set at a
    month-end uses the trailing ``vol_window_months x 21`` daily log returns up to and
    including that day and holds for the next month. The first rebalance is the first
    month-end with a full window. Cash accrues cash_t = cash_{t-1} (1 + rf_{t-1} / 252).
    """
    day = _as_dates(dates)
    equity = _as_levels("close", close, len(day), day)
    cash = _cash_account(risk_free, day)
    alternative = cash if bond_close is None else _as_levels("bond_close", bond_close,
                                                                    len(day), day)
    usable = _rebalance_days(day, config)
    market = Market(equity=equity[None], alternative=alternative[None], cash=cash[None],
                    rebalance_days=usable)
    run = run_strategies(market, [config])
    monthly = pl.DataFrame(
        {
            "date": day.gather(usable[1:]),
            "portfolio_return": run.monthly_returns[0, 0],
            "equity_weight": run.weights[0, 0],
        }
    )
    metrics = {name: float(run.metrics[name][0, 0]) for name in METRICS}
    return BacktestResult(config=config, monthly_returns=monthly, metrics=metrics)


def _cash_account(risk_free: Any, day: pl.Series) -> FloatArray:
    """cash_t = cash_{t-1} (1 + rf_{t-1} / 252), cash_0 = 1, from the annualised decimal
    rate on each day; a rate above MAX_ABS_RATE in absolute value (percent) is refused
    naming its date and row."""
    rate = _as_array("risk_free", risk_free, len(day), day)
    absurd = np.flatnonzero(np.abs(rate) > MAX_ABS_RATE)
    if absurd.size:
        i = int(absurd[0])
        raise ValueError(
            f"risk_free = {float(rate[i])!r} on {day[i]} (row {i}) is above {MAX_ABS_RATE:g} in"
            f" absolute value: rates are annualised decimals (0.03 = 3%), not percent"
        )
    return np.concatenate([[1.0], np.cumprod(1.0 + rate[:-1] / TRADING_DAYS_PER_YEAR)])


def _rebalance_days(day: pl.Series, config: StrategyConfig) -> IntArray:
    """The month-ends with a full vol window before them; at least three (the first
    rebalance and two months after it), else a ValueError naming the window."""
    month_ends = _month_end_indices(day)
    usable = month_ends[month_ends >= config.window_days]
    if len(usable) < 3:
        raise ValueError(
            f"history too short: vol_window_months = {config.vol_window_months} needs"
            f" {config.window_days} trading days before the first rebalance and at least"
            f" two months after it; got {len(day)} days"
        )
    return usable


def _as_dates(dates: Sequence[Any] | pl.Series | np.ndarray) -> pl.Series:
    series = pl.Series("date", dates)
    series = series.str.to_date() if series.dtype == pl.String else series.cast(pl.Date)
    if series.null_count():
        raise ValueError("dates contain missing values")
    if len(series) < 2 or not (series.diff().drop_nulls().dt.total_days() > 0).all():
        raise ValueError("dates must be strictly increasing, with no duplicates")
    return series


def _at(day: pl.Series | None, i: int) -> str:
    return f" on {day[i]} (row {i})" if day is not None else f" at row {i}"


def _as_array(name: str, values: Any, n: int, day: pl.Series | None = None) -> FloatArray:
    array = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values,
                       dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}; expected ({n},) like dates")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} contains NaN or infinite values: {float(array[bad[0]])!r}"
                         f"{_at(day, int(bad[0]))}")
    return array


def _as_levels(name: str, values: Any, n: int, day: pl.Series | None = None) -> FloatArray:
    """Finite positive levels whose daily ratios are finite and positive (a price scale
    that under- or overflows in the ratios is refused)."""
    array = _as_array(name, values, n, day)
    bad = np.flatnonzero(array <= 0)
    if bad.size:
        raise ValueError(f"{name} must be positive: {float(array[bad[0]])!r}"
                         f"{_at(day, int(bad[0]))}")
    bad = np.flatnonzero(array < np.finfo(np.float64).tiny)
    if bad.size:
        raise ValueError(f"{name}: {float(array[bad[0]])!r}{_at(day, int(bad[0]))} is below"
                         f" the smallest normal float; rescale the prices")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ratio = array[1:] / array[:-1]
    bad = np.flatnonzero(~(np.isfinite(ratio) & (ratio > 0)))
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(f"{name}: the price scale gives no finite daily return"
                         f"{_at(day, i)} ({float(array[i - 1])!r} -> {float(array[i])!r})")
    return array


def _month_end_indices(day: pl.Series) -> IntArray:
    """Index of the last trading day of each calendar month."""
    month = day.dt.year() * 12 + day.dt.month()
    last = (month != month.shift(-1)).fill_null(True)
    return np.flatnonzero(last.to_numpy()).astype(np.int64)


def todays_weight(close: Sequence[float] | np.ndarray | pl.Series, config: StrategyConfig) -> float:
    """The equity weight the rule sets on the last day of ``close`` (daily closes,
    oldest first): f(rv) on the trailing ``vol_window_months x 21`` daily log returns."""
    levels = _as_levels("close", close, len(close))
    if len(levels) <= config.window_days:
        raise ValueError(
            f"todays_weight needs more than {config.window_days} closes; got {len(levels)}"
        )
    end = np.array([len(levels) - 1])
    vol = trailing_realized_vol(levels[None], end, config.window_days)
    return float(target_weights(vol, config)[0, 0])
