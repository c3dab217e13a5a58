"""Local refinement: a trust region around the best config of each weight function.

TPE and Latin hypercubes spread their proposals over the whole space; once the history
holds a good config, the last few percent of objective sit in a small neighbourhood of
it that a global sampler rarely lands in. This proposer samples there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.optimisation.proposers import MAX_ATTEMPTS_PER_CONFIG
from engine.optimisation.search_space import SearchSpace
from engine.rng import as_generator, seed_sequence_for
from engine.strategy.config import DEFAULT_MIX, MIX_FIELDS, RISK_AVERSION_FNS, StrategyConfig
from engine.validation import check_range

SHRINK = 0.5
"""Factor the radius is multiplied by for each round that did not raise the best."""
MIN_RADIUS = 0.01
"""Floor of the radius, as a fraction of each parameter's range."""
ESCAPE = 1.5
"""Growth of the radius per attempt when every draw repeats a known config."""


@dataclass(frozen=True, slots=True)
class TrustRegionProposer:
    """Gaussian steps around the incumbent of each weight function, in a shrinking radius.

    Parameters
    ----------
    space : the search space; every step stays inside it.
    tc_bps : the cost assumption every proposed config carries.
    radius : the initial step, as a fraction of each parameter's range, in (0, 1].

    Notes
    -----
    The incumbent of weight function f is its config with the highest objective in the
    history (configs without an objective are skipped). Half the batch (rounded up) is
    drawn around the overall incumbent; the rest goes to the incumbents of the other
    weight functions in turn, best first, so a second basin is refined too.

    A step moves each continuous parameter in unit coordinates u = (x - lo) / (hi - lo):
    u' = u + rho z, z ~ N(0, 1), reflected back into [0, 1] (so a step never leaves the
    space), x' = lo + u' (hi - lo); vol_window_months the same on its integer range,
    rounded to the nearest month; risk_aversion only for linear and sigmoid. The radius
    is rho = max(radius SHRINK^k, MIN_RADIUS), k the number of rounds since the last one
    that raised the best objective (round 0 included), read off the history, so a round
    is a pure function of (history, n, round_index, seed): it draws from
    SeedSequence(seed, "trust_region", round_index). A draw that repeats a config of the
    history or of the batch is drawn again, the radius growing by ESCAPE per attempt.
    """

    space: SearchSpace
    tc_bps: float
    radius: float = 0.15
    name: str = field(default="trust_region", init=False)

    def __post_init__(self) -> None:
        check_range("TrustRegionProposer", "radius", self.radius, 0.0, 1.0,
                    low_inclusive=False)

    def propose(
        self, history: pl.DataFrame, n: int, *, round_index: int, seed: int
    ) -> list[StrategyConfig]:
        centres = incumbents(history, self.space)
        if not centres:
            raise ValueError("trust_region: the history has no config with an objective")
        rho = max(self.radius * SHRINK ** stalled_rounds(history), MIN_RADIUS)
        rng = as_generator(seed_sequence_for(seed, self.name, str(round_index)))
        seen = set(history["config_id"].to_list())
        configs: list[StrategyConfig] = []
        for centre in allocation(centres, n):
            for attempt in range(MAX_ATTEMPTS_PER_CONFIG):
                config = self.step(centre, min(rho * ESCAPE**attempt, 1.0), rng)
                if config.config_id not in seen:
                    seen.add(config.config_id)
                    configs.append(config)
                    break
            else:
                raise RuntimeError(f"trust_region: no new config near {centre['config_id']}"
                                   f" in {MAX_ATTEMPTS_PER_CONFIG} draws")
        return configs

    def step(self, centre: dict, rho: float, rng: np.random.Generator) -> StrategyConfig:
        """One Gaussian step of radius ``rho`` (unit coordinates) from the row ``centre``; the
        categorical parameters (weight function, base mixes) stay the centre's."""
        space = self.space
        values: dict[str, object] = {
            "weight_fn": centre["weight_fn"],
            "target_vol": _moved(centre["target_vol"], space.target_vol, rho, rng),
            "vol_window_months": round(_moved(centre["vol_window_months"],
                                              space.vol_window_months, rho, rng)),
        }
        if centre["weight_fn"] in RISK_AVERSION_FNS:
            start = centre["risk_aversion"]
            if start is None or math.isnan(start):
                start = sum(space.risk_aversion) / 2
            values["risk_aversion"] = _moved(start, space.risk_aversion, rho, rng)
        for name in MIX_FIELDS:
            values[name] = centre.get(name) or DEFAULT_MIX
        return space.make_config(values, self.tc_bps)


def incumbents(history: pl.DataFrame, space: SearchSpace) -> list[dict]:
    """The best row of each weight function of ``space`` in the history, best first
    (ties by config_id); rows without an objective are skipped."""
    if history.is_empty() or "objective" not in history.columns:
        return []
    scored = history.filter(pl.col("objective").is_not_null() & pl.col("objective").is_not_nan()
                            & pl.col("weight_fn").is_in(list(space.weight_fns)))
    best = (scored.sort(["objective", "config_id"], descending=[True, False])
            .group_by("weight_fn", maintain_order=True).first())
    return list(best.iter_rows(named=True))


def allocation(centres: list[dict], n: int) -> list[dict]:
    """The centre of each of the ``n`` draws: ceil(n / 2) around the first, the others
    around the rest in turn (all around the first when it is the only one)."""
    first = math.ceil(n / 2) if len(centres) > 1 else n
    others = centres[1:]
    return [centres[0]] * first + [others[k % len(others)] for k in range(n - first)]


def stalled_rounds(history: pl.DataFrame) -> int:
    """Rounds since the last round that raised the best objective (0: the latest did)."""
    per_round = (history.filter(pl.col("objective").is_not_null()
                                & pl.col("objective").is_not_nan())
                 .group_by("round").agg(pl.col("objective").max()).sort("round"))
    if per_round.is_empty():
        return 0
    best = np.maximum.accumulate(per_round["objective"].to_numpy())
    rounds = per_round["round"].to_numpy()
    raised = np.flatnonzero(np.r_[True, best[1:] > best[:-1]])
    return int(history["round"].max() - rounds[raised[-1]])


def _moved(value: float, bounds: tuple[float, float], rho: float,
           rng: np.random.Generator) -> float:
    lo, hi = bounds
    if hi <= lo:
        return float(lo)
    u = (float(value) - lo) / (hi - lo) + rho * float(rng.standard_normal())
    u = abs(u) % 2.0
    u = 2.0 - u if u > 1.0 else u
    return min(max(lo + u * (hi - lo), lo), hi)
