"""Calendar and annualisation conventions (one definition each; docs/engine.md).

A year has 252 trading days and 12 months of 21 trading days; on a simulated path a
month-end is every 21st trading day.
"""

from __future__ import annotations

TRADING_DAYS_PER_YEAR = 252
TRADING_DAYS_PER_MONTH = 21
MONTHS_PER_YEAR = 12
DT_DAY = 1.0 / TRADING_DAYS_PER_YEAR
