"""engine.optimisation.trust_region: local refinement around the incumbents."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.optimisation.loop import config_rows
from engine.optimisation.proposers import (
    TpeProposer,
    _with_pending,
    check_proposals,
    propose_round,
)
from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import SearchSpace
from engine.optimisation.trust_region import (
    TrustRegionProposer,
    allocation,
    incumbents,
    stalled_rounds,
)
from engine.strategy.config import StrategyConfig
from engine.validation import ConfigError

SPACE = SearchSpace()
TC = 10.0


def _objective(config: StrategyConfig) -> float:
    """Made up: peaks at sigmoid, target_vol 0.08, 12 months; linear second."""
    bonus = {"sigmoid": 0.5, "linear": 0.3}.get(config.weight_fn, 0.0)
    return bonus - 20.0 * abs(config.target_vol - 0.08) - 0.02 * abs(config.vol_window_months - 12)


def _history(configs: list[StrategyConfig], rounds: list[int] | None = None) -> pl.DataFrame:
    rounds = rounds or [0] * len(configs)
    rows = pl.concat(config_rows([c], round_index=r, proposer="lhs")
                     for c, r in zip(configs, rounds, strict=True))
    return rows.with_columns(pl.Series("objective", [_objective(c) for c in configs]))


HISTORY = _history(sample_configs(32, 0, tc_bps=TC))


def test_deterministic_for_a_seed_and_round_and_new_points_of_the_space():
    proposer = TrustRegionProposer(SPACE, TC)
    first = proposer.propose(HISTORY, 8, round_index=1, seed=4)
    assert first == proposer.propose(HISTORY, 8, round_index=1, seed=4)
    assert first != proposer.propose(HISTORY, 8, round_index=1, seed=5)
    assert first != proposer.propose(HISTORY, 8, round_index=2, seed=4)
    check_proposals(first, HISTORY, 8, SPACE)
    assert {c.tc_bps for c in first} == {TC}


def test_half_the_batch_refines_the_incumbent_the_rest_the_other_weight_functions():
    centres = incumbents(HISTORY, SPACE)
    best = HISTORY.sort("objective", descending=True).row(0, named=True)
    assert centres[0]["config_id"] == best["config_id"]
    assert [c["weight_fn"] for c in centres] == (
        HISTORY.sort("objective", descending=True)["weight_fn"].unique(maintain_order=True)
        .to_list())
    drawn = allocation(centres, 7)
    assert [c["config_id"] for c in drawn[:4]] == [best["config_id"]] * 4
    assert [c["config_id"] for c in drawn[4:]] == [c["config_id"] for c in centres[1:4]]
    assert allocation(centres[:1], 3) == [centres[0]] * 3
    configs = TrustRegionProposer(SPACE, TC, radius=0.02).propose(HISTORY, 8, round_index=1,
                                                                  seed=0)
    assert [c.weight_fn for c in configs] == [c["weight_fn"] for c in allocation(centres, 8)]
    # a radius of 2% of each range: every step within 5 radii of its centre
    for config, centre in zip(configs, allocation(centres, 8), strict=True):
        assert abs(config.target_vol - centre["target_vol"]) <= 5 * 0.02 * 0.15
        assert abs(config.vol_window_months - centre["vol_window_months"]) <= 2


def test_steps_stay_inside_the_space_from_its_corners():
    space = SearchSpace(target_vol=(0.05, 0.06), vol_window_months=(6, 7),
                        risk_aversion=(1.0, 1.5))
    proposer = TrustRegionProposer(space, TC, radius=1.0)
    rng = np.random.default_rng(0)
    for corner in [{"target_vol": 0.05, "vol_window_months": 6, "risk_aversion": 1.0},
                   {"target_vol": 0.06, "vol_window_months": 7, "risk_aversion": 1.5}]:
        for fn in space.weight_fns:
            for _ in range(200):
                config = proposer.step({**corner, "weight_fn": fn}, 1.0, rng)
                space.validate(config)  # in range, rounded, the space's fixed fields


@pytest.mark.parametrize("radius", [0.0, -0.1, 1.5, float("nan")])
def test_refuses_a_radius_outside_zero_one(radius):
    with pytest.raises(ConfigError, match=r"^TrustRegionProposer.radius = .*\(0, 1\]"):
        TrustRegionProposer(SPACE, TC, radius=radius)


def test_the_radius_shrinks_with_the_rounds_that_did_not_raise_the_best():
    # best per round: 0.3, 0.5, 0.4, 0.5 -> last raise in round 1, two stalled rounds
    rows = pl.DataFrame({"round": [0, 0, 1, 2, 3, 3],
                         "objective": [0.1, 0.3, 0.5, 0.4, 0.5, None]})
    assert stalled_rounds(rows) == 2
    assert stalled_rounds(rows.filter(pl.col("round") <= 1)) == 0
    space = SearchSpace(weight_fns=("sigmoid",))
    top = space.make_config({"weight_fn": "sigmoid", "target_vol": 0.125,
                             "vol_window_months": 15, "risk_aversion": 2.75}, TC)
    others = sample_configs(8, 1, space, tc_bps=TC)
    # the same incumbent, found in round 1 (raised) or in round 0 and not beaten since
    raised = _history([*others[:4], top, *others[4:]], [0] * 4 + [1] * 5)
    stalled = _history([top, *others], [0] * 5 + [1] * 4)
    best = {"objective": pl.when(pl.col("config_id") == top.config_id).then(10.0)
            .otherwise(-1.0)}
    raised, stalled = raised.with_columns(**best), stalled.with_columns(**best)
    assert (stalled_rounds(raised), stalled_rounds(stalled)) == (0, 1)

    def steps(history: pl.DataFrame) -> np.ndarray:
        batch = TrustRegionProposer(space, TC, radius=0.1).propose(history, 6, round_index=2,
                                                                   seed=0)
        return np.array([c.target_vol - top.target_vol for c in batch])

    # the same normal draws (seed, round) at half the radius: half the steps, to the
    # rounding of target_vol (4 decimals)
    np.testing.assert_allclose(steps(stalled), steps(raised) / 2, atol=1e-4)
    assert np.abs(steps(raised)).max() > 1e-3


def test_a_tiny_space_escapes_repeats_by_growing_the_radius():
    space = SearchSpace(target_vol=(0.1, 0.1), vol_window_months=(6, 8),
                        weight_fns=("inverse_vol",))
    seen = [space.make_config({"weight_fn": "inverse_vol", "target_vol": 0.1,
                               "vol_window_months": w}, TC) for w in (6, 7)]
    history = _history(seen)
    (config,) = TrustRegionProposer(space, TC, radius=0.01).propose(history, 1, round_index=1,
                                                                   seed=0)
    assert config.vol_window_months == 8


def test_without_any_objective_the_round_falls_back_to_tpe():
    history = HISTORY.with_columns(pl.lit(None, dtype=pl.Float64).alias("objective"))
    configs, used, reason = propose_round(TrustRegionProposer(SPACE, TC),
                                          TpeProposer(SPACE, TC), history, 4, round_index=1,
                                          seed=0, space=SPACE)
    assert used == "tpe" and len(configs) == 4
    assert "no config with an objective" in reason


def test_steps_keep_the_centres_base_mixes_and_tpe_reads_them_as_pending():
    """On a space that searches the base mixes, a local step keeps its centre's mixes,
    and TPE asked after it (a fallback or the next part of the round) reads the pending
    rows with their mixes: a pending row without them stopped a portfolio loop."""
    mixed = SearchSpace(risky_mixes=("fixed", "inverse_vol", "risk_parity"),
                        defensive_mixes=("fixed", "risk_parity"))
    configs = sample_configs(24, 3, mixed, tc_bps=TC)
    history = _history(configs)
    local = TrustRegionProposer(mixed, TC).propose(history, 6, round_index=1, seed=0)
    centres = {(c["weight_fn"]): (c["risky_mix"], c["defensive_mix"])
               for c in incumbents(history, mixed)}
    assert all((c.risky_mix, c.defensive_mix) == centres[c.weight_fn] for c in local)
    pending = _with_pending(history, local)
    assert pending["risky_mix"].null_count() == 0
    proposed = TpeProposer(mixed, TC).propose(pending, 4, round_index=1, seed=0)
    assert all(mixed.validate(c) is None for c in proposed)
