"""The shape of a search so far: incumbents, the parameters that mattered, what is unexplored.

A summary of the history table a proposer (or a person) can read in a few lines instead
of hundreds of rows; the Bedrock proposer puts it in its prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.optimisation.search_space import SearchSpace
from engine.validation import check_int_range

CONTINUOUS: tuple[str, ...] = ("target_vol", "vol_window_months", "risk_aversion")


@dataclass(frozen=True, slots=True)
class SearchLandscape:
    """What :func:`search_landscape` returns.

    incumbents : the best config of each weight function, best first: weight_fn,
        config_id, target_vol, vol_window_months, risk_aversion, objective, configs (how
        many of that weight function were evaluated).
    influence : one row per parameter, most influential first: parameter, spread (the
        best bin's mean objective minus the worst bin's), best_bin (the range or level of
        the best bin).
    unexplored : the (weight_fn, target_vol bin, vol_window_months bin) cells of the
        space without any evaluated config: weight_fn, target_vol_low, target_vol_high,
        window_low, window_high.
    """

    incumbents: pl.DataFrame
    influence: pl.DataFrame
    unexplored: pl.DataFrame


def search_landscape(
    history: pl.DataFrame, space: SearchSpace, *, bins: int = 4
) -> SearchLandscape:
    """Summarise the evaluated configs of ``history`` over ``space``.

    Parameters
    ----------
    history : the optimisation history (weight_fn, config_id, the parameters, objective);
        rows without an objective are left out.
    space : the ranges the bins split.
    bins : equal-width bins per numeric parameter, in [1, 20].

    Notes
    -----
    A numeric parameter's range [lo, hi] is split into ``bins`` equal bins (a value on an
    inner edge goes to the upper bin, hi to the last); weight_fn's bins are its levels.
    spread_p = max_b mean(objective | p in b) - min_b mean(objective | p in b) over the
    non-empty bins: how much the objective moves with p, the other parameters averaged
    over what was evaluated (a main effect; 0 when one bin holds every config).
    risk_aversion counts only the linear and sigmoid configs.
    """
    bins = check_int_range("search_landscape", "bins", bins, 1, 20)
    scored = history.filter(pl.col("objective").is_not_null()
                            & pl.col("objective").is_not_nan())
    ranked = scored.sort(["objective", "config_id"], descending=[True, False])
    incumbents = (
        ranked.group_by("weight_fn", maintain_order=True)
        .agg(pl.col("config_id", *CONTINUOUS, "objective").first(), pl.len().alias("configs"))
        .with_columns(pl.col("configs").cast(pl.Int64))
    )
    rows = []
    for name in ("weight_fn", *CONTINUOUS):
        values = scored.filter(pl.col(name).is_not_null())
        if values.is_empty():
            continue
        labels = _bin_labels(values[name], name, space, bins)
        means = (values.select("objective").with_columns(bin=pl.Series(labels))
                 .group_by("bin").agg(pl.col("objective").mean())
                 .sort(["objective", "bin"], descending=[True, False]))
        spread = float(means["objective"].max() - means["objective"].min())
        rows.append({"parameter": name, "spread": spread, "best_bin": means["bin"][0]})
    influence = pl.DataFrame(
        rows, schema={"parameter": pl.String, "spread": pl.Float64, "best_bin": pl.String}
    ).sort("spread", descending=True)
    return SearchLandscape(incumbents, influence, _unexplored(scored, space, bins))


def _edges(bounds: tuple[float, float], bins: int) -> np.ndarray:
    return np.linspace(bounds[0], bounds[1], bins + 1)


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value: inner edges go to the upper bin, the last edge to the last."""
    return np.minimum(np.searchsorted(edges, values, side="right") - 1, len(edges) - 2)


def _bin_labels(values: pl.Series, name: str, space: SearchSpace, bins: int) -> list[str]:
    if name == "weight_fn":
        return values.to_list()
    edges = _edges(getattr(space, name), bins)
    index = _bin_index(values.to_numpy().astype(np.float64), edges)
    return [f"{edges[k]:.4g}-{edges[k + 1]:.4g}" for k in index]


def _unexplored(scored: pl.DataFrame, space: SearchSpace, bins: int) -> pl.DataFrame:
    tv = _edges(space.target_vol, bins)
    win = _edges(space.vol_window_months, bins)
    seen = set(zip(scored["weight_fn"].to_list(),
                   _bin_index(scored["target_vol"].to_numpy().astype(np.float64), tv).tolist(),
                   _bin_index(scored["vol_window_months"].to_numpy().astype(np.float64),
                              win).tolist(), strict=True))
    cells = [
        {"weight_fn": fn, "target_vol_low": float(tv[i]), "target_vol_high": float(tv[i + 1]),
         "window_low": float(win[j]), "window_high": float(win[j + 1])}
        for fn in space.weight_fns for i in range(bins) for j in range(bins)
        if (fn, i, j) not in seen
    ]
    return pl.DataFrame(cells, schema={"weight_fn": pl.String, "target_vol_low": pl.Float64,
                                       "target_vol_high": pl.Float64,
                                       "window_low": pl.Float64, "window_high": pl.Float64})


def search_rounds(history: pl.DataFrame) -> pl.DataFrame:
    """How the search went, one row per round of the history.

    Returns
    -------
    round, configs, proposers (each proposer with its count, e.g. "tpe 8, trust_region
    8"), best_objective (the best objective so far at the end of the round, on the
    history's rescored objectives), improvements (configs of the round that raised the
    best when evaluated) and improved_by (their proposers with counts, "" for none).
    Needs the history columns round, proposer, improved and round_best_objective.
    """
    counts = (history.group_by("round", "proposer")
              .agg(pl.len().alias("n"), pl.col("improved").sum().alias("gains"),
                   pl.col("evaluation_index").min())
              .sort("round", "evaluation_index"))
    label = pl.col("proposer") + pl.lit(" ") + pl.col("n").cast(pl.String)
    gains = pl.when(pl.col("gains") > 0).then(
        pl.col("proposer") + pl.lit(" ") + pl.col("gains").cast(pl.String))
    per_proposer = counts.group_by("round", maintain_order=True).agg(
        label.str.join(", ").alias("proposers"),
        gains.drop_nulls().str.join(", ").alias("improved_by"))
    totals = history.group_by("round", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("configs"),
        pl.col("round_best_objective").last().alias("best_objective"),
        pl.col("improved").sum().cast(pl.Int64).alias("improvements"))
    return (totals.join(per_proposer, on="round").sort("round")
            .select("round", "configs", "proposers", "best_objective", "improvements",
                    "improved_by"))
