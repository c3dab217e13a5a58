"""engine.analysis.scoring: the composite objective and the objectives no config meets.

Reference values are worked out by hand below from the Notes of ``violations`` and
``score_configs``, with the default objectives: mandate vol 0.10 with tolerance 0.02
(band [0.08, 0.12]), max drawdown 0.15, VaR95 0.05, CVaR95 0.08, cost budget 20 bp =
0.002 a year, penalty weight 1.
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
# limit but the mandate's vol (it lands on its own 6%); r (own target 15%) realises
# exactly the mandate's 10% vol, far from its own target.
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
        *(f"penalty_{name}" for name in PENALTIES), "penalty", "objective", "feasible",
        "own_target_miss", "rank",
    ]
    assert PENALTIES == ("vol", "drawdown", "var95", "cvar95", "cost")
    # objectives r 1.0 > q 0.5139 > p -1.4778 (below)
    assert scores["config_id"].to_list() == ["r", "q", "p"]
    assert scores["rank"].to_list() == [1, 2, 3]


def test_penalties_by_hand():
    # p, per scenario, v = max(0, x - limit) / limit (vol: outside the band [0.08, 0.12]
    # as a fraction of the edge crossed):
    #   vol        s1 (0.13 - 0.12)/0.12 = 1/12   s2 0.09 in the band           -> 1/12
    #   drawdown   s1 (0.18 - 0.15)/0.15 = 0.2    s2 (0.30 - 0.15)/0.15 = 1.0  -> max 1.0
    #   var95      s1 0 (0.05 at the limit)       s2 (0.06 - 0.05)/0.05 = 0.2  -> 0.2
    #   cvar95     s1 (0.10 - 0.08)/0.08 = 0.25   s2 0                          -> 0.25
    #   cost       s1 (0.003 - 0.002)/0.002 = 0.5 s2 0                          -> 0.5
    #   penalty = 1/12 + 1.0 + 0.2 + 0.25 + 0.5 = 2.0333...
    # q: on its own 6% target, below the mandate's floor: s1 (0.08 - 0.07)/0.08 = 0.125,
    #   s2 (0.08 - 0.05)/0.08 = 0.375 -> 0.375; every other limit met.
    # r: 10% in both scenarios, 5 points off its own 15% target: no penalty (own-target
    #   accuracy is the diagnostic own_target_miss = 0.05).
    scores = _by_id(score_configs(_table(), InvestmentObjectives()))
    expected = {
        "p": {"vol": 1 / 12, "drawdown": 1.0, "var95": 0.2, "cvar95": 0.25, "cost": 0.5},
        "q": {**dict.fromkeys(PENALTIES, 0.0), "vol": 0.375},
        "r": dict.fromkeys(PENALTIES, 0.0),
    }
    for config_id, penalties in expected.items():
        for name, value in penalties.items():
            np.testing.assert_allclose(scores[config_id][f"penalty_{name}"], value, rtol=RTOL,
                                       atol=1e-12, err_msg=f"{config_id} {name}")
    np.testing.assert_allclose(
        [scores[c]["penalty"] for c in "pqr"], [2 + 1 / 30, 0.375, 0.0], rtol=RTOL, atol=1e-12
    )
    assert [scores[c]["feasible"] for c in "pqr"] == [False, False, True]
    # own_target_miss = max_s |vol - own target|: p 0.03 (s1), q 0.01, r 0.05.
    np.testing.assert_allclose([scores[c]["own_target_miss"] for c in "pqr"],
                               [0.03, 0.01, 0.05], rtol=1e-9)


def test_objective_is_robustness_minus_weighted_penalty():
    # best_s among the configs inside the band [0.08, 0.12] in each scenario:
    #   s1: only r (0.10) -> best 0.9: p 1.0/0.9, q 0.8/0.9, r 1
    #   s2: p (0.09) and r (0.10) -> best 0.9: p 0.5/0.9, q 1.0/0.9, r 1
    # Robustness p 5/9 (s2), q 8/9 (s1), r 1 (tie: first scenario s1).
    # objective = robustness - lambda * penalty (penalties 61/30, 0.375, 0).
    robustness = [5 / 9, 8 / 9, 1.0]
    penalty = [61 / 30, 0.375, 0.0]
    for weight in (1.0, 2.0, 0.0):
        scores = _by_id(score_configs(_table(), InvestmentObjectives(penalty_weight=weight)))
        np.testing.assert_allclose([scores[c]["robustness"] for c in "pqr"], robustness,
                                   rtol=RTOL)
        expected = [r - weight * p for r, p in zip(robustness, penalty, strict=True)]
        np.testing.assert_allclose([scores[c]["objective"] for c in "pqr"], expected,
                                   rtol=RTOL, err_msg=f"penalty_weight {weight}")
    scores = _by_id(score_configs(_table(), InvestmentObjectives()))
    assert [scores[c]["worst_scenario"] for c in "pqr"] == ["s2", "s1", "s1"]
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
    ("target", "tolerance", "vol", "expected"),
    [
        (0.10, 0.02, 0.04, 0.5),  # below the floor 0.08: (0.08 - 0.04) / 0.08
        (0.10, 0.02, 0.144, 0.2),  # above the ceiling 0.12: (0.144 - 0.12) / 0.12
        (0.10, 0.02, 0.08, 0.0),  # on the floor
        (0.20, 0.04, 0.10, 0.375),  # floor 0.16: (0.16 - 0.10) / 0.16
        (0.02, 0.05, 0.0, 0.0),  # band [0, 0.07]: a floor of 0 cannot be crossed
    ],
)
def test_vol_penalty_is_judged_against_the_mandate(target, tolerance, vol, expected):
    # own target 0.3 is far from every vol: it changes nothing but own_target_miss.
    row = ("s", "x", 0.30, 1.0, 1.0, vol, 0.10, 0.03, 0.05, 0.001)
    objectives = InvestmentObjectives(target_vol=target, vol_tolerance=tolerance)
    scores = score_configs(_table([row]), objectives)
    np.testing.assert_allclose(scores["penalty_vol"].item(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scores["own_target_miss"].item(), abs(vol - 0.30), rtol=1e-12)


def test_ranking_prefers_the_smaller_miss_of_a_limit_nobody_meets():
    # Mandate 10% vol but every rule is below 8% (an 8%-vol equity, no leverage): the
    # one closer to the floor ranks first, all else equal.
    rows = [("s", "far", 0.05, 1.0, 1.0, 0.04, 0.10, 0.03, 0.05, 0.001),
            ("s", "near", 0.05, 1.0, 1.0, 0.07, 0.10, 0.03, 0.05, 0.001)]
    scores = score_configs(_table(rows), InvestmentObjectives())
    assert scores["config_id"].to_list() == ["near", "far"]
    np.testing.assert_allclose(scores["penalty_vol"].to_numpy(), [0.125, 0.5], rtol=1e-12)


@pytest.mark.parametrize(
    ("field", "column", "value", "limit", "name"),
    [
        ("max_drawdown", 6, 0.25, 0.20, "drawdown"),  # (0.25 - 0.20) / 0.20 = 0.25
        ("max_var95", 7, 0.09, 0.06, "var95"),  # 0.03 / 0.06 = 0.5
        ("max_cvar95", 8, 0.12, 0.10, "cvar95"),  # 0.02 / 0.10 = 0.2
        ("max_cost_bps", 9, 0.004, 25.0, "cost"),  # (0.004 - 0.0025) / 0.0025 = 0.6
        ("vol_tolerance", 5, 0.16, 0.04, "vol"),  # (0.16 - 0.14) / 0.14 = 1/7
    ],
)
def test_each_penalty_reads_its_own_limit(field, column, value, limit, name):
    base = ["s", "x", 0.10, 1.0, 1.0, 0.10, 0.10, 0.03, 0.05, 0.001]
    base[column] = value
    scores = score_configs(_table([tuple(base)]), InvestmentObjectives(**{field: limit}))
    expected = {"drawdown": 0.25, "var95": 0.5, "cvar95": 0.2, "cost": 0.6,
                "vol": 1 / 7}[name]
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
