"""The convergence half of the agent's stop rule: a best-so-far that stopped improving."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from engine.validation import check_int_range, check_range


def convergence(
    scores_in_order: Sequence[float] | np.ndarray,
    window: int = 20,
    tolerance: float = 0.01,
    *,
    min_iteration: int = 1,
) -> tuple[pl.DataFrame, int | None]:
    """Best score so far in evaluation order, and the iteration where the search may stop.

    Parameters
    ----------
    scores_in_order : the objective of each config in evaluation order; NaN counts as
        -inf (never the best).
    window : number of consecutive configs the improvement is measured over, >= 1.
    tolerance : relative improvement below which the search has converged, in [0, 1].
    min_iteration : the first 1-based iteration at which the rule may fire (the loop
        passes the size of its Latin-hypercube round 0 plus one).

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
    """
    window = check_int_range("convergence", "window", window, 1, 1_000_000)
    check_range("convergence", "tolerance", tolerance, 0.0, 1.0)
    scores = np.asarray(scores_in_order, dtype=np.float64)
    best = np.maximum.accumulate(np.where(np.isnan(scores), -np.inf, scores))
    converged = np.zeros(len(best), dtype=bool)
    if len(best) > window:
        past = best[:-window]
        with np.errstate(invalid="ignore"):
            converged[window:] = best[window:] - past < tolerance * np.abs(past)
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
