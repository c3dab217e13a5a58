"""Base mixes as searched hyperparameters: the space, Latin hypercube, TPE and the loop on
a multi-asset portfolio; the two-asset space unchanged."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import polars as pl
import pytest

from engine.__main__ import main
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, run_optimisation
from engine.optimisation.proposers import TpeProposer
from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import PARAMETERS, SearchSpace
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.paths import simulate_portfolio
from engine.strategy.config import BASE_MIXES, StrategyConfig
from engine.validation import ConfigError

MIXED = SearchSpace(risky_mixes=BASE_MIXES, defensive_mixes=("fixed", "risk_parity"))
PROPOSAL = {"weight_fn": "inverse_vol", "target_vol": 0.1, "vol_window_months": 12}


def test_default_space_searches_no_mix_and_ids_are_unchanged():
    space = SearchSpace()
    assert space.parameters == PARAMETERS
    config = space.make_config(PROPOSAL, 10.0)
    assert (config.risky_mix, config.defensive_mix) == ("fixed", "fixed")
    assert config.config_id == StrategyConfig(0.1, "inverse_vol", 12, tc_bps=10.0).config_id
    assert "risky_mix" not in space.json_schema()["properties"]


def test_mixed_space_requires_and_validates_the_mixes():
    assert MIXED.parameters == (*PARAMETERS, "risky_mix", "defensive_mix")
    with pytest.raises(ConfigError, match="risky_mix = None is not one of"):
        MIXED.make_config(PROPOSAL, 10.0)
    config = MIXED.make_config(PROPOSAL | {"risky_mix": "risk_parity",
                                           "defensive_mix": "fixed"}, 10.0)
    assert config.risky_mix == "risk_parity"
    assert config.config_id != SearchSpace().make_config(PROPOSAL, 10.0).config_id
    MIXED.validate(config)
    with pytest.raises(ConfigError, match="risky_mix = 'risk_parity' is not one of fixed"):
        SearchSpace().validate(config)
    with pytest.raises(ConfigError, match="defensive_mix = 'inverse_vol' is not one of"):
        MIXED.make_config(PROPOSAL | {"risky_mix": "fixed", "defensive_mix": "inverse_vol"},
                          10.0)
    schema = MIXED.json_schema()
    assert schema["properties"]["risky_mix"]["enum"] == list(BASE_MIXES)
    assert schema["required"][-2:] == ["risky_mix", "defensive_mix"]
    with pytest.raises(ConfigError, match="risky_mixes"):
        SearchSpace(risky_mixes=("fixed", "equal"))


def test_latin_hypercube_stratifies_the_mixes_and_leaves_the_default_draws_alone():
    configs = sample_configs(30, 4, MIXED)
    counts = Counter(c.risky_mix for c in configs)
    assert counts == {"fixed": 10, "inverse_vol": 10, "risk_parity": 10}
    assert Counter(c.defensive_mix for c in configs) == {"fixed": 15, "risk_parity": 15}
    plain = sample_configs(30, 4)
    assert all(c.risky_mix == "fixed" for c in plain)
    assert [c.target_vol for c in plain] == [c.target_vol for c in sample_configs(30, 4)]


def test_tpe_proposes_mixes_from_a_history_with_mixes():
    configs = sample_configs(12, 1, MIXED)
    history = pl.DataFrame({
        "config_id": [c.config_id for c in configs],
        **{name: [getattr(c, name) for c in configs]
           for name in ("weight_fn", "target_vol", "vol_window_months", "risk_aversion",
                        "risky_mix", "defensive_mix")},
        "objective": np.linspace(0, 1, 12),
    })
    proposed = TpeProposer(MIXED, 10.0).propose(history, 6, round_index=1, seed=0)
    assert len(proposed) == 6
    assert {c.risky_mix for c in proposed} <= set(BASE_MIXES)
    for config in proposed:
        MIXED.validate(config)


def test_the_loop_runs_on_a_six_asset_portfolio():
    paths = {name: simulate_portfolio(GLOBAL_SIX, REGIMES[name], 16, 3, horizon_years=1)
             for name in ("base", "bear")}
    settings = AgentSettings(initial_batch=6, batch_size=3, max_configs=12, window=20, seed=2)
    ticks = itertools.count()
    result = run_optimisation(paths, InvestmentObjectives(), settings, space=MIXED,
                              clock=lambda: float(next(ticks)))
    history = result.history
    assert history.height == 12 and result.stop_reason == "max_configs"
    assert set(history["risky_mix"]) <= set(BASE_MIXES)
    assert history["risky_mix"].n_unique() > 1
    assert result.evaluations.height == 2 * 12
    assert "risky_mix" in result.evaluations.columns
    assert "weight_fn" in result.evaluations.columns
    assert not [c for c in result.evaluations.columns
                if c.startswith("weight_") and c.endswith("_mean")]


@pytest.mark.slow
def test_python_m_engine_runs_the_shipped_multi_asset_example(capsys):
    main(["--portfolio", "global_six", "--paths", "8", "--horizon-years", "1",
          "--initial-batch", "4", "--batch-size", "2", "--max-configs", "6"])
    out = capsys.readouterr().out
    assert "stopped: max_configs after 6 configs" in out
    assert "risky mix" in out and "defensive mix" in out
    for name in GLOBAL_SIX.names:
        assert f"│ {name} " in out
