"""Robustness across scenarios: the best config per scenario, relative scores, robustness.

Every function takes the stacked evaluation table (engine.strategy.evaluate over all
scenarios: one row per (scenario, config)) and a ``metric`` column, Sharpe by default.
"""

from __future__ import annotations

import polars as pl

from engine.objectives import Limit, within

DEFAULT_METRIC = "sharpe_mean"
BEST_FLOOR = 1e-12
"""Floor of |best_s| in the relative score's denominator; it only matters when best_s = 0."""
VOL_COLUMN = "ann_vol_median"
"""The realised vol a config's membership of the mandate's vol band is read from."""

VolBand = tuple[float, float]


def _best(metric: str, vol_band: VolBand | None) -> tuple[pl.Expr, pl.Expr]:
    """best_s per scenario and whether it came from the configs inside the vol band.

    With a band [low, high]: the highest defined metric among the configs whose
    ann_vol_median lies in the band in that scenario; when none does, the highest among
    all configs of the scenario. Without a band: the highest among all.
    """
    overall = pl.when(_defined(metric)).then(pl.col(metric)).max().over("scenario")
    if vol_band is None:
        return overall, pl.lit(False)
    band = Limit("pass_vol", VOL_COLUMN, *vol_band)
    inside = _defined(metric) & within(pl.col(VOL_COLUMN).fill_nan(None), band).fill_null(False)
    banded = pl.when(inside).then(pl.col(metric)).max().over("scenario")
    return pl.coalesce(banded, overall), banded.is_not_null()


def best_per_scenario(
    evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC, *, vol_band: VolBand | None = None
) -> pl.DataFrame:
    """The config that sets best_s in each scenario (ties: lowest config_id).

    With ``vol_band``, the best among the configs whose ann_vol_median lies in the band
    in that scenario, or among all when none does (:func:`relative_scores`). Rows whose
    metric is null or NaN are undefined and never best.
    """
    best, _ = _best(metric, vol_band)
    return (
        evaluations.filter(_defined(metric))
        .filter(pl.col(metric) == best)
        .sort(["scenario", "config_id"])
        .group_by("scenario", maintain_order=True)
        .first()
        .select("scenario", "config_id", pl.col(metric).alias(f"best_{metric}"))
    )


def relative_scores(
    evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC, *, vol_band: VolBand | None = None
) -> pl.DataFrame:
    """Each (scenario, config)'s metric relative to the best config of its scenario.

    Parameters
    ----------
    evaluations : one row per (scenario, config) with columns scenario, config_id,
        ``metric`` (and ann_vol_median when ``vol_band`` is given).
    metric : the column compared, ``sharpe_mean`` (mean Sharpe across paths) by default.
    vol_band : the mandate's vol band (low, high), annualised
        (``InvestmentObjectives.vol_band``); None takes best_s over every config.

    Returns
    -------
    Columns scenario, config_id, ``metric``, ``best_<metric>``, best_within_band (best_s
    came from a config inside the band; False without a band or when the scenario fell
    back to all configs), relative_score, in the order of ``evaluations``.

    Notes
    -----
    With m the config's metric and best_s the highest m in scenario s among the configs
    of the table (the configs evaluated so far) whose ann_vol_median lies in the vol
    band in s, or among all of them when none does::

        r = 1 - (best_s - m) / max(|best_s|, BEST_FLOOR)

    r is 1 for the best config and 1 - (the shortfall as a fraction of |best_s|) for the
    others: r = m / best_s when best_s > 0, so r >= 0.8 reads "keeps at least 80% of the
    best". When every metric of s is negative, r still falls with the distance from the
    best: best -0.2, m -0.3 gives r = 1 - 0.1 / 0.2 = 0.5. r has no lower bound.

    best_s = 0 (a scale-free best) is the one case the literal formula divides by zero;
    the floor BEST_FLOOR = 1e-12 keeps r = 1 for the best configs and a finite, ordered,
    very negative r for the others (any shortfall from a zero best counts as huge). The
    floor changes nothing else: |best_s| < 1e-12 does not occur with Monte Carlo Sharpes.

    Why the band: in a bear or high-vol regime the highest Sharpe is what an almost
    all-bond rule earns, and measured against it only bond-heavy rules keep 80%; a rule
    could then be "robust" by holding little equity, whatever the mandate asked. Taking
    best_s among the rules that deliver the mandate's vol measures every rule against
    the best rule the committee could adopt there. A config outside the band may beat
    that best (r > 1 in that scenario); robustness takes the min over scenarios, and
    the vol penalty (engine.analysis.scoring) judges its vol.

    A null or NaN metric is undefined: it is never best and scores null.
    """
    best, within = _best(metric, vol_band)
    scale = pl.max_horizontal(best.abs(), pl.lit(BEST_FLOOR))
    return evaluations.select(
        "scenario",
        "config_id",
        pl.col(metric),
        best.alias(f"best_{metric}"),
        within.alias("best_within_band"),
        pl.when(_defined(metric))
        .then(1.0 - (best - pl.col(metric)) / scale)
        .otherwise(None)
        .alias("relative_score"),
    )


def robustness_scores(
    evaluations: pl.DataFrame,
    threshold: float,
    metric: str = DEFAULT_METRIC,
    *,
    vol_band: VolBand | None = None,
) -> pl.DataFrame:
    """Per config: robustness = min over scenarios of its relative score.

    Parameters
    ----------
    evaluations : one row per (scenario, config), as for :func:`relative_scores`.
    threshold : the robustness a config needs to count as robust
        (``InvestmentObjectives.robustness_threshold``).
    metric : the column compared.
    vol_band : the mandate's vol band that best_s is taken within (:func:`relative_scores`).

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
    relative = relative_scores(evaluations, metric, vol_band=vol_band)
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
