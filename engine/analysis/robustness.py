"""Robustness across scenarios: best configs, robustness scores, sensitivity, convergence.

Every function takes the stacked evaluation table (engine.strategy.evaluate over all
scenarios: one row per (scenario, config)) and a ``metric`` column, Sharpe by default.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

DEFAULT_METRIC = "sharpe_mean"
SENSITIVITY_PARAMETERS = ("target_vol", "weight_fn", "vol_window_months", "risk_aversion",
                          "tc_bps")


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


def normalised_scores(evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC) -> pl.DataFrame:
    """Each (scenario, config)'s min-max normalised metric within its scenario.

    Notes
    -----
    s = (m - min_c m) / (max_c m - min_c m) in [0, 1], 1 for the scenario's best config
    and 0 for its worst; defined whatever the sign of the best (the bear regime's best
    Sharpe may be negative). A scenario whose configs all tie scores 1 everywhere. A null
    or NaN metric is undefined: it scores null and takes no part in the min and max.
    """
    lo = pl.col(metric).min().over("scenario")
    hi = pl.col(metric).max().over("scenario")
    spread = hi - lo
    return evaluations.select(
        "scenario",
        "config_id",
        pl.col(metric),
        pl.when(~_defined(metric)).then(None)
        .when(spread > 0).then((pl.col(metric) - lo) / spread).otherwise(1.0)
        .alias("normalised_score"),
    )


def robustness_scores(
    evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC, threshold: float = 0.80
) -> pl.DataFrame:
    """Per config: robustness score = min over scenarios of its normalised score.

    Columns: config_id, robustness_score, worst_scenario, n_scenarios, robust
    (score >= threshold), rank (1 = most robust), sorted by rank. A config without a
    defined metric in every scenario of the table is left out.
    """
    normalised = normalised_scores(evaluations, metric)
    n_scenarios = evaluations["scenario"].n_unique()
    return (
        normalised.filter(pl.col("normalised_score").is_not_null())
        .sort(["config_id", "normalised_score", "scenario"])
        .group_by("config_id", maintain_order=True)
        .agg(
            pl.col("normalised_score").first().alias("robustness_score"),
            pl.col("scenario").first().alias("worst_scenario"),
            pl.len().alias("n_scenarios"),
        )
        .filter(pl.col("n_scenarios") == n_scenarios)
        .with_columns((pl.col("robustness_score") >= threshold).alias("robust"))
        .sort(["robustness_score", "config_id"], descending=[True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"))
    )


def parameter_sensitivity(
    evaluations: pl.DataFrame, metric: str = DEFAULT_METRIC, n_bins: int = 5
) -> pl.DataFrame:
    """Each parameter's main-effect share of the metric's variance, per scenario.

    Notes
    -----
    The share is the correlation ratio eta^2 = Var(E[m | level]) / Var(m), levels being
    the weight function's categories and, for numeric parameters, ``n_bins`` quantile
    bins of the sampled values (right-closed at the sample quantiles). For a Latin
    hypercube the parameters are nearly orthogonal, so eta^2 approximates the
    first-order Sobol index; shares need not sum to 1 (the remainder is interactions
    and binning error). A scenario whose metric is
    constant gives every parameter a share of 0.
    """
    rows = []
    for (scenario,), frame in evaluations.group_by("scenario", maintain_order=True):
        # A constant metric has no variance to share out; var() of equal floats can
        # round to ~1e-33 rather than 0, which would make every share 1.
        constant = frame[metric].max() == frame[metric].min()
        total = 0.0 if constant else frame[metric].var(ddof=0)
        for parameter in SENSITIVITY_PARAMETERS:
            levels = _levels(frame, parameter, n_bins)
            means = frame.select(levels.alias("level"), pl.col(metric)).group_by("level").agg(
                pl.col(metric).mean().alias("m"), pl.len().alias("n")
            )
            grand = frame[metric].mean()
            between = float(((means["m"] - grand) ** 2 * means["n"]).sum()) / frame.height
            share = between / total if total and total > 0 else 0.0
            rows.append({"scenario": scenario, "parameter": parameter, "main_effect_share": share})
    return pl.DataFrame(rows).sort(["scenario", "main_effect_share"], descending=[False, True])


def interaction_table(
    evaluations: pl.DataFrame,
    metric: str = DEFAULT_METRIC,
    window_edges: Sequence[int] = (6, 12, 18, 25),
) -> pl.DataFrame:
    """Mean metric per scenario x weight_fn x vol-window band ([6, 12), [12, 18), [18, 24]).

    Columns: scenario, weight_fn, vol_window_band, mean_<metric>, n_configs.
    """
    edges = list(window_edges)
    labels = [f"{lo}-{hi - 1}m" for lo, hi in itertools.pairwise(edges)]
    band_index = np.searchsorted(edges[1:-1], evaluations["vol_window_months"].to_numpy(),
                                 side="right")
    band = pl.Series(np.asarray(labels)[band_index])
    return (
        evaluations.with_columns(band.cast(pl.String).alias("vol_window_band"))
        .group_by("scenario", "weight_fn", "vol_window_band")
        .agg(pl.col(metric).mean().alias(f"mean_{metric}"), pl.len().alias("n_configs"))
        .sort("scenario", "weight_fn", "vol_window_band")
    )


def convergence(
    scores_in_sample_order: Sequence[float] | np.ndarray, window: int = 20, tolerance: float = 0.01
) -> tuple[pl.DataFrame, int | None]:
    """Best score so far in sampling order, and the iteration where sampling may stop.

    Notes
    -----
    best_i = max_{j<=i} score_j. The stop rule fires at the first i >= window with
    best_i - best_{i-window} < tolerance |best_{i-window}| (less than 1% improvement over
    the last ``window`` configs). Returns the table (iteration from 1, score, best_score,
    converged) and the 1-based stop iteration, or None if the rule never fires.
    """
    scores = np.asarray(scores_in_sample_order, dtype=np.float64)
    best = np.maximum.accumulate(scores)
    converged = np.zeros(len(best), dtype=bool)
    if len(best) > window:
        past = best[:-window]
        converged[window:] = best[window:] - past < tolerance * np.abs(past)
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


def _defined(metric: str) -> pl.Expr:
    """True where the metric is neither null nor NaN (polars sorts NaN above every number)."""
    return pl.col(metric).is_not_null() & ~pl.col(metric).is_nan().fill_null(True)


def _levels(frame: pl.DataFrame, parameter: str, n_bins: int) -> pl.Expr:
    column = pl.col(parameter)
    if frame.schema[parameter] == pl.String or frame[parameter].n_unique() <= n_bins:
        return column.cast(pl.String)
    values = frame[parameter].to_numpy().astype(np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return pl.lit(pl.Series(np.searchsorted(edges, values, side="left"))).cast(pl.String)
