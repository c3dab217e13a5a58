"""engine.optimisation.edges: the best config on the edge of a searched range."""

from __future__ import annotations

import polars as pl
import pytest

from engine.optimisation.edges import optimum_edges
from engine.optimisation.search_space import SearchSpace


def _history(rows):
    return pl.DataFrame(rows, schema={"config_id": pl.String, "objective": pl.Float64,
                                      "target_vol": pl.Float64, "vol_window_months": pl.Int64,
                                      "risk_aversion": pl.Float64}, orient="row")


@pytest.mark.parametrize(
    ("best", "expected"),
    [
        # 5% of [0.05, 0.20] is 0.0075: 0.0575 is on the lower edge, 0.0576 is not.
        (("a", 1.0, 0.0575, 12, None), "target_vol 0.0575 at the lower bound 0.05 of [0.05, 0.2]"),
        (("a", 1.0, 0.0576, 12, None), None),
        (("a", 1.0, 0.1925, 12, None), "target_vol 0.1925 at the upper bound 0.2 of [0.05, 0.2]"),
        # 5% of [6, 24] is 0.9: 6 is on the edge, 7 is not; 24 on the upper edge.
        (("a", 1.0, 0.10, 6, None), "vol_window_months 6 at the lower bound 6 of [6, 24]"),
        (("a", 1.0, 0.10, 7, None), None),
        (("a", 1.0, 0.05, 24, 4.9),
         "target_vol 0.05 at the lower bound 0.05 of [0.05, 0.2]; vol_window_months 24 at the"
         " upper bound 24 of [6, 24]; risk_aversion 4.9 at the upper bound 5 of [0.5, 5]"),
    ],
)
def test_the_best_config_on_an_edge_is_named(best, expected):
    other = ("b", 0.5, 0.05, 6, 0.5)  # on every edge, but not the best
    assert optimum_edges(_history([best, other]), SearchSpace()) == expected


def test_no_scored_config_no_finding():
    assert optimum_edges(_history([("a", None, 0.05, 6, None)]), SearchSpace()) is None
