"""The two-asset default reproduces the outputs stored from the code before the
multi-asset portfolio, bit for bit (tests/engine/data/make_two_asset_golden.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.conventions import DT_DAY
from engine.market.regimes import REGIMES
from tests.engine.data.make_two_asset_golden import GOLDEN, golden_arrays


@pytest.fixture(scope="module")
def stored() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def recomputed() -> dict[str, np.ndarray]:
    return golden_arrays()


def test_same_keys(stored, recomputed):
    assert sorted(stored) == sorted(recomputed)


def test_every_array_bit_identical(stored, recomputed):
    for key, expected in stored.items():
        actual = recomputed[key]
        assert actual.dtype == expected.dtype, key
        assert actual.shape == expected.shape, key
        if expected.dtype.kind == "f":
            assert np.array_equal(actual.view(np.uint64), expected.view(np.uint64)), key
        else:
            assert np.array_equal(actual, expected), key


def test_a_case_reaches_the_qe_exponential_branch(stored):
    # psi = s^2 / m^2 > 1.5 on a stored variance: the step from it took the exponential branch.
    regime = REGIMES["low_vol"]
    kappa, theta, sigma = regime.heston_kappa, regime.variance, regime.vol_of_vol
    decay = math.exp(-kappa * DT_DAY)
    v = stored["low_vol_physical_qe/paths/variance"][:, :-1]
    m = theta + (v - theta) * decay
    s2 = v * sigma**2 * decay * (1 - decay) / kappa + theta * sigma**2 * (1 - decay) ** 2 / (
        2 * kappa)
    assert (s2 / m**2 > 1.5).sum() > 100
