"""The strategy simulation reproduces its stored reference bit for bit.

tests/engine/data/make_metrics_golden.py stored, with the code before the metrics were
fused into compiled passes, every per-path array of ``run_strategies`` and every column of
``evaluate`` for three small fixed cases (NaN Sortino paths, a one-year horizon, more than
128 paths). Any reordering of floating-point operations shows up here as a failure.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.strategy import evaluate, market_from_paths
from engine.strategy.kernels import pairwise_sum
from engine.strategy.portfolio import run_strategies
from tests.engine.data.make_metrics_golden import CONFIGS, GOLDEN, golden_cases

CASES = golden_cases()


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as stored:
        return {key: stored[key] for key in stored.files}


def _assert_same_bits(actual: np.ndarray, expected: np.ndarray, key: str) -> None:
    assert actual.shape == expected.shape, key
    if expected.dtype.kind == "f":
        np.testing.assert_array_equal(actual.view(np.int64), expected.view(np.int64),
                                      err_msg=key)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=key)


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_strategies_per_path_arrays_are_bit_identical(case, golden):
    run = run_strategies(market_from_paths(CASES[case]), CONFIGS)
    arrays = {"monthly_returns": run.monthly_returns, "weights": run.weights,
              "costs": run.costs, **run.metrics}
    stored = sorted(k.split("/")[-1] for k in golden if k.startswith(f"{case}/run/"))
    assert sorted(arrays) == stored
    for name, values in arrays.items():
        _assert_same_bits(np.asarray(values, dtype=np.float64), golden[f"{case}/run/{name}"],
                          f"{case}/run/{name}")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("chunk_bytes", [None, 1])
def test_evaluate_columns_are_bit_identical(case, chunk_bytes, golden):
    kwargs = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    table = evaluate(CASES[case], CONFIGS, **kwargs)
    assert table.columns == golden[f"{case}/evaluate/__columns__"].tolist()
    for column in table.columns:
        expected = golden[f"{case}/evaluate/{column}"]
        series = table[column]
        actual = (np.array(series.to_list()) if expected.dtype.kind == "U"
                  else series.to_numpy())
        _assert_same_bits(actual, expected, f"{case}/evaluate/{column}")


@pytest.mark.parametrize("n", [1, 7, 8, 60, 127, 128, 129, 360, 1000, 4099])
def test_pairwise_sum_adds_in_numpys_order(n):
    # Magnitudes spread over 1e-9..1e9 make every change of addition order visible.
    rng = np.random.default_rng(n)
    values = rng.standard_normal(n + 3) * np.exp(rng.uniform(-20.0, 20.0, n + 3))
    assert 0.0 + pairwise_sum(values, 3, n) == np.sum(values[3:])
