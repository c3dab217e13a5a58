"""The convergence half of the agent's stop rule: a best-so-far that stopped improving."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from engine.validation import ConfigError, check_int_range, check_range


def convergence(
    scores_in_order: Sequence[float] | np.ndarray,
    window: int = 20,
    tolerance: float = 0.01,
    *,
    min_iteration: int = 1,
    batches: Sequence[int] | None = None,
) -> tuple[pl.DataFrame, int | None]:
    """Best score so far in evaluation order, and the iteration where the search may stop.

    Parameters
    ----------
    scores_in_order : the objective of each config in evaluation order; NaN counts as
        -inf (never the best).
    window : number of consecutive configs the improvement is measured over, >= 1.
    tolerance : relative improvement below which the search has converged, in [0, 1].
    min_iteration : the first 1-based iteration at which the rule may fire (the loop
        passes ``batches`` instead, which keeps round 0 out of the rule by itself).
    batches : the sizes of the rounds, in evaluation order, summing to the number of
        scores; None: every config is a round of its own.

    Returns
    -------
    The table (iteration from 1, score, best_score, converged) and the first 1-based
    iteration where ``converged`` is true, or None.

    Notes
    -----
    best_i = max_{j<=i} score_j. The rule fires at iteration i >= max(window + 1,
    min_iteration) when best_i - best_{i-window} < tolerance |best_{i-window}|: less than
    a 1% (tolerance) improvement over the last ``window`` configs. The inequality is
    strict, so a best of exactly 0 never converges by it (max_configs or the time budget
    stop the search then).

    When rounds are batches (``batches`` given), the order inside a batch is arbitrary, so
    the rule is tested only where a batch ends, over the whole batch at least, and never
    against a point inside the first batch (the initial design): at the last iteration n
    of a batch whose first iteration is s, with m = min(n - window, s - 1), it fires when
    m >= n_0 (the first batch's size) and best_n - best_m < tolerance |best_m|. A batch
    that raised the best by ``tolerance`` or more therefore never ends converged, however
    large it is (a window of 20 configs ending inside a batch of 64 would otherwise see
    only a flat tail of that batch), and the search goes on for at least ``window``
    configs after the initial design. With batches of one config this is the rule above.
    """
    window = check_int_range("convergence", "window", window, 1, 1_000_000)
    check_range("convergence", "tolerance", tolerance, 0.0, 1.0)
    scores = np.asarray(scores_in_order, dtype=np.float64)
    best = np.maximum.accumulate(np.where(np.isnan(scores), -np.inf, scores))
    sizes = [1] * len(best) if batches is None else [int(b) for b in batches]
    if sum(sizes) != len(best) or min(sizes, default=1) < 1:
        raise ConfigError(f"convergence.batches = {list(sizes)} must be positive sizes summing"
                          f" to the {len(best)} scores")
    converged = np.zeros(len(best), dtype=bool)
    ends = np.cumsum(sizes)
    for end, size in zip(ends, sizes, strict=True):
        reference = min(end - window, end - size)
        if reference >= max(sizes[0], 1):
            past = best[reference - 1]
            with np.errstate(invalid="ignore"):
                converged[end - 1] = best[end - 1] - past < tolerance * abs(past)
    converged[: max(min_iteration - 1, 0)] = False
    stop = int(np.argmax(converged)) + 1 if converged.any() else None
    table = pl.DataFrame(
        {
            "iteration": np.arange(1, len(best) + 1),
            "score": scores,
            "best_score": best,
            "converged": converged,
        }
    )
    return table, stop
