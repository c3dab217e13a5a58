"""engine.optimisation.loop: settings, the history table and its stop rule, the whole loop.

The stop-rule cases use one-scenario tables whose configs meet every penalised limit,
so a config's objective is its relative Sharpe m / best (best > 0) and the rule reads
directly off the Sharpes (it is scale-free: dividing every score by best changes
neither the improvements' signs nor their ratios).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import polars as pl
import pytest

from engine.__main__ import main
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import (
    HISTORY_COLUMNS,
    STOP_REASONS,
    AgentSettings,
    config_rows,
    optimisation_history,
    run_optimisation,
)
from engine.optimisation.search_space import SearchSpace
from engine.strategy.config import StrategyConfig
from engine.validation import ConfigError

OBJECTIVES = InvestmentObjectives()


# --- AgentSettings ----------------------------------------------------------------------


def test_settings_defaults_follow_the_issue():
    assert dataclasses.asdict(AgentSettings()) == {
        "proposer": "tpe", "initial_batch": 256, "batch_size": 32, "local_share": 0.5,
        "trust_radius": 0.15, "max_configs": 400, "window": 20, "tolerance": 0.01,
        "time_budget_s": 1800.0, "seed": 0,
    }
    assert STOP_REASONS == ("converged", "max_configs", "time_budget")


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("proposer", "random", "tpe, lhs, bedrock"),
        ("initial_batch", 0, "[1, 10000]"),
        ("batch_size", 2.5, "[1, 10000]"),
        ("local_share", 1.5, "[0, 1]"),
        ("trust_radius", 0.0, "(0, 1]"),
        ("max_configs", 0, "[1, 100000]"),
        ("window", 0, "[1, 10000]"),
        ("tolerance", -0.01, "[0, 1]"),
        ("time_budget_s", 0.0, "(0, 604800]"),
        ("seed", -1, "[0, 4294967295]"),
    ],
)
def test_settings_errors_name_field_and_range(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        AgentSettings(**{field: value})
    assert f"AgentSettings.{field} = " in str(info.value)
    assert allowed in str(info.value)


def test_settings_accept_numpy_scalars():
    settings = AgentSettings(max_configs=np.int64(40), tolerance=np.float64(0.02))
    assert type(settings.max_configs) is int and settings.max_configs == 40


# --- optimisation_history on hand tables -------------------------------------------------


def _configs(n: int) -> list[StrategyConfig]:
    return [StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=6 + k,
                           tc_bps=10.0) for k in range(n)]


def _inputs(sharpes: list[float], n_initial: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Configs (round 0 the first n_initial, then one config a round) and a one-scenario
    evaluation table: vol on target, every limit met, the given mean Sharpes."""
    configs = _configs(len(sharpes))
    rounds = [0] * n_initial + list(range(1, len(sharpes) - n_initial + 1))
    rows = pl.concat(
        config_rows([c], round_index=r, proposer="lhs" if r == 0 else "tpe")
        for c, r in zip(configs, rounds, strict=True)
    )
    evaluations = pl.DataFrame({
        "scenario": ["s"] * len(configs),
        "config_id": [c.config_id for c in configs],
        "target_vol": [0.10] * len(configs),
        "sharpe_mean": sharpes,
        "ann_vol_median": [0.10] * len(configs),
        "max_drawdown_median": [0.10] * len(configs),
        "var95_median": [0.03] * len(configs),
        "cvar95_median": [0.05] * len(configs),
        "cost_drag_median": [0.001] * len(configs),
    })
    return rows, evaluations


# best (in Sharpe): 1, 2, 2, 2.005, 2.01, 2.012; window 3, tolerance 1%:
# i = 4: 2.005 - 1 >= 0.01; i = 5: 2.01 - 2 = 0.01 < 0.02 -> converged at 5.
SHARPES = [1.0, 2.0, 1.5, 2.005, 2.01, 2.012]


def test_history_columns_rescoring_and_best_so_far():
    rows, evaluations = _inputs(SHARPES, n_initial=2)
    settings = AgentSettings(window=3, max_configs=100)
    history, reason = optimisation_history(rows, evaluations, OBJECTIVES, settings,
                                           elapsed_s=1.0)
    assert history.columns == list(HISTORY_COLUMNS)
    assert history["evaluation_index"].to_list() == [1, 2, 3, 4, 5, 6]
    assert history["round"].to_list() == [0, 0, 1, 2, 3, 4]
    assert history["proposer"].to_list() == ["lhs", "lhs", "tpe", "tpe", "tpe", "tpe"]
    # Rescored against the best of all six (2.012): objective = m / 2.012.
    np.testing.assert_allclose(history["objective"].to_numpy(), np.array(SHARPES) / 2.012,
                               rtol=1e-12)
    np.testing.assert_allclose(history["best_objective_so_far"].to_numpy(),
                               np.array([1.0, 2.0, 2.0, 2.005, 2.01, 2.012]) / 2.012,
                               rtol=1e-12)
    assert history["risk_aversion"].to_list() == [None] * 6
    assert history.schema["risk_aversion"] == pl.Float64
    assert reason == "converged"
    assert history["stop_reason"].to_list() == ["converged"] * 6


def test_no_stop_while_the_best_still_improves():
    rows, evaluations = _inputs(SHARPES[:4], n_initial=2)
    history, reason = optimisation_history(rows, evaluations, OBJECTIVES,
                                           AgentSettings(window=3), elapsed_s=1.0)
    assert reason is None
    assert history["stop_reason"].to_list() == [None] * 4
    assert history.schema["stop_reason"] == pl.String


def test_a_flat_stretch_inside_round_zero_does_not_stop_the_search():
    # Flat 2.0 for four configs then 2.5 (window 2): the rule holds at i = 3, inside
    # round 0 when round 0 has 4 configs; from i = 5 on, 2.5 - 2.0 >= 1%: no stop.
    sharpes = [2.0, 2.0, 2.0, 2.0, 2.5]
    settings = AgentSettings(window=2)
    _, reason = optimisation_history(*_inputs(sharpes, n_initial=4), OBJECTIVES, settings,
                                     elapsed_s=0.0)
    assert reason is None
    # The same sequence with a round 0 of 2 configs: after round 2 (i = 4, two TPE
    # configs after round 0) the rule holds -> converged; the loop stops there. Handed
    # the whole sequence, the latest round (2.5) raised the best by 25%: no stop.
    _, reason = optimisation_history(*_inputs(sharpes[:3], n_initial=2), OBJECTIVES,
                                     settings, elapsed_s=0.0)
    assert reason is None  # one config after round 0: the window reaches into round 0
    _, reason = optimisation_history(*_inputs(sharpes[:4], n_initial=2), OBJECTIVES,
                                     settings, elapsed_s=0.0)
    assert reason == "converged"
    _, reason = optimisation_history(*_inputs(sharpes, n_initial=2), OBJECTIVES, settings,
                                     elapsed_s=0.0)
    assert reason is None


def test_no_convergence_while_the_latest_batch_improved_the_best():
    # Round 0: 4 configs at Sharpe 1; round 1: one batch of 30, its first config 2.0 (a
    # 100% gain), the other 29 flat at 1.0. window 20: the last 20 configs are flat, so a
    # per-config rule would stop; the batch raised the best, so the loop goes on.
    sharpes = [1.0] * 4 + [2.0] + [1.0] * 29
    configs = _configs(len(sharpes))
    rows = pl.concat([config_rows(configs[:4], round_index=0, proposer="lhs"),
                      config_rows(configs[4:], round_index=1, proposer="tpe")])
    _, evaluations = _inputs(sharpes, n_initial=4)
    settings = AgentSettings(window=20, tolerance=0.01)
    history, reason = optimisation_history(rows, evaluations, OBJECTIVES, settings,
                                           elapsed_s=0.0)
    assert reason is None
    assert history["improved"].to_list() == [True] + [False] * 3 + [True] + [False] * 29
    assert history["round_best_objective"].to_list() == [0.5] * 4 + [1.0] * 30
    # a next batch of 20 flat configs: no gain over the last 20 configs -> converged
    more = _configs(len(sharpes) + 20)[len(sharpes):]
    rows = pl.concat([rows, config_rows(more, round_index=2, proposer="tpe")])
    _, evaluations = _inputs(sharpes + [1.0] * 20, n_initial=4)
    _, reason = optimisation_history(rows, evaluations, OBJECTIVES, settings, elapsed_s=0.0)
    assert reason == "converged"


def test_max_configs_and_time_budget_and_their_precedence():
    rows, evaluations = _inputs(SHARPES[:4], n_initial=2)  # not converged (above)

    def reason(elapsed_s: float, **kwargs) -> str | None:
        settings = AgentSettings(window=3, **kwargs)
        return optimisation_history(rows, evaluations, OBJECTIVES, settings,
                                    elapsed_s=elapsed_s)[1]

    assert reason(0.0, max_configs=4) == "max_configs"
    assert reason(0.0, max_configs=5) is None
    assert reason(10.0, time_budget_s=10.0) == "time_budget"  # elapsed >= budget
    assert reason(9.99, time_budget_s=10.0) is None
    assert reason(10.0, max_configs=4, time_budget_s=10.0) == "max_configs"
    converged = _inputs(SHARPES, n_initial=2)
    settings = AgentSettings(window=3, max_configs=6, time_budget_s=1.0)
    assert optimisation_history(*converged, OBJECTIVES, settings, elapsed_s=5.0)[1] == (
        "converged")


# --- run_optimisation end to end ---------------------------------------------------------


@pytest.fixture(scope="module")
def paths():
    return {name: simulate_scenario(REGIMES[name], n_paths=64, seed=3, horizon_years=1)
            for name in ("base", "bear", "bull")}


SMALL = AgentSettings(initial_batch=12, batch_size=4, max_configs=36, window=8, seed=5)


def _ticks(step: float = 1.0):
    """A fake clock: 0, step, 2 step, ..."""
    counter = itertools.count()
    return lambda: next(counter) * step


@pytest.fixture(scope="module")
def small_run(paths):
    """The loop with SMALL settings, shared by the tests that only read its result."""
    return run_optimisation(paths, OBJECTIVES, SMALL, clock=_ticks())


def test_the_loop_runs_to_a_stop(small_run):
    result = small_run
    history = result.history
    assert result.stop_reason in STOP_REASONS
    assert history["stop_reason"].unique().to_list() == [result.stop_reason]
    assert 12 < history.height <= 36
    assert history["evaluation_index"].to_list() == list(range(1, history.height + 1))
    assert history["config_id"].n_unique() == history.height
    assert history.filter(pl.col("round") == 0)["proposer"].unique().to_list() == ["lhs"]
    assert history.filter(pl.col("round") == 0).height == 12
    later = history.filter(pl.col("round") > 0)
    assert set(later["proposer"]) == {"tpe", "trust_region"}
    # each later round: 2 by tpe, then 2 by trust_region (local_share 0.5 of 4)
    per_round = later.group_by("round", maintain_order=True).agg(pl.col("proposer"))
    assert all(p == ["tpe", "tpe", "trust_region", "trust_region"]
               for p in per_round["proposer"].to_list()[:-1])
    assert set(history["tc_bps"]) == {OBJECTIVES.assumed_tc_bps}
    # every config in every scenario
    assert result.evaluations.height == 3 * history.height
    assert set(result.evaluations["scenario"]) == {"base", "bear", "bull"}
    # best so far is the running max of the rescored objective
    objective = history["objective"].to_numpy()
    best = np.maximum.accumulate(objective)
    np.testing.assert_array_equal(history["best_objective_so_far"].to_numpy(), best)
    np.testing.assert_array_equal(history["improved"].to_numpy(),
                                  objective > np.r_[-np.inf, best[:-1]])
    ends = history.group_by("round").agg(pl.col("best_objective_so_far").last())
    assert history.join(ends, on="round").select(
        (pl.col("round_best_objective") == pl.col("best_objective_so_far_right")).all()).item()
    if result.stop_reason == "max_configs":
        assert history.height == 36
    assert result.fallbacks == ()


def test_the_loop_is_reproducible_with_a_seed(paths, small_run):
    first = small_run
    again = run_optimisation(paths, OBJECTIVES, SMALL, clock=_ticks())
    assert first.history.equals(again.history)
    other = run_optimisation(paths, OBJECTIVES, dataclasses.replace(SMALL, seed=6),
                             clock=_ticks())
    assert not first.history["config_id"].equals(other.history["config_id"])


def test_the_time_budget_stops_the_loop(paths):
    # Every clock reading is 100 s after the last: round 0 already takes 100 s >= 50 s.
    settings = dataclasses.replace(SMALL, time_budget_s=50.0)
    result = run_optimisation(paths, OBJECTIVES, settings, clock=_ticks(100.0))
    assert result.stop_reason == "time_budget"
    assert result.history.height == 12


def test_max_configs_caps_the_last_round(paths):
    # 12 + 4 + 3: the last round is cut to what is left; tolerance 0 never converges.
    settings = dataclasses.replace(SMALL, max_configs=19, tolerance=0.0)
    result = run_optimisation(paths, OBJECTIVES, settings, clock=_ticks())
    assert result.stop_reason == "max_configs"
    assert result.history.group_by("round", maintain_order=True).len()["len"].to_list() == [
        12, 4, 3]


class Failing:
    name = "bedrock"

    def propose(self, history, n, *, round_index, seed):
        raise RuntimeError("no model access")


def test_a_failing_proposer_hands_every_round_to_tpe(paths):
    settings = dataclasses.replace(SMALL, proposer="bedrock", max_configs=20, tolerance=0.0)
    result = run_optimisation(paths, OBJECTIVES, settings, Failing(), clock=_ticks())
    history = result.history
    assert set(history.filter(pl.col("round") > 0)["proposer"]) == {"tpe", "trust_region"}
    assert [r for r, _ in result.fallbacks] == [1, 2]
    assert all("RuntimeError: no model access" in reason for _, reason in result.fallbacks)


def test_bedrock_needs_a_proposer_passed_in(paths):
    with pytest.raises(ConfigError, match="proposer = 'bedrock'"):
        run_optimisation(paths, OBJECTIVES, dataclasses.replace(SMALL, proposer="bedrock"))


def test_no_scenarios_is_an_error():
    with pytest.raises(ValueError, match="at least one scenario"):
        run_optimisation({}, OBJECTIVES, SMALL)


def test_lhs_proposer_and_a_custom_space(paths):
    space = SearchSpace(weight_fns=("linear", "sigmoid"), target_vol=(0.08, 0.12))
    settings = dataclasses.replace(SMALL, proposer="lhs", max_configs=20, tolerance=0.0)
    result = run_optimisation(paths, OBJECTIVES, settings, space=space, clock=_ticks())
    history = result.history
    assert set(history.filter(pl.col("round") > 0)["proposer"]) == {"lhs", "trust_region"}
    assert set(history["weight_fn"]) <= {"linear", "sigmoid"}
    assert history["target_vol"].min() >= 0.08 and history["target_vol"].max() <= 0.12
    assert history["risk_aversion"].null_count() == 0


def test_python_m_engine_prints_rounds_and_leaderboard(capsys):
    main(["--paths", "16", "--horizon-years", "1", "--initial-batch", "8", "--batch-size",
          "4", "--max-configs", "16", "--window", "4", "--top", "3"])
    out = capsys.readouterr().out
    assert "Rounds" in out and "Leaderboard (top 3 of" in out
    assert "stopped: " in out
