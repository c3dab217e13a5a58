"""The grounding check: every number of a narrative found in the tables, within rounding."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from dynalloc_dagster.bedrock.grounding import check_grounding, extract_numbers
from dynalloc_dagster.bedrock.narrative import ReportTables


def test_a_made_up_number_is_caught_and_listed(tables: ReportTables) -> None:
    text = (
        "The recommended rule targets 10.5% vol with robustness 0.87; in the bear regime"
        " its median-path Sharpe is 0.25 and its drawdown would stay below 9.3%."
        " Expect an annual return of 7.4%."
    )
    result = check_grounding(text, tables)
    assert result.numbers_checked == 5
    assert result.unmatched == ["9.3%", "7.4%"]
    assert not result.grounded


@pytest.mark.parametrize(
    ("shown", "grounded"),
    [
        ("12.1%", True),     # max_drawdown_median 0.1211
        ("12%", True),       # 0.1211 to no decimals
        ("12.2%", False),    # 12.11 is not within 0.05 of 12.2
        ("0.1211", True),
        ("0.12", True),
        ("0.1212", False),
        ("1.09", True),      # sharpe_median 1.0876
        ("1.0876", True),
        ("1.1", True),
        ("1.08", False),
        ("0.8734", True),    # robustness
        ("87.3%", True),
        ("87.4%", False),
    ],
)
def test_rounding_to_the_digits_shown(tables: ReportTables, shown: str, grounded: bool) -> None:
    assert check_grounding(f"A figure of {shown} here.", tables).grounded is grounded


@pytest.mark.parametrize(
    ("shown", "grounded"),
    [
        ("0.63", True),    # best_sharpe_mean 0.6321 as a decimal
        ("63.2%", True),   # and as a percentage
        ("0.63%", False),  # a percentage is the decimal times 100, not the decimal
        ("63.2", False),   # a plain number is not a percentage
        ("10.46%", True),  # target_vol 0.1046
        ("10 bps", True),  # assumed_tc_bps / tc_bps
        ("20bps", True),   # max_cost_bps
        ("15 bps", False),
        ("80 percent", True),  # robustness_threshold
    ],
)
def test_percent_decimal_and_bps(tables: ReportTables, shown: str, grounded: bool) -> None:
    assert check_grounding(f"We see {shown} there.", tables).grounded is grounded


@pytest.mark.parametrize(
    ("text", "grounded"),
    [
        ("The worst mean Sharpe in bear is -0.04.", True),
        ("The worst mean Sharpe in bear is \u22120.04.", True),
        ("The worst mean Sharpe in bear is 0.04.", False),
        ("Robustness of the last config: -0.13.", True),
        ("Windows of 7-24 months.", False),
        ("Windows of 9-24 months.", True),
    ],
)
def test_signs_must_agree_and_ranges_are_two_numbers(
    tables: ReportTables, text: str, grounded: bool
) -> None:
    assert check_grounding(text, tables).grounded is grounded


def test_counts_ranks_and_windows_are_grounded(tables: ReportTables) -> None:
    text = (
        "We evaluated 4 configs in 2 rounds across 3 scenarios; the rule ranked 1 uses a"
        " 12-month window; 2 configs are robust and 0 meet every objective in bear."
    )
    result = check_grounding(text, tables)
    assert result.numbers_checked == 7
    assert result.grounded


def test_counts_beyond_the_tables_are_not(tables: ReportTables) -> None:
    assert check_grounding("We evaluated 40 configs.", tables).unmatched == ["40"]


def test_dates_markers_ids_and_words_are_not_checked(tables: ReportTables) -> None:
    text = (
        "## 7. Executive summary\n"
        "7. As of 2031-07-19 the rule `a3f9c01b2e` holds equity.\n"
        "8) Rule 0123456789 trails it; VaR95 and CVaR95 are reported.\n"
        "   9. Model v7 wrote this on 2031-07-19T08:15:00Z.\n"
        "- 10.5% is its target.\n"
    )
    result = check_grounding(text, tables)
    assert (result.numbers_checked, result.unmatched) == (1, [])


def test_numbers_inside_band_labels_and_column_names_are_grounded(
    tables: ReportTables,
) -> None:
    banded = dataclasses.replace(
        tables, parameter_sensitivity=tables.parameter_sensitivity.with_columns(
            level=pl.lit("19-23m"), cvar97_median=pl.lit(0.1))
    )
    assert check_grounding("Windows of 19-23 months; the 97% CVaR.", banded).grounded
    assert not check_grounding("Windows of 19-23 months.", tables).grounded


def test_thousands_separators_and_multipliers() -> None:
    numbers = list(extract_numbers("Costs of 1,234.5 bps, a 1.5x move and -2,000 paths."))
    assert [(n.text, n.value, n.decimals, n.unit) for n in numbers] == [
        ("1,234.5 bps", 1234.5, 1, "bps"),
        ("1.5x", 1.5, 1, "plain"),
        ("-2,000", -2000.0, 0, "plain"),
    ]


def test_each_unmatched_number_is_listed_once(tables: ReportTables) -> None:
    result = check_grounding("A 7.4% gain, then 7.4% again, then 3.3.", tables)
    assert result.numbers_checked == 3
    assert result.unmatched == ["7.4%", "3.3"]
