"""engine.optimisation.landscape: the search's shape and its rounds, on hand tables."""

from __future__ import annotations

import polars as pl
import pytest

from engine.optimisation.landscape import search_landscape, search_rounds
from engine.optimisation.search_space import SearchSpace
from engine.validation import ConfigError

SPACE = SearchSpace()  # target_vol 0.05-0.20, windows 6-24, risk aversion 0.5-5
HISTORY = pl.DataFrame({
    "config_id": ["a", "b", "c", "d", "e"],
    "weight_fn": ["linear", "linear", "inverse_vol", "sigmoid", "linear"],
    "target_vol": [0.05, 0.20, 0.125, 0.10, 0.06],
    "vol_window_months": [6, 24, 12, 18, 7],
    "risk_aversion": [1.0, 2.0, None, 4.0, 1.2],
    "objective": [0.5, 0.7, 0.2, None, 0.3],
})


def test_incumbents_per_weight_function_best_first_without_unscored_rows():
    shape = search_landscape(HISTORY, SPACE, bins=2)
    assert shape.incumbents["weight_fn"].to_list() == ["linear", "inverse_vol"]
    assert shape.incumbents["config_id"].to_list() == ["b", "c"]
    assert shape.incumbents["configs"].to_list() == [3, 1]


def test_influence_is_the_spread_of_bin_means():
    # bins=2. target_vol edges 0.05 | 0.125 | 0.20: low {a 0.5, e 0.3} mean 0.4,
    # high {c 0.2, b 0.7} mean 0.45 -> 0.05. windows 6 | 15 | 24: low {a, c, e} 1/3,
    # high {b} 0.7 -> 0.3667. weight_fn: linear 0.5, inverse_vol 0.2 -> 0.3.
    # risk_aversion 0.5 | 2.75 | 5 (linear only scored): {a, b, e} one bin -> 0.
    shape = search_landscape(HISTORY, SPACE, bins=2)
    spread = dict(shape.influence.select("parameter", "spread").iter_rows())
    assert spread == pytest.approx({"vol_window_months": 0.7 - 1.0 / 3, "weight_fn": 0.3,
                                    "target_vol": 0.05, "risk_aversion": 0.0})
    assert shape.influence["parameter"].to_list()[0] == "vol_window_months"
    best_bin = dict(shape.influence.select("parameter", "best_bin").iter_rows())
    assert best_bin["vol_window_months"] == "15-24"
    assert best_bin["weight_fn"] == "linear"


def test_unexplored_cells_are_the_weight_fn_x_vol_x_window_cells_without_a_config():
    shape = search_landscape(HISTORY, SPACE, bins=2)
    # 4 weight functions x 2 x 2 cells = 16; scored configs occupy linear (low, low),
    # linear (high, high), inverse_vol (high, low); d (sigmoid) has no objective.
    assert shape.unexplored.height == 16 - 3
    cells = set(shape.unexplored.select("weight_fn", "target_vol_low", "window_low")
                .iter_rows())
    assert ("linear", 0.05, 6.0) not in cells and ("sigmoid", 0.05, 15.0) in cells
    assert ("inverse_vol", 0.125, 6.0) not in cells


def test_bins_are_range_checked():
    with pytest.raises(ConfigError, match=r"^search_landscape.bins = 0"):
        search_landscape(HISTORY, SPACE, bins=0)


def test_rounds_table():
    history = pl.DataFrame({
        "evaluation_index": [1, 2, 3, 4, 5, 6],
        "round": [0, 0, 1, 1, 1, 2],
        "proposer": ["lhs", "lhs", "tpe", "trust_region", "trust_region", "tpe"],
        "improved": [True, True, False, True, True, False],
        "round_best_objective": [0.4, 0.4, 0.6, 0.6, 0.6, 0.6],
    })
    table = search_rounds(history)
    assert table.rows() == [
        (0, 2, "lhs 2", 0.4, 2, "lhs 2"),
        (1, 3, "tpe 1, trust_region 2", 0.6, 2, "trust_region 2"),
        (2, 1, "tpe 1", 0.6, 0, ""),
    ]
