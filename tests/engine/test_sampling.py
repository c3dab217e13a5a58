"""engine.optimisation.sampling: Latin hypercube sampling of StrategyConfig.

Reference values come from the LHS construction in sample_configs' Notes: n equal
strata per dimension with one point each, mapped to continuous values, categories and
integers. Counts per discrete level are derived from that construction (see
``_level_count_bounds``), not from a run of the code.
"""

from __future__ import annotations

import collections
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import qmc

from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import SearchSpace
from engine.strategy.config import WEIGHT_FNS
from engine.validation import ConfigError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = (0, 1, 2, 3, 4)

# (field, bounds of the default SearchSpace, decimals it is rounded to)
CONTINUOUS = (
    ("target_vol", (0.05, 0.20), 4),
    ("risk_aversion", (0.5, 5.0), 3),
)


def _level_count_bounds(n: int, m: int) -> list[tuple[int, int]]:
    """Range of the number of LHS points on each of m equal levels of [0, 1).

    Level c is u in [c/m, (c+1)/m). The strata [j/n, (j+1)/n) inside it contribute one
    point each: floor((c+1)n/m) - ceil(cn/m) of them. A stratum cut by either end of the
    level may or may not put its point inside, adding up to one per cut end:
    ceil((c+1)n/m) - floor(cn/m) at most.
    """
    bounds = []
    for c in range(m):
        inside = ((c + 1) * n) // m - (-(-c * n // m))
        at_most = -(-((c + 1) * n) // m) - (c * n) // m
        bounds.append((inside, at_most))
    return bounds


def test_level_count_bounds_are_exact_when_levels_divide_strata():
    # m | n: every level boundary is a stratum boundary, so each level gets n / m points.
    assert _level_count_bounds(20, 4) == [(5, 5)] * 4
    assert _level_count_bounds(38, 19) == [(2, 2)] * 19
    # n = 9, m = 4: level 1 = [0.25, 0.5) holds stratum 3 only, plus strata 2 and 4 if
    # their points land on the right side of 0.25 and 0.5.
    assert _level_count_bounds(9, 4) == [(2, 3), (1, 3), (1, 3), (2, 3)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [10, 37, 100])
@pytest.mark.parametrize(("field", "bounds", "decimals"), CONTINUOUS)
def test_continuous_dimension_has_one_point_per_stratum(field, bounds, decimals, n, seed):
    # The unrounded value x lies within h = half a unit of the last decimal of the shown
    # value. One point per stratum means the i-th smallest unrounded value is in stratum
    # i, so stratum(x_i - h) <= i <= stratum(x_i + h) for the sorted rounded values.
    lo, hi = bounds
    # risk_aversion is kept only for linear and sigmoid: search those two alone, so
    # every point shows its draw.
    space = SearchSpace(weight_fns=("linear", "sigmoid"))
    values = np.sort([getattr(c, field) for c in sample_configs(n, seed, space)])
    half_unit = 0.5 * 10.0 ** (-decimals) * (1.0 + 1e-9)

    def stratum(x):
        return np.floor((x - lo) / (hi - lo) * n)

    i = np.arange(n)
    assert (stratum(values - half_unit) <= i).all()
    assert (i <= stratum(values + half_unit)).all()
    assert values.min() >= lo
    assert values.max() <= hi


@pytest.mark.parametrize("seed", SEEDS)
def test_configs_are_the_documented_map_of_scipys_unit_hypercube(seed):
    # Reference: scipy's LatinHypercube on the same Generator seed, mapped as the Notes
    # say (columns: target_vol, weight_fn, window, risk_aversion); risk_aversion is None
    # for the inverse rules; tc_bps is the fixed assumption, 10 bp by default.
    n = 25
    unit = qmc.LatinHypercube(d=4, rng=np.random.default_rng(seed)).random(n)
    configs = sample_configs(n, seed)
    for (u_tv, u_fn, u_win, u_ra), config in zip(unit, configs, strict=True):
        assert config.target_vol == round(0.05 + u_tv * 0.15, 4)
        assert config.weight_fn == WEIGHT_FNS[math.floor(u_fn * 4)]
        assert config.vol_window_months == 6 + math.floor(u_win * 19)
        if config.weight_fn in ("linear", "sigmoid"):
            assert config.risk_aversion == round(0.5 + u_ra * 4.5, 3)
        else:
            assert config.risk_aversion is None
        assert config.tc_bps == 10.0


@pytest.mark.parametrize("tc_bps", [0.0, 7.5, 20.0])
def test_costs_are_the_fixed_assumption_not_sampled(tc_bps):
    configs = sample_configs(40, 3, tc_bps=tc_bps)
    assert {c.tc_bps for c in configs} == {tc_bps}
    # The other coordinates do not depend on the assumption.
    assert [c.target_vol for c in configs] == [c.target_vol for c in sample_configs(40, 3)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [8, 9, 10, 13, 20, 40, 101])
def test_weight_fn_counts_follow_the_stratification(n, seed):
    counts = collections.Counter(c.weight_fn for c in sample_configs(n, seed))
    for fn, (low, high) in zip(WEIGHT_FNS, _level_count_bounds(n, 4), strict=True):
        assert low <= counts[fn] <= high, (fn, counts)
        assert abs(counts[fn] - n / 4) < 2


@pytest.mark.parametrize("seed", SEEDS)
def test_weight_fns_split_evenly_when_their_number_divides_n(seed):
    counts = collections.Counter(c.weight_fn for c in sample_configs(40, seed))
    assert counts == dict.fromkeys(WEIGHT_FNS, 10)


@pytest.mark.parametrize("seed", SEEDS)
def test_weight_fn_levels_follow_the_search_space_order(seed):
    # Two categories: floor(u * 2) -> space.weight_fns[0] for u < 1/2, [1] otherwise.
    space = SearchSpace(weight_fns=("sigmoid", "linear"))
    configs = sample_configs(11, seed, space)
    unit = qmc.LatinHypercube(d=4, rng=np.random.default_rng(seed)).random(11)
    expected = ["sigmoid" if u < 0.5 else "linear" for u in unit[:, 1]]
    assert [c.weight_fn for c in configs] == expected
    counts = collections.Counter(expected)
    assert 5 <= counts["sigmoid"] <= 6  # _level_count_bounds(11, 2) == [(5, 6), (5, 6)]
    assert _level_count_bounds(11, 2) == [(5, 6), (5, 6)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [19, 38, 50, 100])
def test_every_window_appears_with_stratified_counts(n, seed):
    # 19 integer levels 6..24.
    counts = collections.Counter(c.vol_window_months for c in sample_configs(n, seed))
    assert set(counts) == set(range(6, 25))
    for window, (low, high) in zip(range(6, 25), _level_count_bounds(n, 19), strict=True):
        assert low <= counts[window] <= high, (window, counts)
    if n % 19 == 0:
        assert set(counts.values()) == {n // 19}


def test_window_range_of_a_custom_space():
    space = SearchSpace(vol_window_months=(12, 14))
    counts = collections.Counter(c.vol_window_months for c in sample_configs(9, 3, space))
    assert counts == {12: 3, 13: 3, 14: 3}


def test_same_seed_same_configs_and_ids():
    first, second = sample_configs(30, seed=11), sample_configs(30, seed=11)
    assert first == second
    assert [c.config_id for c in first] == [c.config_id for c in second]


def test_generator_and_seed_sequence_seeds_are_deterministic():
    a = sample_configs(12, np.random.default_rng(5))
    b = sample_configs(12, np.random.default_rng(5))
    c = sample_configs(12, np.random.SeedSequence(5))
    assert a == b == c == sample_configs(12, 5)


def test_different_seeds_give_different_configs():
    a, b = sample_configs(30, seed=11), sample_configs(30, seed=12)
    assert {c.config_id for c in a}.isdisjoint({c.config_id for c in b})


def test_sampling_leaves_the_global_rng_alone():
    np.random.seed(123)
    expected = np.random.random_sample(3)
    np.random.seed(123)
    sample_configs(10, seed=None)
    np.testing.assert_array_equal(np.random.random_sample(3), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_ids_are_unique_short_hex(seed):
    ids = [c.config_id for c in sample_configs(200, seed)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 10 and int(i, 16) >= 0 for i in ids)


def test_ids_are_stable_across_processes():
    # config_id is a SHA-256 of the values, so a fresh interpreter (with a different
    # str hash salt) computes the same ids for the same draw.
    code = (
        "from engine.optimisation.sampling import sample_configs;"
        "print(','.join(c.config_id for c in sample_configs(20, seed=7)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.stdout.strip().split(",") == [c.config_id for c in sample_configs(20, 7)]


def test_space_allocation_fields_are_copied_into_every_config():
    space = SearchSpace(min_allocation=0.1, max_allocation=0.9, no_trade_band=0.02)
    for config in sample_configs(8, 0, space):
        assert (config.min_allocation, config.max_allocation, config.no_trade_band) == (
            0.1,
            0.9,
            0.02,
        )


def test_custom_ranges_are_respected():
    space = SearchSpace(target_vol=(0.08, 0.12), risk_aversion=(1.0, 2.0))
    configs = sample_configs(50, 2, space)
    for field, (lo, hi) in (("target_vol", (0.08, 0.12)), ("risk_aversion", (1.0, 2.0))):
        values = [getattr(c, field) for c in configs if getattr(c, field) is not None]
        assert lo <= min(values) and max(values) <= hi


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_vol": (0.2, 0.1)}, "SearchSpace.target_vol[1]"),
        ({"target_vol": (0.0, 0.1)}, "SearchSpace.target_vol[0]"),
        ({"risk_aversion": (0.0, 1.0)}, "SearchSpace.risk_aversion[0]"),
        ({"max_allocation": 3.5}, "SearchSpace.max_allocation"),
        ({"min_allocation": 0.5, "max_allocation": 0.4}, "SearchSpace.max_allocation"),
        ({"no_trade_band": -0.1}, "SearchSpace.no_trade_band"),
        ({"vol_window_months": (0, 24)}, "SearchSpace.vol_window_months[0]"),
        ({"vol_window_months": (12, 6)}, "SearchSpace.vol_window_months[1]"),
        ({"vol_window_months": (6, 24.5)}, "SearchSpace.vol_window_months[1]"),
        ({"weight_fns": ()}, "SearchSpace.weight_fns"),
        ({"weight_fns": ("linear", "momentum")}, "SearchSpace.weight_fns"),
    ],
)
def test_search_space_errors_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match="^" + re.escape(f"{field} =")):
        SearchSpace(**kwargs)


@pytest.mark.parametrize("n", [0, -1, 2.5, "10"])
def test_sample_size_is_validated(n):
    with pytest.raises(ConfigError, match=r"^sample_configs\.n ="):
        sample_configs(n)
