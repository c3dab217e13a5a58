"""Latin hypercube sampling of the strategy's hyperparameter space."""

from __future__ import annotations

import math

from scipy.stats import qmc

from engine.optimisation.search_space import SearchSpace
from engine.rng import as_generator
from engine.strategy.config import StrategyConfig
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
    risk_aversion. Each is split into n equal strata with exactly one point per stratum.
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
    unit = qmc.LatinHypercube(d=4, rng=as_generator(seed)).random(count)
    fns = space.weight_fns
    w_lo, w_hi = space.vol_window_months
    return [
        space.make_config(
            {
                "target_vol": _scale(u_tv, space.target_vol),
                "weight_fn": fns[min(math.floor(u_fn * len(fns)), len(fns) - 1)],
                "vol_window_months": w_lo + min(math.floor(u_win * (w_hi - w_lo + 1)),
                                                w_hi - w_lo),
                "risk_aversion": _scale(u_ra, space.risk_aversion),
            },
            tc_bps,
        )
        for u_tv, u_fn, u_win, u_ra in unit
    ]


def _scale(u: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return lo + float(u) * (hi - lo)
