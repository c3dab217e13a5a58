"""engine.market.validation: each rule on a small hand-made frame; messages name the
source, column, row/date and rule; run-all validators report every violation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.market.validation import (
    MarketDataError,
    check_butterfly_arbitrage,
    check_calendar,
    check_calendar_arbitrage,
    check_dates_sorted_unique,
    check_gaps,
    check_history_length,
    check_jumps,
    check_no_nan,
    check_positive,
    check_rates_decimal,
    check_stale,
    check_variance,
    check_vols_positive,
    required_history_rows,
    validate_history,
    validate_vol_surface,
    validate_yield_curve,
)

D = dt.date


def _history(**overrides: list) -> pl.DataFrame:
    data = {
        "date": [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4), D(2024, 1, 5), D(2024, 1, 8)],
        "close": [100.0, 101.0, 99.5, 100.2, 100.9],
        "risk_free": [0.05, 0.05, 0.051, 0.05, 0.05],
    }
    return pl.DataFrame(data | overrides)


def test_clean_history_passes() -> None:
    validate_history(_history(), as_of=D(2024, 1, 9), source="prices.csv")


def test_nan_names_column_row_date_and_rule() -> None:
    frame = _history(close=[100.0, 101.0, float("nan"), 100.2, 100.9])
    with pytest.raises(MarketDataError,
                       match=r"prices\.csv: column 'close', row 2 \(2024-01-04\): rule nan"):
        check_no_nan(frame, ["close"], source="prices.csv")


def test_null_counts_as_nan() -> None:
    frame = _history(close=[100.0, None, 99.5, 100.2, 100.9])
    with pytest.raises(MarketDataError, match=r"row 1 \(2024-01-03\): rule nan"):
        check_no_nan(frame, ["close"])


def test_non_positive_price() -> None:
    frame = _history(close=[100.0, 101.0, 99.5, 0.0, 100.9])
    with pytest.raises(MarketDataError,
                       match=r"row 3 \(2024-01-05\): rule non_positive_price: value 0\.0"):
        check_positive(frame, ["close"])


def test_duplicate_and_unsorted_dates() -> None:
    dup = _history(date=[D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 3), D(2024, 1, 5),
                         D(2024, 1, 8)])
    with pytest.raises(MarketDataError, match=r"row 2 \(2024-01-03\): rule duplicate_date"):
        check_dates_sorted_unique(dup)
    rev = _history(date=[D(2024, 1, 2), D(2024, 1, 4), D(2024, 1, 3), D(2024, 1, 5),
                         D(2024, 1, 8)])
    with pytest.raises(MarketDataError, match=r"row 2 \(2024-01-03\): rule unsorted_dates"):
        check_dates_sorted_unique(rev)


def test_gap_counts_business_days() -> None:
    # Fri 5 Jan -> Fri 12 Jan: 5 business days, allowed at N = 5, refused at N = 4
    frame = _history(date=[D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4), D(2024, 1, 5),
                           D(2024, 1, 12)])
    check_gaps(frame, max_gap_business_days=5)
    with pytest.raises(MarketDataError,
                       match=r"row 4 \(2024-01-12\): rule gap: 5 business days after 2024-01-05"):
        check_gaps(frame, max_gap_business_days=4)


def test_history_length() -> None:
    assert required_history_rows(24) == 24 * 21 + 252
    with pytest.raises(MarketDataError, match="rule history_too_short: 5 rows, need at least 6"):
        check_history_length(_history(), min_rows=6)
    check_history_length(_history(), min_rows=5)


def test_stale_data() -> None:
    # last date Mon 8 Jan; as_of Mon 15 Jan is 5 business days later (allowed), Tue 16 is 6
    check_stale(_history(), D(2024, 1, 15))
    with pytest.raises(MarketDataError,
                       match=r"row 4 \(2024-01-08\): rule stale: last date is 6 business days"):
        check_stale(_history(), D(2024, 1, 16))
    with pytest.raises(MarketDataError, match="after as_of"):
        check_stale(_history(), D(2024, 1, 5))


def test_rates_in_percent() -> None:
    with pytest.raises(MarketDataError,
                       match=r"column 'risk_free', row 0 \(2024-01-02\): rule rate_in_percent"):
        check_rates_decimal(_history(risk_free=[5.0, 5.0, 5.1, 5.0, 5.0]), ["risk_free"])
    # percent rates of a low-rate period: 0.36 for 0.36%, every value below 1
    with pytest.raises(MarketDataError, match=r"row 3 \(2024-01-05\): rule rate_in_percent:"
                                              r" 0.36 is above 0.25"):
        check_rates_decimal(_history(risk_free=[0.1, 0.12, 0.2, 0.36, 0.3]), ["risk_free"])
    check_rates_decimal(_history(risk_free=[-0.005, 0.0, 0.02, 0.25, 0.03]), ["risk_free"])


def test_jump_names_the_date_of_the_move() -> None:
    """0.5 is the bound: a move of exactly e^0.5 passes (ln(e^0.5) - ln 1 is exactly 0.5
    in floating point), a little more does not."""
    edge = float(np.exp(0.5))
    assert np.log(edge) - np.log(1.0) == 0.5
    check_jumps(_history(close=[1.0, edge, edge, edge, edge]), ["close"])
    spike = _history(close=[100.0, 101.0, 101000.0, 100.2, 100.9])
    with pytest.raises(MarketDataError, match=r"column 'close', row 2 \(2024-01-04\): rule"
                                              r" jump: daily log return 6.908 beyond \+-0.5"):
        check_jumps(spike, ["close"], source="prices.csv")
    with pytest.raises(MarketDataError, match="rule jump"):
        check_jumps(_history(close=[1.0, 1.0, edge * 1.001, edge * 1.001, edge * 1.001]), ["close"])


def test_calendar_share_of_dates_a_series_quotes_on() -> None:
    # 20 weekdays; a series missing 2 of them quotes on 90% (passes at the 90% floor), one
    # missing 3 on 85% (refused, naming the first date without a value)
    calendar = pl.Series([D(2024, 1, 1) + dt.timedelta(days=i) for i in range(28)
                          if (D(2024, 1, 1) + dt.timedelta(days=i)).weekday() < 5])
    assert calendar.len() == 20
    check_calendar(calendar, calendar.filter(~calendar.is_in([D(2024, 1, 3), D(2024, 1, 10)])))
    own = calendar.filter(~calendar.is_in([D(2024, 1, 3), D(2024, 1, 10), D(2024, 1, 17)]))
    with pytest.raises(MarketDataError, match=r"series/x.csv: column 'date', 2024-01-03:"
                       r" rule calendar: a value dated on 85% of the history's 20 dates"):
        check_calendar(calendar, own, source="series/x.csv")
    weekly = calendar.filter(calendar.dt.weekday() == 5)
    with pytest.raises(MarketDataError, match="on 20% of"):
        check_calendar(calendar, weekly)


def test_constant_price_has_no_variance() -> None:
    with pytest.raises(MarketDataError, match=r"column 'close', rule constant_price: every one"
                                              r" of the 5 values is 100\.0"):
        check_variance(_history(close=[100.0] * 5), ["close"])
    check_variance(_history(close=[100.0] * 4 + [100.01]), ["close"])


def test_validate_history_reports_every_violation() -> None:
    frame = _history(close=[100.0, float("nan"), -1.0, 100.2, 100.9],
                     risk_free=[3.0, 3.0, 3.0, 3.0, 3.0])
    with pytest.raises(MarketDataError) as info:
        validate_history(frame, as_of=D(2024, 2, 1), longest_window_months=1,
                         source="prices.csv")
    rules = [v.split("rule ")[1].split(":")[0] for v in info.value.violations]
    assert rules == ["nan", "non_positive_price", "rate_in_percent", "history_too_short",
                     "stale"]
    assert all(v.startswith("prices.csv:") for v in info.value.violations)
    assert "5 market data violations" in str(info.value)


def _surface(vols: dict[float, list[float]], ks: list[float]) -> pl.DataFrame:
    rows = [(t, k, v) for t, vs in vols.items() for k, v in zip(ks, vs, strict=True)]
    return pl.DataFrame(rows, schema=["expiry_years", "log_moneyness", "implied_vol"],
                        orient="row")


KS = [-0.2, -0.1, 0.0, 0.1, 0.2]


def test_clean_surface_passes() -> None:
    validate_vol_surface(_surface({0.25: [0.25, 0.22, 0.2, 0.19, 0.19],
                                   1.0: [0.24, 0.22, 0.2, 0.19, 0.185]}, KS))


def test_negative_vol() -> None:
    surface = _surface({0.5: [0.2, 0.2, -0.01, 0.2, 0.2]}, KS)
    with pytest.raises(MarketDataError, match=r"row 2: rule non_positive_vol: -0\.01"):
        check_vols_positive(surface, source="surface.csv")


def test_calendar_arbitrage() -> None:
    # at k = 0: w(0.25) = 0.3^2 x 0.25 = 0.0225 > w(0.5) = 0.2^2 x 0.5 = 0.02
    surface = _surface({0.25: [0.3] * 5, 0.5: [0.3, 0.3, 0.2, 0.3, 0.3]}, KS)
    with pytest.raises(MarketDataError, match=r"row 7: rule calendar_arbitrage: total variance"
                                              r" 0\.02 at expiry 0\.5 is below 0\.0225"):
        check_calendar_arbitrage(surface)
    # a flat vol grows total variance with T: no violation
    check_calendar_arbitrage(_surface({0.25: [0.3] * 5, 0.5: [0.3] * 5}, KS))


def test_calendar_arbitrage_between_different_strikes_interpolates_in_k() -> None:
    """No k is shared: the 0.5y point at k = 0.05 (w = 0.2^2 x 0.5 = 0.02) is compared with
    the 0.25y w interpolated between k = 0 and 0.1 (0.3^2 x 0.25 = 0.0225)."""
    early = [(0.25, k, 0.3) for k in KS]
    late = [(0.5, k + 0.05, v) for k, v in zip(KS, [0.3, 0.3, 0.2, 0.3, 0.3], strict=True)]
    surface = pl.DataFrame(early + late, schema=["expiry_years", "log_moneyness",
                                                 "implied_vol"], orient="row")
    with pytest.raises(MarketDataError, match=r"row 7: rule calendar_arbitrage: total variance"
                                              r" 0\.02 at expiry 0\.5 is below 0\.0225 at"
                                              r" expiry 0\.25 \(log-moneyness 0\.05"):
        check_calendar_arbitrage(surface)
    # the earlier expiry's node inside the later one's range counts too
    reverse = pl.DataFrame([(0.25, 0.05, 0.5), *late[:2], (0.5, 0.1, 0.3)],
                           schema=["expiry_years", "log_moneyness", "implied_vol"],
                           orient="row")
    with pytest.raises(MarketDataError, match=r"row 0: rule calendar_arbitrage"):
        check_calendar_arbitrage(reverse)


def test_butterfly_arbitrage() -> None:
    # a vol spike at k = 0 makes the call price locally concave in the strike
    spike = _surface({0.25: [0.2, 0.2, 0.6, 0.2, 0.2]}, KS)
    with pytest.raises(MarketDataError, match=r"rule (butterfly|call_spread)_arbitrage"):
        check_butterfly_arbitrage(spike)
    # a dip at k = 0 gives a negative butterfly
    dip = _surface({0.25: [0.3, 0.3, 0.05, 0.3, 0.3]}, KS)
    with pytest.raises(MarketDataError,
                       match=r"row 1: rule butterfly_arbitrage.*expiry 0\.25, log-moneyness -0\.1"):
        check_butterfly_arbitrage(dip)


def test_validate_vol_surface_reports_every_violation() -> None:
    surface = _surface({0.25: [0.3, 0.3, 0.05, 0.3, 0.3], 0.5: [0.3, 0.3, 0.3, 0.3, -0.1]}, KS)
    with pytest.raises(MarketDataError) as info:
        validate_vol_surface(surface, source="surface.csv")
    text = str(info.value)
    assert "non_positive_vol" in text and "butterfly_arbitrage" in text


def test_yield_curve_rules() -> None:
    validate_yield_curve(pl.DataFrame({"tenor_years": [0.5, 1.0, 2.0],
                                       "zero_yield": [0.03, 0.031, 0.032]}))
    bad = pl.DataFrame({"tenor_years": [1.0, 0.5, 2.0], "par_rate": [3.0, np.nan, 3.2]})
    with pytest.raises(MarketDataError) as info:
        validate_yield_curve(bad, source="curve.csv")
    rules = [v.split("rule ")[1].split(":")[0] for v in info.value.violations]
    assert rules == ["nan", "unsorted_tenors", "rate_in_percent"]
