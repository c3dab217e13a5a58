"""dynalloc_dagster.decision: the mandate status in words and the short decision text."""

from __future__ import annotations

import polars as pl

from dynalloc_dagster.committee.decision import (
    DECISION_MAX_CHARS,
    decision_markdown,
    mandate_summary,
    status_text,
)
from engine.objectives import InvestmentObjectives

COLUMNS = ("scenario", "config_id", "target_vol", "sharpe_median", "ann_vol_median",
           "max_drawdown_median", "var95_median", "cvar95_median", "cost_drag_median")
# Default mandate: vol band 8%-12%, Sharpe >= 1.5 (nobody), drawdown <= 15%.
# a: s1 vol 10%, s2 vol 5% and drawdown 20%. b: vol 14% then 16%.
ROWS = [
    ("s1", "a", 0.10, 0.9, 0.10, 0.10, 0.03, 0.05, 0.001),
    ("s2", "a", 0.10, 0.6, 0.05, 0.20, 0.03, 0.05, 0.001),
    ("s1", "b", 0.15, 0.8, 0.14, 0.10, 0.03, 0.05, 0.001),
    ("s2", "b", 0.15, 0.7, 0.16, 0.10, 0.03, 0.05, 0.001),
]


def _table(rows=ROWS) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=list(COLUMNS), orient="row")


def test_no_rule_meeting_the_mandate_is_said_first_with_each_miss():
    summary = mandate_summary(_table(), InvestmentObjectives(), "a")
    assert (summary.n_meeting, summary.n_scenarios, summary.meets) == (0, 2, False)
    lines = summary.lines()
    assert lines[0].startswith("No evaluated rule meets the mandate in every scenario")
    assert lines[0].endswith("Meets the mandate in 0 of 2 scenarios.")
    assert lines[1:4] == [
        "Misses vol 5.0% in s2 vs band 8.0%-12.0% (missed in 1 of 2).",
        "Misses Sharpe 0.60 in s2 vs min 1.50 (missed in 2 of 2).",
        "Misses max drawdown 20.0% in s2 vs max 15.0% (missed in 1 of 2).",
    ]
    # limits nobody meets, with the best achievable worst-scenario value: vol a's 5.0%
    # (3 points under the floor) beats b's 16.0% (4 over); Sharpe b's 0.70.
    assert lines[4] == (
        "No rule meets: vol band 8.0%-12.0% (best achievable 5.0% in s2, config a); Sharpe"
        " min 1.50 (best achievable 0.70 in s2, config b).")


def test_a_rule_meeting_the_mandate_says_so_alone():
    objectives = InvestmentObjectives(min_sharpe=0.5, max_drawdown=0.25, vol_tolerance=0.06)
    summary = mandate_summary(_table(), objectives, "a")
    assert summary.meets
    assert status_text(summary) == "Meets the mandate in all 2 scenarios."


def test_decision_text_leads_with_the_status_and_stays_under_the_inline_limit():
    text = decision_markdown(rule="inverse vol, target 10.0%, 12m window", config_id="abc",
                             equity_weight=0.25, leg="cash", as_of="2018-11-30",
                             data_source="files market data", status="Meets the mandate.")
    assert text.splitlines()[0] == "**Mandate:** Meets the mandate."
    assert "equity 25.0%, cash 75.0%" in text and "government" not in text
    long = decision_markdown(rule="r", config_id="abc", equity_weight=0.5, leg="bond",
                             as_of="2026-01-01", data_source="d", status="x" * 5000)
    assert len(long) <= DECISION_MAX_CHARS
    assert "equity 50.0%, government bonds 50.0%" in long and "…" in long
