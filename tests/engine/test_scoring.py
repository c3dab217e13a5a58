"""engine.analysis.scoring: the composite objective and the objectives no config meets.

Reference values are worked out by hand below from the Notes of ``violations`` and
``score_configs``, with the default objectives: max drawdown 0.15, VaR95 0.05, CVaR95
0.08, cost budget 20 bp = 0.002 a year, vol tolerance 0.02, penalty weight 1.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.analysis.scoring import PENALTIES, score_configs, unmet_objectives
from engine.objectives import InvestmentObjectives

RTOL = 1e-12
COLUMNS = ("scenario", "config_id", "target_vol", "sharpe_mean", "sharpe_median",
           "ann_vol_median", "max_drawdown_median", "var95_median", "cvar95_median",
           "cost_drag_median")

# p (own target 10%) violates something in each scenario; q (own target 6%) meets every
# penalised limit; r (own target 15%) realises exactly the mandate's 10% vol.
ROWS = [
    # scenario, id, tv, sharpe mean, median, vol, drawdown, var95, cvar95, cost
    ("s1", "p", 0.10, 1.0, 1.0, 0.13, 0.18, 0.05, 0.10, 0.003),
    ("s2", "p", 0.10, 0.5, 0.5, 0.09, 0.30, 0.06, 0.06, 0.001),
    ("s1", "q", 0.06, 0.8, 0.8, 0.07, 0.10, 0.03, 0.05, 0.001),
    ("s2", "q", 0.06, 1.0, 1.0, 0.05, 0.12, 0.04, 0.07, 0.002),
    ("s1", "r", 0.15, 0.9, 0.9, 0.10, 0.10, 0.03, 0.05, 0.001),
    ("s2", "r", 0.15, 0.9, 0.9, 0.10, 0.10, 0.03, 0.05, 0.001),
]


def _table(rows=ROWS) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=list(COLUMNS), orient="row")


def _by_id(scores: pl.DataFrame) -> dict[str, dict]:
    return {row["config_id"]: row for row in scores.iter_rows(named=True)}


def test_columns_and_order():
    scores = score_configs(_table(), InvestmentObjectives())
    assert scores.columns == [
        "config_id", "robustness", "worst_scenario", "robust",
        *(f"penalty_{name}" for name in PENALTIES), "penalty", "objective", "feasible", "rank",
    ]
    assert PENALTIES == ("drawdown", "var95", "cvar95", "cost", "vol_accuracy")
    # objectives q 0.8 > r -0.6 > p -1.95 (below)
    assert scores["config_id"].to_list() == ["q", "r", "p"]
    assert scores["rank"].to_list() == [1, 2, 3]


def test_penalties_by_hand():
    # p, per scenario, v = max(0, x - limit) / limit:
    #   drawdown   s1 (0.18 - 0.15)/0.15 = 0.2    s2 (0.30 - 0.15)/0.15 = 1.0  -> max 1.0
    #   var95      s1 0 (0.05 at the limit)       s2 (0.06 - 0.05)/0.05 = 0.2  -> 0.2
    #   cvar95     s1 (0.10 - 0.08)/0.08 = 0.25   s2 0                          -> 0.25
    #   cost       s1 (0.003 - 0.002)/0.002 = 0.5 s2 0                          -> 0.5
    #   vol acc.   s1 (|0.13 - 0.10| - 0.02)/0.02 = 0.5   s2 |0.09 - 0.10| = 0.01 -> 0.5
    #   penalty = 1.0 + 0.2 + 0.25 + 0.5 + 0.5 = 2.45
    # r: vol accuracy against its OWN 15% target: (|0.10 - 0.15| - 0.02)/0.02 = 1.5 in
    #   both scenarios, though it hits the mandate's 10% exactly. penalty 1.5.
    # q: every figure within its limit, and |0.07 - 0.06| = |0.05 - 0.06| = 0.01 <= 0.02
    #   from its own target (the mandate's 10% is 0.03 away: no penalty for that).
    scores = _by_id(score_configs(_table(), InvestmentObjectives()))
    expected = {
        "p": {"drawdown": 1.0, "var95": 0.2, "cvar95": 0.25, "cost": 0.5, "vol_accuracy": 0.5},
        "q": dict.fromkeys(PENALTIES, 0.0),
        "r": {**dict.fromkeys(PENALTIES, 0.0), "vol_accuracy": 1.5},
    }
    for config_id, penalties in expected.items():
        for name, value in penalties.items():
            np.testing.assert_allclose(scores[config_id][f"penalty_{name}"], value, rtol=RTOL,
                                       atol=1e-12, err_msg=f"{config_id} {name}")
    np.testing.assert_allclose(
        [scores[c]["penalty"] for c in "pqr"], [2.45, 0.0, 1.5], rtol=RTOL, atol=1e-12
    )
    assert [scores[c]["feasible"] for c in "pqr"] == [False, True, False]


def test_objective_is_robustness_minus_weighted_penalty():
    # Relative Sharpe: s1 best p 1.0 -> p 1, q 0.8, r 0.9; s2 best q 1.0 -> p 0.5, q 1,
    # r 0.9. Robustness p 0.5 (s2), q 0.8 (s1), r 0.9 (tie: first scenario s1).
    # objective = robustness - lambda * penalty.
    for weight, expected in ((1.0, [-1.95, 0.8, -0.6]), (2.0, [-4.4, 0.8, -2.1]),
                             (0.0, [0.5, 0.8, 0.9])):
        scores = _by_id(score_configs(_table(), InvestmentObjectives(penalty_weight=weight)))
        np.testing.assert_allclose([scores[c]["robustness"] for c in "pqr"], [0.5, 0.8, 0.9],
                                   rtol=RTOL)
        np.testing.assert_allclose([scores[c]["objective"] for c in "pqr"], expected,
                                   rtol=RTOL, err_msg=f"penalty_weight {weight}")
    scores = _by_id(score_configs(_table(), InvestmentObjectives()))
    assert [scores[c]["worst_scenario"] for c in "pqr"] == ["s2", "s1", "s1"]
    # robust = robustness >= 0.80, inclusive: q's 1 - 0.2/1 = 0.8 is robust.
    assert [scores[c]["robust"] for c in "pqr"] == [False, True, True]


def test_a_penalty_grows_linearly_with_the_violation():
    # Same config, drawdown 0.18, 0.21, 0.24 over a 0.15 limit: 0.2, 0.4, 0.6.
    rows = [("s", f"d{k}", 0.10, 1.0, 1.0, 0.10, dd, 0.03, 0.05, 0.001)
            for k, dd in enumerate((0.18, 0.21, 0.24))]
    scores = _by_id(score_configs(_table(rows), InvestmentObjectives()))
    np.testing.assert_allclose([scores[f"d{k}"]["penalty_drawdown"] for k in range(3)],
                               [0.2, 0.4, 0.6], rtol=1e-12)
    assert [scores[f"d{k}"]["rank"] for k in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("field", "column", "value", "limit", "name"),
    [
        ("max_drawdown", 6, 0.25, 0.20, "drawdown"),  # (0.25 - 0.20) / 0.20 = 0.25
        ("max_var95", 7, 0.09, 0.06, "var95"),  # 0.03 / 0.06 = 0.5
        ("max_cvar95", 8, 0.12, 0.10, "cvar95"),  # 0.02 / 0.10 = 0.2
        ("max_cost_bps", 9, 0.004, 25.0, "cost"),  # (0.004 - 0.0025) / 0.0025 = 0.6
        ("vol_tolerance", 5, 0.16, 0.04, "vol_accuracy"),  # (0.06 - 0.04) / 0.04 = 0.5
    ],
)
def test_each_penalty_reads_its_own_limit(field, column, value, limit, name):
    base = ["s", "x", 0.10, 1.0, 1.0, 0.10, 0.10, 0.03, 0.05, 0.001]
    base[column] = value
    scores = score_configs(_table([tuple(base)]), InvestmentObjectives(**{field: limit}))
    expected = {"drawdown": 0.25, "var95": 0.5, "cvar95": 0.2, "cost": 0.6,
                "vol_accuracy": 0.5}[name]
    np.testing.assert_allclose(scores[f"penalty_{name}"].item(), expected, rtol=1e-12)
    assert scores["penalty"].item() == pytest.approx(expected, rel=1e-12)


def test_unmet_objectives():
    # Nobody reaches Sharpe 1.5 anywhere. pass_vol: r realises 10% in both scenarios.
    # Own target: q within 0.01 in both. Drawdown, VaR, CVaR, cost: q and r meet them.
    assert unmet_objectives(_table(), InvestmentObjectives()) == ["pass_sharpe"]
    # min Sharpe 0.8: q's medians 0.8 and 1.0 meet it in both scenarios.
    assert unmet_objectives(_table(), InvestmentObjectives(min_sharpe=0.8)) == []
    # drawdown limit 0.05: every config's drawdown is above it somewhere.
    tight = InvestmentObjectives(max_drawdown=0.05, target_vol=0.2)
    assert unmet_objectives(_table(), tight) == ["pass_vol", "pass_sharpe", "pass_drawdown"]


def test_unmet_needs_one_config_passing_in_every_scenario():
    # a passes pass_sharpe in s1 only, b in s2 only: no single config meets it.
    rows = [
        ("s1", "a", 0.10, 2.0, 2.0, 0.10, 0.10, 0.03, 0.05, 0.001),
        ("s2", "a", 0.10, 1.0, 1.0, 0.10, 0.10, 0.03, 0.05, 0.001),
        ("s1", "b", 0.10, 1.0, 1.0, 0.10, 0.10, 0.03, 0.05, 0.001),
        ("s2", "b", 0.10, 2.0, 2.0, 0.10, 0.10, 0.03, 0.05, 0.001),
        # c passes everything but was evaluated in s1 only: it does not count.
        ("s1", "c", 0.10, 2.0, 2.0, 0.10, 0.10, 0.03, 0.05, 0.001),
    ]
    assert unmet_objectives(_table(rows), InvestmentObjectives()) == ["pass_sharpe"]
