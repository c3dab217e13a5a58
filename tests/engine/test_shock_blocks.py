"""Shock blocks: the blocks drawn ahead by a helper thread are the one-shot draw of every
day, split at the block size."""

from __future__ import annotations

import numpy as np
import pytest

from engine.market.heston import draw_normals
from engine.market.shock_blocks import SHOCK_BLOCK_BYTES, shock_blocks

CHOL = np.linalg.cholesky(np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.1], [-0.2, 0.1, 1.0]]))


@pytest.mark.parametrize("antithetic", [False, True])
@pytest.mark.parametrize("n_steps", [1, 7, 8, 9, 23])
def test_blocks_are_the_one_shot_draw_split_at_the_block_size(monkeypatch, antithetic, n_steps):
    n_paths = 6
    monkeypatch.setattr("engine.market.shock_blocks.SHOCK_BLOCK_BYTES", 8 * 3 * n_paths * 8)
    blocks = list(shock_blocks(np.random.default_rng(5), CHOL, n_paths, n_steps,
                               antithetic=antithetic))
    whole = np.matmul(CHOL, draw_normals(np.random.default_rng(5), 3, n_paths,
                                         antithetic=antithetic, n_steps=n_steps))
    assert [t0 for t0, _ in blocks] == list(range(0, n_steps, 8))
    assert [len(shocks) for _, shocks in blocks] == [min(8, n_steps - t0)
                                                      for t0 in range(0, n_steps, 8)]
    np.testing.assert_array_equal(np.concatenate([shocks for _, shocks in blocks]), whole)


def test_block_days_fill_the_block_bytes():
    n_paths = 1000
    (_, first), *_ = shock_blocks(np.random.default_rng(0), CHOL, n_paths, 10**4,
                                  antithetic=False)
    assert first.shape == (SHOCK_BLOCK_BYTES // (3 * 8 * n_paths), 3, n_paths)
