"""engine.analysis.robustness on small hand-made evaluation tables.

Every reference value is worked out by hand in the comments from the module's Notes:
r = 1 - (best_s - m) / |best_s| per scenario, robustness = min over scenarios of r.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.analysis.robustness import (
    BEST_FLOOR,
    best_per_scenario,
    relative_scores,
    robustness_scores,
)

RTOL = 1e-12


def _table(rows: list[tuple[str, str, float]], metric: str = "sharpe_mean") -> pl.DataFrame:
    scenario, config_id, value = zip(*rows, strict=True)
    return pl.DataFrame(
        {"scenario": scenario, "config_id": config_id, metric: np.array(value, dtype=float)}
    )


# Two scenarios x three configs. In "bear" every Sharpe is negative.
#   bear: a -0.9, b -0.3 (best), c -0.5   -> |best| = 0.3
#   base: a  1.2 (best), b 0.8, c 1.0    -> |best| = 1.2
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


def test_relative_scores_hand_example_including_an_all_negative_scenario():
    scores = relative_scores(HAND)
    assert scores.columns == [
        "scenario", "config_id", "sharpe_mean", "best_sharpe_mean", "best_within_band",
        "relative_score",
    ]
    assert not scores["best_within_band"].any()
    # Input order is kept.
    assert scores["config_id"].to_list() == ["a", "b", "c", "a", "b", "c"]
    np.testing.assert_allclose(
        scores["best_sharpe_mean"].to_numpy(), [-0.3] * 3 + [1.2] * 3, rtol=RTOL
    )
    # bear: a 1 - (-0.3 + 0.9)/0.3 = -1; b 1; c 1 - (-0.3 + 0.5)/0.3 = 1/3.
    # base: a 1; b 1 - 0.4/1.2 = 2/3 (= 0.8/1.2); c 1 - 0.2/1.2 = 5/6 (= 1.0/1.2).
    np.testing.assert_allclose(
        scores["relative_score"].to_numpy(),
        [-1.0, 1.0, 1.0 / 3.0, 1.0, 2.0 / 3.0, 5.0 / 6.0],
        rtol=RTOL,
    )


def test_relative_score_is_the_share_of_a_positive_best():
    # r = m / best when best > 0: keeping 95% of the best scores 0.95, whatever the worst
    # config in the sample (a min-max score would give (1.9 + 5) / 7 = 0.986 here).
    table = _table([("s", "best", 2.0), ("s", "keeps95", 1.9), ("s", "awful", -5.0)])
    scores = dict(zip(*relative_scores(table).select("config_id", "relative_score")
                      .get_columns(), strict=True))
    np.testing.assert_allclose(scores["keeps95"], 0.95, rtol=RTOL)
    np.testing.assert_allclose(scores["awful"], -2.5, rtol=RTOL)  # 1 - 7/2
    np.testing.assert_allclose(scores["best"], 1.0, rtol=RTOL)


def test_a_zero_best_uses_the_floor_and_keeps_the_order():
    # best_s = 0: the best configs score 1; the others 1 - (0 - m) / 1e-12, finite and
    # still ordered by m.
    table = _table([("s", "zero", 0.0), ("s", "tie", 0.0), ("s", "x", -0.1), ("s", "y", -0.2)])
    scores = relative_scores(table)["relative_score"].to_numpy()
    np.testing.assert_allclose(
        scores, [1.0, 1.0, 1.0 - 0.1 / BEST_FLOOR, 1.0 - 0.2 / BEST_FLOOR], rtol=RTOL
    )
    assert np.isfinite(scores).all()


def test_robustness_scores_hand_example():
    # min over scenarios: a min(-1, 1) = -1 (bear); b min(1, 2/3) = 2/3 (base);
    # c min(1/3, 5/6) = 1/3 (bear). Rank b, c, a.
    table = robustness_scores(HAND, threshold=0.8)
    assert table.columns == [
        "config_id", "robustness", "worst_scenario", "n_scenarios", "robust", "rank",
    ]
    assert table["config_id"].to_list() == ["b", "c", "a"]
    np.testing.assert_allclose(
        table["robustness"].to_numpy(), [2.0 / 3.0, 1.0 / 3.0, -1.0], rtol=RTOL
    )
    assert table["worst_scenario"].to_list() == ["base", "bear", "bear"]
    assert table["n_scenarios"].to_list() == [2, 2, 2]
    assert table["rank"].to_list() == [1, 2, 3]
    assert table["robust"].to_list() == [False, False, False]
    # The threshold is the caller's (InvestmentObjectives.robustness_threshold).
    assert robustness_scores(HAND, threshold=0.6)["robust"].to_list() == [True, False, False]


def test_robust_flag_is_inclusive_at_the_threshold():
    # s1's best is 1.0, so each config's r is its metric: x exactly 1 - 0.2/1 = 0.8,
    # z 0.7999999 just below. s2 ties everywhere (r = 1).
    table = _table(
        [
            ("s1", "w", 0.0),
            ("s1", "x", 0.8),
            ("s1", "y", 1.0),
            ("s1", "z", 0.7999999),
            *[("s2", c, 2.0) for c in "wxyz"],
        ]
    )
    scores = robustness_scores(table, threshold=0.8)
    assert scores["config_id"].to_list() == ["y", "x", "z", "w"]
    np.testing.assert_allclose(
        scores["robustness"].to_numpy(), [1.0, 0.8, 0.7999999, 0.0], rtol=RTOL
    )
    assert scores["worst_scenario"].to_list() == ["s1", "s1", "s1", "s1"]
    assert scores["robust"].to_list() == [True, True, False, False]
    assert robustness_scores(table, threshold=0.9)["robust"].to_list() == [
        True, False, False, False,
    ]


def test_worst_scenario_ties_go_to_the_first_scenario_name():
    # Config a scores 1 - (1 - 0.5)/1 = 0.5 in both scenarios.
    table = _table([("s2", "a", 0.5), ("s2", "b", 1.0), ("s1", "a", 0.5), ("s1", "b", 1.0)])
    scores = robustness_scores(table, threshold=0.8)
    assert scores.filter(pl.col("config_id") == "a")["worst_scenario"].item() == "s1"


def test_configs_missing_from_a_scenario_are_left_out():
    table = HAND.vstack(_table([("bull", "a", 0.3), ("bull", "b", 0.1)]))
    scores = robustness_scores(table, threshold=0.8)
    # c has no bull row. bull: a 1, b 0.1/0.3 = 1/3. a: min(-1, 1, 1) = -1;
    # b: min(1, 2/3, 1/3) = 1/3.
    assert scores["config_id"].to_list() == ["b", "a"]
    np.testing.assert_allclose(scores["robustness"].to_numpy(), [1.0 / 3.0, -1.0], rtol=RTOL)
    assert scores["n_scenarios"].to_list() == [3, 3]


def test_undefined_metrics_are_never_best_nor_robust():
    # A NaN Sharpe (zero excess-return std on every path) is undefined, not large.
    table = _table(
        [
            ("s1", "a", 1.0),
            ("s1", "b", math.nan),
            ("s1", "c", 0.5),
            ("s2", "a", 0.2),
            ("s2", "b", 0.4),
            ("s2", "c", 0.1),
        ]
    )
    best = best_per_scenario(table).sort("scenario")
    assert best["config_id"].to_list() == ["a", "b"]
    scores = relative_scores(table)
    # s1 over a and c only (best 1.0): a 1, b null, c 0.5; s2 (best 0.4): a 0.5, b 1, c 0.25.
    assert scores["relative_score"].to_list()[:3] == [1.0, None, 0.5]
    np.testing.assert_allclose(
        scores["relative_score"].to_numpy()[3:], [0.5, 1.0, 0.25], rtol=RTOL
    )
    robust = robustness_scores(table, threshold=0.8)
    # a: min(1, 0.5) = 0.5; c: min(0.5, 0.25) = 0.25; b has no defined s1 score.
    assert robust["config_id"].to_list() == ["a", "c"]
    np.testing.assert_allclose(robust["robustness"].to_numpy(), [0.5, 0.25], rtol=RTOL)


@pytest.mark.parametrize("metric", ["sharpe_mean", "sortino_mean"])
def test_best_is_among_the_table_given(metric):
    # Adding a better config lowers everyone else's score: best_s is "the best evaluated
    # so far". a alone scores 1; once b = 2.0 joins, a scores 1.0 / 2.0 = 0.5.
    alone = robustness_scores(_table([("s", "a", 1.0)], metric), threshold=0.8, metric=metric)
    joined = robustness_scores(_table([("s", "a", 1.0), ("s", "b", 2.0)], metric),
                               threshold=0.8, metric=metric)
    assert alone["robustness"].to_list() == [1.0]
    assert joined.filter(pl.col("config_id") == "a")["robustness"].to_list() == [0.5]


# The mandate's band: best_s among the configs whose ann_vol_median is inside it.
#   bear: bonds (vol 0.03) Sharpe 0.4 is the best overall; in-band (0.08-0.12): mid 0.2
#         (vol 0.10), edge -0.1 (vol 0.12, on the ceiling: inside)
#   bull: mid 1.0 (vol 0.10), edge 1.2 (vol 0.12), bonds 0.3 (vol 0.02)
#   calm: nobody inside the band (equity vol 6%): best over all, bonds 0.5
BANDED = pl.DataFrame(
    {
        "scenario": ["bear"] * 3 + ["bull"] * 3 + ["calm"] * 3,
        "config_id": ["bonds", "mid", "edge"] * 3,
        "sharpe_mean": [0.4, 0.2, -0.1, 0.3, 1.0, 1.2, 0.5, 0.45, 0.4],
        "ann_vol_median": [0.03, 0.10, 0.12, 0.02, 0.10, 0.12, 0.02, 0.05, 0.06],
    }
)
BAND = (0.08, 0.12)


def test_best_is_taken_within_the_vol_band_with_a_fallback_when_nobody_is_in_it():
    scores = relative_scores(BANDED, vol_band=BAND)
    by = {(r["scenario"], r["config_id"]): r for r in scores.iter_rows(named=True)}
    # bear best 0.2 (mid): bonds 1 - (0.2 - 0.4)/0.2 = 2, mid 1, edge 1 - 0.3/0.2 = -0.5
    # bull best 1.2 (edge): bonds 0.25, mid 1/1.2, edge 1
    # calm fallback best 0.5 (bonds): bonds 1, mid 0.9, edge 0.8
    expected = {
        ("bear", "bonds"): 2.0, ("bear", "mid"): 1.0, ("bear", "edge"): -0.5,
        ("bull", "bonds"): 0.25, ("bull", "mid"): 1 / 1.2, ("bull", "edge"): 1.0,
        ("calm", "bonds"): 1.0, ("calm", "mid"): 0.9, ("calm", "edge"): 0.8,
    }
    for key, value in expected.items():
        np.testing.assert_allclose(by[key]["relative_score"], value, rtol=RTOL, err_msg=str(key))
    assert {s: by[(s, "mid")]["best_within_band"] for s in ("bear", "bull", "calm")} == {
        "bear": True, "bull": True, "calm": False}
    best = best_per_scenario(BANDED, vol_band=BAND).sort("scenario")
    assert best["config_id"].to_list() == ["mid", "edge", "bonds"]
    assert best["scenario"].to_list() == ["bear", "bull", "calm"]


def test_a_mostly_bond_rule_is_not_robust_against_the_in_band_best():
    # Without the band, bear's best is the bond rule's 0.4 and bull's 1.2: bonds keep
    # min(1, 0.25, 1) = 0.25, mid min(0.5, 0.833, 0.9) = 0.5. With the band the bond
    # rule's 2.0 in bear does not rescue its 0.25 in bull, and mid's bear score is 1.
    plain = robustness_scores(BANDED, 0.8)
    banded = robustness_scores(BANDED, 0.8, vol_band=BAND)
    value = {r["config_id"]: r["robustness"] for r in banded.iter_rows(named=True)}
    np.testing.assert_allclose([value["bonds"], value["mid"], value["edge"]],
                               [0.25, 1 / 1.2, -0.5], rtol=RTOL)
    plain_value = {r["config_id"]: r["robustness"] for r in plain.iter_rows(named=True)}
    np.testing.assert_allclose(plain_value["mid"], 0.5, rtol=RTOL)
    assert banded["config_id"].to_list()[0] == "mid"


def test_an_undefined_vol_is_outside_the_band():
    table = BANDED.with_columns(
        pl.when(pl.col("config_id") == "mid").then(float("nan"))
        .otherwise(pl.col("ann_vol_median")).alias("ann_vol_median"))
    scores = relative_scores(table.filter(pl.col("scenario") == "bear"), vol_band=BAND)
    # only edge (-0.1) is inside: best -0.1; mid 1 - (-0.1 - 0.2)/0.1 = 4
    np.testing.assert_allclose(scores["best_sharpe_mean"].to_numpy(), [-0.1] * 3, rtol=RTOL)
