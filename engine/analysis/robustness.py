"""Robustness across scenarios: the best config per scenario, relative scores, robustness.

Every function takes the stacked evaluation table (engine.strategy.evaluate over all
scenarios: one row per (scenario, config)) and a ``metric`` column, Sharpe by default.
"""

from __future__ import annotations

import polars as pl

DEFAULT_METRIC = "sharpe_mean"
BEST_FLOOR = 1e-12
"""Floor of |best_s| in the relative score's denominator; it only matters when best_s = 0."""


def best_per_scenario(evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC) -> pl.DataFrame:
    """The config with the highest ``metric`` in each scenario (ties: lowest config_id).

    Rows whose metric is null or NaN are undefined and never best.
    """
    return (
        evaluations.filter(_defined(metric))
        .sort(["scenario", metric, "config_id"], descending=[False, True, False])
        .group_by("scenario", maintain_order=True)
        .first()
        .select("scenario", "config_id", pl.col(metric).alias(f"best_{metric}"))
    )


def relative_scores(evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC) -> pl.DataFrame:
    """Each (scenario, config)'s metric relative to the best config of its scenario.

    Parameters
    ----------
    evaluations : one row per (scenario, config) with columns scenario, config_id, ``metric``.
    metric : the column compared, ``sharpe_mean`` (mean Sharpe across paths) by default.

    Returns
    -------
    Columns scenario, config_id, ``metric``, ``best_<metric>``, relative_score, in the
    order of ``evaluations``.

    Notes
    -----
    With m the config's metric and best_s the highest m in scenario s among the configs
    of the table (the configs evaluated so far)::

        r = 1 - (best_s - m) / max(|best_s|, BEST_FLOOR)

    r is 1 for the best config and 1 - (the shortfall as a fraction of |best_s|) for the
    others: r = m / best_s when best_s > 0, so r >= 0.8 reads "keeps at least 80% of the
    best". When every metric of s is negative, r still falls with the distance from the
    best: best -0.2, m -0.3 gives r = 1 - 0.1 / 0.2 = 0.5. r has no lower bound.

    best_s = 0 (a scale-free best) is the one case the literal formula divides by zero;
    the floor BEST_FLOOR = 1e-12 keeps r = 1 for the best configs and a finite, ordered,
    very negative r for the others (any shortfall from a zero best counts as huge). The
    floor changes nothing else: |best_s| < 1e-12 does not occur with Monte Carlo Sharpes.

    A null or NaN metric is undefined: it is never best and scores null.
    """
    best = pl.when(_defined(metric)).then(pl.col(metric)).max().over("scenario")
    scale = pl.max_horizontal(best.abs(), pl.lit(BEST_FLOOR))
    return evaluations.select(
        "scenario",
        "config_id",
        pl.col(metric),
        best.alias(f"best_{metric}"),
        pl.when(_defined(metric))
        .then(1.0 - (best - pl.col(metric)) / scale)
        .otherwise(None)
        .alias("relative_score"),
    )


def robustness_scores(
    evaluations: pl.DataFrame, threshold: float, metric: str = DEFAULT_METRIC
) -> pl.DataFrame:
    """Per config: robustness = min over scenarios of its relative score.

    Parameters
    ----------
    evaluations : one row per (scenario, config), as for :func:`relative_scores`.
    threshold : the robustness a config needs to count as robust
        (``InvestmentObjectives.robustness_threshold``).
    metric : the column compared.

    Returns
    -------
    Columns config_id, robustness, worst_scenario (where the min is reached; ties: first
    scenario name), n_scenarios, robust (robustness >= threshold), rank (1 = most robust,
    ties by config_id), sorted by rank. A config without a defined metric in every
    scenario of the table is left out.

    Notes
    -----
    robustness = min_s r_s with r_s of :func:`relative_scores`: a config with robustness
    0.8 keeps at least 80% of the best config's metric in every scenario (where that best
    is positive).
    """
    relative = relative_scores(evaluations, metric)
    n_scenarios = evaluations["scenario"].n_unique()
    return (
        relative.filter(pl.col("relative_score").is_not_null())
        .sort(["config_id", "relative_score", "scenario"])
        .group_by("config_id", maintain_order=True)
        .agg(
            pl.col("relative_score").first().alias("robustness"),
            pl.col("scenario").first().alias("worst_scenario"),
            pl.len().alias("n_scenarios"),
        )
        .filter(pl.col("n_scenarios") == n_scenarios)
        .with_columns((pl.col("robustness") >= threshold).alias("robust"))
        .sort(["robustness", "config_id"], descending=[True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"))
    )


def _defined(metric: str) -> pl.Expr:
    """True where the metric is neither null nor NaN (polars sorts NaN above every number)."""
    return pl.col(metric).is_not_null() & ~pl.col(metric).is_nan().fill_null(True)
