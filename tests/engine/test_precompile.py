"""engine.precompile compiles the kernels the pipeline runs, and engine.arrays gives every
kernel input one numba type whatever the array's origin (simulated in process, or a
scenario file read as read-only views)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import pkgutil
import subprocess
import sys

import numba
import numpy as np
import pytest

import engine
from engine import precompile
from engine.arrays import kernel_input
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.optimisation.sampling import sample_configs
from engine.portfolio.evaluation import evaluate_portfolio
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.live import backtest_portfolio, todays_weights
from engine.portfolio.market_data import synthetic_portfolio_data
from engine.portfolio.paths import simulate_portfolio
from engine.strategy.config import BASE_MIXES
from engine.strategy.evaluation import evaluate


def _kernels() -> dict[str, numba.core.registry.CPUDispatcher]:
    """Every numba kernel defined in the engine, by qualified name."""
    found = {}
    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (isinstance(value, numba.core.registry.CPUDispatcher)
                    and value.py_func.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = value
    return found


def _signatures() -> dict[str, tuple]:
    return {name: tuple(kernel.signatures) for name, kernel in _kernels().items()}


def _as_stored(paths):
    """``paths`` as the pipeline reads a scenario file: every array a read-only view."""
    changes = {}
    for field in dataclasses.fields(paths):
        value = getattr(paths, field.name)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.flags.writeable = False
            changes[field.name] = value
    return dataclasses.replace(paths, **changes)


def test_stored_paths_run_the_kernels_the_two_asset_group_compiled():
    precompile.two_asset()
    compiled = _signatures()
    assert any(compiled.values())

    paths = simulate_scenario(REGIMES["bear"], 3, 7, horizon_years=1)
    stored = evaluate(_as_stored(paths), sample_configs(3, 5))

    assert _signatures() == compiled
    assert stored.equals(evaluate(paths, sample_configs(3, 5)))


def test_stored_paths_and_histories_run_the_kernels_the_portfolio_group_compiled():
    precompile.portfolio()
    precompile.todays_weights_of_every_mix()
    compiled = _signatures()

    configs = [dataclasses.replace(c, risky_mix=mix, defensive_mix=mix)
               for c, mix in zip(sample_configs(3, 2), BASE_MIXES, strict=True)]
    paths = simulate_portfolio(GLOBAL_SIX, REGIMES["bull"], 3, 4, horizon_years=3)
    stored = evaluate_portfolio(_as_stored(paths), configs)
    history = synthetic_portfolio_data(GLOBAL_SIX, dt.date(2025, 6, 30), years=3).history
    by_column = history.select(GLOBAL_SIX.names).to_numpy().T  # Fortran order
    weights = [todays_weights(by_column, GLOBAL_SIX, c) for c in configs]
    backtest_portfolio(history["date"], by_column, history["risk_free"], GLOBAL_SIX, configs[2])

    assert _signatures() == compiled
    assert stored.equals(evaluate_portfolio(paths, configs))
    assert all(np.array_equal(w, todays_weights(np.ascontiguousarray(by_column), GLOBAL_SIX, c))
               for w, c in zip(weights, configs, strict=True))


def test_a_kernel_input_is_a_read_only_view_of_a_contiguous_float_array():
    array = np.arange(12.0).reshape(3, 4)

    view = kernel_input(array)

    assert np.shares_memory(view, array)
    assert not view.flags.writeable
    assert array.flags.writeable
    np.testing.assert_array_equal(view, array)


def test_a_strided_or_integer_kernel_input_is_copied_to_contiguous_float64():
    array = np.arange(24).reshape(4, 6)

    view = kernel_input(array[:, ::2])

    assert view.dtype == np.float64
    assert view.flags.c_contiguous
    assert not view.flags.writeable
    np.testing.assert_array_equal(view, array[:, ::2])


def test_a_read_only_input_is_handed_on_without_a_copy():
    array = np.linspace(0.0, 1.0, 7)
    array.flags.writeable = False

    assert np.shares_memory(kernel_input(array), array)


def test_precompile_runs_every_group_in_processes_of_their_own():
    seconds = precompile.precompile(jobs=2)

    assert set(seconds) == set(precompile.GROUPS) | set(precompile.LAST)
    assert all(s > 0 for s in seconds.values())


_COMPILED_BY = """
import sys
from engine import precompile
from engine.portfolio.kernels import run_rule
from engine.portfolio.sleeve_mixes import _sleeve_mixes
from engine.portfolio.path_kernels import portfolio_days
getattr(precompile, sys.argv[1])()
print(*(len(k.signatures) for k in (portfolio_days, _sleeve_mixes, run_rule)))
"""


@pytest.mark.parametrize(("step", "compiled"), [
    ("portfolio_mixes", ["1", "1", "0"]), ("portfolio_rule", ["0", "0", "1"])])
def test_the_mixes_and_the_rule_pass_compile_in_groups_of_their_own(step, compiled):
    """The two longest multi-asset kernels compile side by side: the rule pass runs on
    made-up mixes and levels, without compiling the paths or the mixes (a new process
    each: a kernel's signatures are those its process compiled or loaded)."""
    done = subprocess.run([sys.executable, "-c", _COMPILED_BY, step], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == compiled


def test_the_rule_pass_compiled_alone_is_the_sweeps():
    """The portfolio sweep after the mixes and the rule pass compiled them alone adds no
    signature to either: the made-up inputs have the sweep's types."""
    precompile.portfolio_mixes()
    precompile.portfolio_rule()
    compiled = _signatures()
    precompile.portfolio()
    after = _signatures()
    for name in ("engine.portfolio.kernels.run_rule",
                 "engine.portfolio.sleeve_mixes._sleeve_mixes"):
        assert len(compiled[name]) == 1 and after[name] == compiled[name], name


def test_precompile_refuses_no_jobs(capsys):
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        precompile.precompile(jobs=0)
    with pytest.raises(SystemExit):
        precompile.main(["--jobs", "0"])
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err
