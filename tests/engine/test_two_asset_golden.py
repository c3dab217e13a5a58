"""The two-asset default reproduces the outputs stored from the code before the
multi-asset portfolio, bit for bit (tests/engine/data/make_two_asset_golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

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
