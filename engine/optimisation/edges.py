"""Whether the best config sits on the edge of a searched range."""

from __future__ import annotations

import math

import polars as pl

from engine.optimisation.search_space import SearchSpace

EDGE_PARAMETERS: tuple[str, ...] = ("target_vol", "vol_window_months", "risk_aversion")
"""The numeric searched parameters whose ranges have edges (weight_fn is categorical)."""

EDGE_MARGIN = 0.05
"""A value within this fraction of its range's width from a bound is at that edge."""


def optimum_edges(history: pl.DataFrame, space: SearchSpace) -> str | None:
    """The searched ranges whose edge the best config sits on, as one sentence, or None.

    Parameters
    ----------
    history : one row per config with objective and the parameter columns
        (:func:`engine.optimisation.loop.optimisation_history`).
    space : the ranges searched.

    Returns
    -------
    e.g. ``"target_vol 0.05 at the lower bound 0.05 of [0.05, 0.2]"``; several findings
    are joined by ``"; "``. None when the best config is inside every range, or no
    config has an objective.

    Notes
    -----
    The best config is the one with the highest objective (ties: lowest config_id). For
    a parameter with range [lo, hi], its value x is at the lower edge when
    x - lo <= EDGE_MARGIN (hi - lo), at the upper edge when hi - x <= EDGE_MARGIN
    (hi - lo); 5% of the default 0.05-0.20 target_vol range is 0.0075. risk_aversion is
    skipped where null (the inverse rules ignore it). A best value at an edge says the
    optimum may lie beyond the range searched: the report says so.
    """
    scored = history.filter(pl.col("objective").is_not_null()
                            & ~pl.col("objective").is_nan())
    if scored.height == 0:
        return None
    best = scored.sort(["objective", "config_id"], descending=[True, False]).row(0, named=True)
    findings = []
    for name in EDGE_PARAMETERS:
        value = best.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        low, high = getattr(space, name)
        margin = EDGE_MARGIN * (high - low) + 1e-12  # 0.2 - 0.1925 is 0.0075000000000000066
        for side, bound, distance in (("lower", low, value - low), ("upper", high, high - value)):
            if distance <= margin:
                findings.append(f"{name} {value:g} at the {side} bound {bound:g} of"
                                f" [{low:g}, {high:g}]")
                break
    return "; ".join(findings) or None
