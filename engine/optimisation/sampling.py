"""Latin hypercube sampling of the strategy's hyperparameter space."""

from __future__ import annotations

import math

from engine.optimisation.search_space import SearchSpace
from engine.rng import as_generator
from engine.strategy.config import MIX_FIELDS, StrategyConfig
from engine.types import SeedLike
from engine.validation import check_int_range


def sample_configs(
    n: int, seed: SeedLike = 0, space: SearchSpace | None = None, *, tc_bps: float = 10.0
) -> list[StrategyConfig]:
    """Draw ``n`` configs by Latin hypercube sampling (scipy.stats.qmc.LatinHypercube).

    Parameters
    ----------
    n : number of configs, in [1, 1_000_000].
    seed : int, SeedSequence, Generator or None.
    space : the ranges (default ``SearchSpace()``).
    tc_bps : the transaction-cost assumption every config carries (basis points per unit
        traded); fixed, not sampled.

    Notes
    -----
    Four dimensions, in this column order: target_vol, weight_fn, vol_window_months,
    risk_aversion, then one per searched base mix (:attr:`SearchSpace.searched_mixes`,
    a category like weight_fn); a space searching no mix draws exactly the four. Each is
    split into n equal strata with exactly one point per stratum.
    A unit coordinate u maps to lo + u (hi - lo) for continuous parameters (rounded as
    :meth:`SearchSpace.make_config` rounds); to the category floor(u m) for the m weight
    functions and to lo + floor(u (hi - lo + 1)) for the m = hi - lo + 1 integer windows.
    risk_aversion is drawn for every point and dropped (None) for the inverse rules, so
    the other coordinates do not depend on the rule. Level c covers u in [c/m, (c+1)/m):
    it holds the points of the strata inside that interval and possibly those of the two
    strata cut by its ends, so its count lies in [floor((c+1)n/m) - ceil(cn/m),
    ceil((c+1)n/m) - floor(cn/m)]: exactly n / m when m divides n, and always less than
    2 from n / m (stratification carried to the discrete levels).
    """
    count = check_int_range("sample_configs", "n", n, 1, 1_000_000)
    space = space or SearchSpace()
    mixes = dict(zip(MIX_FIELDS, space.mix_choices(), strict=True))
    searched = space.searched_mixes
    from scipy.stats import qmc  # scipy.stats adds ~0.4 s to every process's start

    unit = qmc.LatinHypercube(d=4 + len(searched), rng=as_generator(seed)).random(count)
    w_lo, w_hi = space.vol_window_months
    return [
        space.make_config(
            {
                "target_vol": _scale(u[0], space.target_vol),
                "weight_fn": _category(u[1], space.weight_fns),
                "vol_window_months": w_lo + min(math.floor(u[2] * (w_hi - w_lo + 1)),
                                                w_hi - w_lo),
                "risk_aversion": _scale(u[3], space.risk_aversion),
                **{name: _category(u[4 + i], mixes[name]) for i, name in enumerate(searched)},
            },
            tc_bps,
        )
        for u in unit
    ]


def _category(u: float, choices: tuple[str, ...]) -> str:
    return choices[min(math.floor(u * len(choices)), len(choices) - 1)]


def _scale(u: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return lo + float(u) * (hi - lo)
