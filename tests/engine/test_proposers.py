"""engine.optimisation.proposers: LHS and TPE batches, no duplicates, the fallback."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from engine.optimisation.loop import config_rows
from engine.optimisation.proposers import (
    LhsProposer,
    TpeProposer,
    check_proposals,
    propose_round,
)
from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import SearchSpace
from engine.strategy.config import StrategyConfig
from engine.validation import ConfigError

SPACE = SearchSpace()
TC = 10.0


def _objective(config: StrategyConfig) -> float:
    """A smooth made-up objective peaking at sigmoid, target_vol 0.08, 12 months."""
    bonus = 0.5 if config.weight_fn == "sigmoid" else 0.0
    return bonus - 20.0 * abs(config.target_vol - 0.08) - 0.02 * abs(config.vol_window_months - 12)


def _history(configs: list[StrategyConfig]) -> pl.DataFrame:
    rows = config_rows(configs, round_index=0, proposer="lhs")
    return rows.with_columns(pl.Series("objective", [_objective(c) for c in configs]))


HISTORY = _history(sample_configs(32, 0, tc_bps=TC))


def test_tpe_is_deterministic_for_a_seed_and_round():
    tpe = TpeProposer(SPACE, TC)
    first = tpe.propose(HISTORY, 8, round_index=1, seed=7)
    again = TpeProposer(SPACE, TC).propose(HISTORY, 8, round_index=1, seed=7)
    assert first == again
    assert [c.config_id for c in first] == [c.config_id for c in again]
    # Another seed or another round draws another batch.
    assert tpe.propose(HISTORY, 8, round_index=1, seed=8) != first
    assert tpe.propose(HISTORY, 8, round_index=2, seed=7) != first


def test_tpe_proposals_are_new_points_of_the_space_at_the_assumed_cost():
    configs = TpeProposer(SPACE, TC).propose(HISTORY, 8, round_index=1, seed=0)
    check_proposals(configs, HISTORY, 8, SPACE)  # count, space, no repeats
    assert {c.tc_bps for c in configs} == {TC}
    for config in configs:
        assert (config.risk_aversion is None) == (config.weight_fn.startswith("inverse"))


def test_tpe_learns_from_the_history():
    # After 32 LHS configs of a made-up objective peaking at sigmoid / 0.08 / 12 months,
    # TPE's batch should sit closer to the peak than the LHS batch did, on average.
    tpe = TpeProposer(SPACE, TC).propose(HISTORY, 16, round_index=1, seed=0)
    lhs = LhsProposer(SPACE, TC).propose(HISTORY, 16, round_index=1, seed=0)
    mean = lambda configs: sum(map(_objective, configs)) / len(configs)  # noqa: E731
    assert mean(tpe) > mean(lhs)


def test_tpe_never_repeats_a_config_even_in_a_tiny_space():
    # Two points only: inverse_vol at 10% with a 6- or 7-month window.
    tiny = SearchSpace(target_vol=(0.1, 0.1), vol_window_months=(6, 7),
                       weight_fns=("inverse_vol",))
    points = [tiny.make_config({"weight_fn": "inverse_vol", "target_vol": 0.1,
                                "vol_window_months": w}, TC) for w in (6, 7)]
    history = _history(points[:1])
    assert TpeProposer(tiny, TC).propose(history, 1, round_index=1, seed=0) == points[1:]
    with pytest.raises(RuntimeError, match="no 2 new configs"):
        TpeProposer(tiny, TC).propose(history, 2, round_index=1, seed=0)


def test_tpe_accepts_configs_without_an_objective():
    history = HISTORY.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("objective"))
        .alias("objective")
    )
    configs = TpeProposer(SPACE, TC).propose(history, 4, round_index=1, seed=0)
    check_proposals(configs, history, 4, SPACE)


def test_lhs_is_deterministic_and_skips_the_history():
    lhs = LhsProposer(SPACE, TC)
    first = lhs.propose(HISTORY, 8, round_index=1, seed=3)
    assert first == lhs.propose(HISTORY, 8, round_index=1, seed=3)
    check_proposals(first, HISTORY, 8, SPACE)
    # A history holding the whole first draw forces later draws: still 8 new configs.
    crowded = pl.concat([HISTORY, _history(first)])
    again = lhs.propose(crowded, 8, round_index=1, seed=3)
    check_proposals(again, crowded, 8, SPACE)


def test_round_zero_lhs_needs_no_history():
    configs = LhsProposer(SPACE, TC).propose(pl.DataFrame(), 32, round_index=0, seed=0)
    check_proposals(configs, pl.DataFrame(), 32, SPACE)


# --- propose_round ----------------------------------------------------------------------


@dataclasses.dataclass
class Scripted:
    """A proposer that returns a fixed list, or raises."""

    result: object
    name: str = "bedrock"

    def propose(self, history, n, *, round_index, seed):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _round(proposer):
    return propose_round(proposer, TpeProposer(SPACE, TC), HISTORY, 4, round_index=1, seed=0,
                         space=SPACE)


def test_a_valid_batch_is_used_as_is():
    batch = LhsProposer(SPACE, TC).propose(HISTORY, 4, round_index=5, seed=0)
    configs, used, reason = _round(Scripted(batch))
    assert (configs, used, reason) == (batch, "bedrock", None)


def test_a_proposer_that_raises_falls_back_to_tpe():
    configs, used, reason = _round(Scripted(TimeoutError("Bedrock throttled")))
    assert used == "tpe"
    assert reason == "bedrock failed: TimeoutError: Bedrock throttled"
    assert configs == TpeProposer(SPACE, TC).propose(HISTORY, 4, round_index=1, seed=0)


def _valid(k: int = 4) -> list[StrategyConfig]:
    return LhsProposer(SPACE, TC).propose(HISTORY, k, round_index=9, seed=0)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        # outside the space: StrategyConfig allows 30% vol, the space stops at 20%
        ([*_valid(3), StrategyConfig(target_vol=0.3, weight_fn="linear", vol_window_months=12,
                                     tc_bps=TC)], "SearchSpace.target_vol = 0.3"),
        (_valid(3), "expected a list of 4 configs, got 3"),
        ([*_valid(3), {"target_vol": 0.1}], "is not a StrategyConfig"),
        (_valid(3) + _valid(3)[:1], "was already proposed"),  # twice in the batch
        ("not a list", "expected a list of 4 configs, got str"),
    ],
)
def test_an_invalid_batch_falls_back_to_tpe(batch, message):
    configs, used, reason = _round(Scripted(batch))
    assert used == "tpe"
    assert reason is not None and message in reason
    assert reason.startswith("bedrock failed: ConfigError")
    check_proposals(configs, HISTORY, 4, SPACE)


def test_a_config_already_in_the_history_falls_back_to_tpe():
    repeated = sample_configs(32, 0, tc_bps=TC)[:1]
    _, used, reason = _round(Scripted(_valid(3) + repeated))
    assert used == "tpe"
    assert f"config {repeated[0].config_id} was already proposed" in reason


def test_the_fallbacks_own_failure_propagates():
    with pytest.raises(ConfigError, match="expected a list of 4"):
        propose_round(Scripted([]), Scripted([], name="tpe"), HISTORY, 4, round_index=1,
                      seed=0, space=SPACE)
