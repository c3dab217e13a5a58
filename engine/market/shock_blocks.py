"""Correlated daily normals of a scenario, block by block, drawn ahead by a helper thread."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.market.heston import draw_normals
from engine.types import FloatArray

SHOCK_BLOCK_BYTES = 4 * 2**20
"""Memory of the correlated normals of one block of days (n_factors x n_paths x days float64)."""


def shock_blocks(rng: np.random.Generator, chol: FloatArray, n_paths: int, n_steps: int, *,
                 antithetic: bool) -> Iterator[tuple[int, FloatArray]]:
    """Yield (t0, shocks) for consecutive blocks of days t0, t0 + 1, ... until ``n_steps``.

    ``shocks`` (days, n_factors, n_paths) is ``chol @ Z`` with Z the block's
    :func:`engine.market.heston.draw_normals` (n_factors = chol's size), each block
    ``SHOCK_BLOCK_BYTES // (8 n_factors n_paths)`` days (at least 1) but the last. The
    blocks are drawn one after the other from ``rng``, so their concatenation is the
    draw of all ``n_steps`` days at once; a helper thread draws the next block while the
    caller steps the one yielded (numpy's generator and a nogil kernel both release the GIL).
    """
    n_factors = chol.shape[0]
    block = max(1, SHOCK_BLOCK_BYTES // (n_factors * 8 * n_paths))
    starts = range(0, n_steps, block)

    def shocks_for(t0: int) -> FloatArray:
        return np.matmul(chol, draw_normals(rng, n_factors, n_paths, antithetic=antithetic,
                                            n_steps=min(block, n_steps - t0)))

    with ThreadPoolExecutor(max_workers=1) as drawer:
        pending = drawer.submit(shocks_for, starts[0])
        for i, t0 in enumerate(starts):
            shocks = pending.result()
            if i + 1 < len(starts):
                pending = drawer.submit(shocks_for, starts[i + 1])
            yield t0, shocks
