"""engine.analysis.robustness on small hand-made evaluation tables.

Every reference value is worked out by hand in the comments from the formulas in the
module's Notes (min-max normalisation, min over scenarios, eta^2, the stop rule), or
from a plain-Python reimplementation of eta^2 (``_eta_squared``).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.analysis.robustness import (
    SENSITIVITY_PARAMETERS,
    best_per_scenario,
    convergence,
    interaction_table,
    normalised_scores,
    parameter_sensitivity,
    robustness_scores,
)

RTOL = 1e-12


def _table(rows: list[tuple[str, str, float]], metric: str = "sharpe_mean") -> pl.DataFrame:
    scenario, config_id, value = zip(*rows, strict=True)
    return pl.DataFrame(
        {"scenario": scenario, "config_id": config_id, metric: np.array(value, dtype=float)}
    )


# Two scenarios x three configs. In "bear" every Sharpe is negative.
#   bear: a -0.9 (worst), b -0.3 (best), c -0.5  -> spread 0.6
#   base: a  1.2 (best),  b  0.8 (worst), c 1.0  -> spread 0.4
HAND = _table(
    [
        ("bear", "a", -0.9),
        ("bear", "b", -0.3),
        ("bear", "c", -0.5),
        ("base", "a", 1.2),
        ("base", "b", 0.8),
        ("base", "c", 1.0),
    ]
)


def test_best_per_scenario_hand_example():
    best = best_per_scenario(HAND).sort("scenario")
    assert best.columns == ["scenario", "config_id", "best_sharpe_mean"]
    assert best["scenario"].to_list() == ["base", "bear"]
    assert best["config_id"].to_list() == ["a", "b"]
    np.testing.assert_allclose(best["best_sharpe_mean"].to_numpy(), [1.2, -0.3], rtol=RTOL)


def test_best_per_scenario_breaks_ties_by_lowest_config_id_and_names_the_metric():
    table = _table([("s", "z", 0.5), ("s", "m", 0.5), ("s", "q", 0.1)], metric="ann_return_mean")
    best = best_per_scenario(table, metric="ann_return_mean")
    assert best.to_dicts() == [{"scenario": "s", "config_id": "m", "best_ann_return_mean": 0.5}]


def test_normalised_scores_map_best_to_one_and_worst_to_zero_whatever_the_sign():
    scores = normalised_scores(HAND).sort("scenario", "config_id")
    assert scores.columns == ["scenario", "config_id", "sharpe_mean", "normalised_score"]
    # base: a (1.2-0.8)/0.4 = 1, b 0, c (1.0-0.8)/0.4 = 0.5
    # bear: a 0, b 1, c (-0.5+0.9)/0.6 = 2/3
    np.testing.assert_allclose(
        scores["normalised_score"].to_numpy(), [1.0, 0.0, 0.5, 0.0, 1.0, 2.0 / 3.0], rtol=RTOL
    )


def test_normalised_scores_of_a_tied_scenario_are_all_one():
    scores = normalised_scores(_table([("s", "a", 0.7), ("s", "b", 0.7)]))
    assert scores["normalised_score"].to_list() == [1.0, 1.0]


def test_robustness_scores_hand_example():
    # min over scenarios: a min(0 bear, 1 base) = 0 (bear); b min(1, 0) = 0 (base);
    # c min(2/3, 0.5) = 0.5 (base). Rank: c, then the 0-0 tie by config_id: a, b.
    table = robustness_scores(HAND)
    assert table.columns == [
        "config_id",
        "robustness_score",
        "worst_scenario",
        "n_scenarios",
        "robust",
        "rank",
    ]
    assert table["config_id"].to_list() == ["c", "a", "b"]
    np.testing.assert_allclose(table["robustness_score"].to_numpy(), [0.5, 0.0, 0.0], rtol=RTOL)
    assert table["worst_scenario"].to_list() == ["base", "bear", "base"]
    assert table["n_scenarios"].to_list() == [2, 2, 2]
    assert table["rank"].to_list() == [1, 2, 3]
    assert table["robust"].to_list() == [False, False, False]


def test_robust_flag_is_inclusive_at_the_threshold():
    # Scenario s1 spans [0, 1], so each config's score is its metric; s2 ties everywhere
    # (score 1). x scores exactly 0.8 = (0.8 - 0) / (1 - 0), z just below it.
    table = _table(
        [
            ("s1", "w", 0.0),
            ("s1", "x", 0.8),
            ("s1", "y", 1.0),
            ("s1", "z", 0.7999999),
            *[("s2", c, 2.0) for c in "wxyz"],
        ]
    )
    scores = robustness_scores(table)
    assert scores["config_id"].to_list() == ["y", "x", "z", "w"]
    np.testing.assert_allclose(
        scores["robustness_score"].to_numpy(), [1.0, 0.8, 0.7999999, 0.0], rtol=RTOL
    )
    assert scores["worst_scenario"].to_list() == ["s1", "s1", "s1", "s1"]
    assert scores["robust"].to_list() == [True, True, False, False]
    assert robustness_scores(table, threshold=0.9)["robust"].to_list() == [
        True,
        False,
        False,
        False,
    ]


def test_worst_scenario_ties_go_to_the_first_scenario_name():
    # Config a is the worst (score 0) in both scenarios.
    table = _table([("s2", "a", 0.0), ("s2", "b", 1.0), ("s1", "a", 0.0), ("s1", "b", 1.0)])
    scores = robustness_scores(table)
    assert scores.filter(pl.col("config_id") == "a")["worst_scenario"].item() == "s1"


def test_configs_missing_from_a_scenario_are_left_out():
    table = HAND.vstack(_table([("bull", "a", 0.3), ("bull", "b", 0.1)]))
    scores = robustness_scores(table)
    # c has no bull row. bull: a 1, b 0. a: min(0, 1, 1) = 0; b: min(1, 0, 0) = 0.
    assert scores["config_id"].to_list() == ["a", "b"]
    assert scores["n_scenarios"].to_list() == [3, 3]


def test_undefined_metrics_are_never_best_nor_robust():
    # A NaN Sharpe (zero excess-return std on every path) is undefined, not large.
    table = _table(
        [
            ("s1", "a", 1.0),
            ("s1", "b", math.nan),
            ("s1", "c", 0.5),
            ("s2", "a", 0.2),
            ("s2", "b", 0.3),
            ("s2", "c", 0.1),
        ]
    )
    best = best_per_scenario(table).sort("scenario")
    assert best["config_id"].to_list() == ["a", "b"]
    scores = normalised_scores(table).sort("scenario", "config_id")
    # s1 over a and c only: a 1, c 0; s2: a 0.5, b 1, c 0.
    assert scores["normalised_score"].to_list()[:3] == [1.0, None, 0.0]
    np.testing.assert_allclose(
        scores["normalised_score"].to_numpy()[3:], [0.5, 1.0, 0.0], rtol=RTOL
    )
    robust = robustness_scores(table)
    assert robust["config_id"].to_list() == ["a", "c"]
    np.testing.assert_allclose(robust["robustness_score"].to_numpy(), [0.5, 0.0], rtol=RTOL)


# --- parameter sensitivity -------------------------------------------------------------

FNS = ("inverse_vol", "inverse_vol_squared", "linear", "sigmoid")
TV_LEVELS = (0.06, 0.09, 0.12, 0.15, 0.18)


def _design() -> pl.DataFrame:
    """A 4 x 5 full factorial of weight_fn x target_vol, 20 rows.

    Row i has weight_fn FNS[i % 4] and target_vol TV_LEVELS[i // 4]. risk_aversion has
    20 distinct values in 5 tight groups of 4 rows, one group per target_vol level, so
    its 5 quantile bins are the target_vol levels. tc_bps takes 5 values by i % 5: rows
    i = c, c + 5, c + 10, c + 15 have the four weight functions once each.
    vol_window_months is constant.
    """
    i = np.arange(20)
    return pl.DataFrame(
        {
            "scenario": ["s"] * 20,
            "config_id": [f"c{k:02d}" for k in i],
            "target_vol": [TV_LEVELS[k // 4] for k in i],
            "weight_fn": [FNS[k % 4] for k in i],
            "vol_window_months": [12] * 20,
            "risk_aversion": (i // 4) * 1.0 + (i % 4) * 0.01 + 0.5,
            "tc_bps": (i % 5) * 2.0,
        }
    )


def _eta_squared(levels: list, values: np.ndarray) -> float:
    """Plain eta^2 = sum_g n_g (mean_g - mean)^2 / sum (m - mean)^2."""
    grand = float(np.mean(values))
    total = float(np.sum((values - grand) ** 2))
    groups: dict[object, list[float]] = {}
    for level, value in zip(levels, values, strict=True):
        groups.setdefault(level, []).append(float(value))
    between = sum(len(g) * (np.mean(g) - grand) ** 2 for g in groups.values())
    return between / total


def _shares(result: pl.DataFrame, scenario: str) -> dict[str, float]:
    rows = result.filter(pl.col("scenario") == scenario)
    return dict(zip(rows["parameter"], rows["main_effect_share"], strict=True))


def test_metric_driven_by_weight_fn_only():
    design = _design()
    a = {"inverse_vol": 0.0, "inverse_vol_squared": 1.0, "linear": 2.0, "sigmoid": 3.0}
    table = design.with_columns(pl.col("weight_fn").replace_strict(a).alias("sharpe_mean"))
    result = parameter_sensitivity(table)
    shares = _shares(result, "s")
    assert set(shares) == set(SENSITIVITY_PARAMETERS)
    np.testing.assert_allclose(shares["weight_fn"], 1.0, rtol=RTOL)
    # Every other parameter's levels hold each weight function equally often, so their
    # level means all equal the grand mean: eta^2 = 0.
    for parameter in ("target_vol", "vol_window_months", "risk_aversion", "tc_bps"):
        np.testing.assert_allclose(shares[parameter], 0.0, atol=1e-12)
    assert result["parameter"][0] == "weight_fn"


def test_additive_metric_splits_variance_by_main_effects():
    # m = a(weight_fn) + b(target_vol) on a balanced factorial: eta^2 of each factor is
    # its population variance over the total. a = 0, 1, 2, 3 -> Var 1.25;
    # b = 0, 0.5, 1, 1.5, 2 -> Var 0.5; total 1.75. Shares 5/7 and 2/7; risk_aversion's
    # bins coincide with the target_vol levels, so it also shows 2/7 (confounded).
    design = _design()
    a = dict(zip(FNS, [0.0, 1.0, 2.0, 3.0], strict=True))
    b = dict(zip(TV_LEVELS, [0.0, 0.5, 1.0, 1.5, 2.0], strict=True))
    metric = np.array(
        [a[f] + b[t] for f, t in zip(design["weight_fn"], design["target_vol"], strict=True)]
    )
    table = design.with_columns(pl.Series("sharpe_mean", metric))
    shares = _shares(parameter_sensitivity(table), "s")
    np.testing.assert_allclose(shares["weight_fn"], 5.0 / 7.0, rtol=RTOL)
    np.testing.assert_allclose(shares["target_vol"], 2.0 / 7.0, rtol=RTOL)
    np.testing.assert_allclose(shares["risk_aversion"], 2.0 / 7.0, rtol=RTOL)
    np.testing.assert_allclose(shares["vol_window_months"], 0.0, atol=1e-12)
    # tc_bps levels (i % 5) are unbalanced over target_vol: plain eta^2 as the reference.
    tc_levels = design["tc_bps"].to_list()
    np.testing.assert_allclose(shares["tc_bps"], _eta_squared(tc_levels, metric), rtol=RTOL)
    assert 0.0 < shares["tc_bps"] < 1.0


def test_sensitivity_is_per_scenario_and_sorted():
    design = _design()
    a = dict(zip(FNS, [0.0, 1.0, 2.0, 3.0], strict=True))
    by_fn = design.with_columns(pl.col("weight_fn").replace_strict(a).alias("sharpe_mean"))
    by_tv = design.with_columns(scenario=pl.lit("t"), sharpe_mean=pl.col("target_vol") * 10.0)
    result = parameter_sensitivity(pl.concat([by_fn, by_tv]))
    assert result.columns == ["scenario", "parameter", "main_effect_share"]
    assert result.height == 2 * len(SENSITIVITY_PARAMETERS)
    assert result["scenario"].to_list() == ["s"] * 5 + ["t"] * 5
    for scenario in ("s", "t"):
        shares = result.filter(pl.col("scenario") == scenario)["main_effect_share"]
        assert shares.to_list() == sorted(shares.to_list(), reverse=True)
    np.testing.assert_allclose(_shares(result, "t")["target_vol"], 1.0, rtol=RTOL)
    np.testing.assert_allclose(_shares(result, "t")["weight_fn"], 0.0, atol=1e-12)


def test_constant_metric_has_no_sensitivity():
    table = _design().with_columns(sharpe_mean=pl.lit(0.4))
    shares = parameter_sensitivity(table)["main_effect_share"].to_list()
    assert shares == [0.0] * len(SENSITIVITY_PARAMETERS)


# --- interaction table -----------------------------------------------------------------


def test_interaction_table_counts_and_means():
    # Bands [6, 12) "6-11m", [12, 18) "12-17m", [18, 24] "18-24m".
    rows = [
        ("linear", 6, 1.0),
        ("linear", 11, 3.0),
        ("linear", 12, 5.0),
        ("linear", 24, 7.0),
        ("sigmoid", 17, 2.0),
        ("sigmoid", 18, 4.0),
        ("sigmoid", 18, 8.0),
    ]
    fn, window, value = zip(*rows, strict=True)
    table = pl.DataFrame(
        {
            "scenario": ["s"] * len(rows),
            "config_id": [f"c{k}" for k in range(len(rows))],
            "weight_fn": fn,
            "vol_window_months": window,
            "sharpe_mean": value,
        }
    )
    result = interaction_table(table)
    assert result.columns == [
        "scenario",
        "weight_fn",
        "vol_window_band",
        "mean_sharpe_mean",
        "n_configs",
    ]
    got = {
        (r["weight_fn"], r["vol_window_band"]): (r["mean_sharpe_mean"], r["n_configs"])
        for r in result.iter_rows(named=True)
    }
    assert got == {
        ("linear", "6-11m"): (2.0, 2),
        ("linear", "12-17m"): (5.0, 1),
        ("linear", "18-24m"): (7.0, 1),
        ("sigmoid", "12-17m"): (2.0, 1),
        ("sigmoid", "18-24m"): (6.0, 2),
    }
    assert result["n_configs"].sum() == len(rows)


# --- convergence -----------------------------------------------------------------------


def test_convergence_stops_at_the_first_small_improvement_over_the_window():
    # window 3, tolerance 1%. best (1-based): 1, 2, 2.5, 2.6, 2.7, 2.7, 2.8.
    # i = 4: 2.6 - 1.0 = 1.6 >= 0.010; i = 5: 2.7 - 2.0 = 0.7 >= 0.020;
    # i = 6: 2.7 - 2.5 = 0.2 >= 0.025; i = 7: 2.8 - 2.6 = 0.2 >= 0.026 -> no stop yet.
    # Add a flat tail: i = 8 best 2.8, best_5 = 2.7: 0.1 >= 0.027; i = 9: best_6 = 2.7:
    # 0.1 >= 0.027; i = 10: best_7 = 2.8: 0 < 0.028 -> stop at 10.
    scores = [1.0, 2.0, 2.5, 2.6, 2.7, 1.0, 2.8, 2.0, 2.8, 2.805]
    table, stop = convergence(scores, window=3, tolerance=0.01)
    assert stop == 10
    assert table.columns == ["iteration", "score", "best_score", "converged"]
    assert table["iteration"].to_list() == list(range(1, 11))
    np.testing.assert_allclose(
        table["best_score"].to_numpy(),
        [1.0, 2.0, 2.5, 2.6, 2.7, 2.7, 2.8, 2.8, 2.8, 2.805],
        rtol=RTOL,
    )
    assert table["converged"].to_list() == [False] * 9 + [True]


def test_convergence_fires_as_soon_as_the_window_allows():
    # Flat scores: the first comparison is iteration window + 1 (best_4 vs best_1).
    table, stop = convergence([1.0] * 6, window=3, tolerance=0.01)
    assert stop == 4
    assert table["converged"].to_list() == [False, False, False, True, True, True]


def test_convergence_relative_to_a_negative_best():
    # best -1.0 then -0.995: improvement 0.005 < 0.01 * |-1.0| -> stops at iteration 3.
    _, stop = convergence([-1.0, -2.0, -0.995], window=2, tolerance=0.01)
    assert stop == 3


def test_convergence_never_fires():
    # Each step improves by 10%, far above 1%; and a sequence no longer than the window.
    scores = 1.1 ** np.arange(30)
    table, stop = convergence(scores, window=5, tolerance=0.01)
    assert stop is None
    assert not table["converged"].any()
    assert convergence([1.0, 1.0, 1.0], window=3)[1] is None


@pytest.mark.parametrize("window", [1, 20])
def test_convergence_table_has_one_row_per_score(window):
    table, _ = convergence(np.linspace(0.0, 1.0, 25), window=window)
    assert table.height == 25
