"""Latin hypercube sampling of the strategy's hyperparameter space."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import qmc

from engine.rng import as_generator
from engine.strategy.config import WEIGHT_FNS, StrategyConfig
from engine.types import SeedLike
from engine.validation import ConfigError, check_int_range, check_range


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """Ranges sampled for each hyperparameter (DESIGN.md's defaults).

    Continuous values are rounded (target_vol to 4 decimals, risk_aversion to 3,
    tc_bps to 2) so configs read well and their ids are short hashes of what is shown.
    """

    target_vol: tuple[float, float] = (0.05, 0.20)
    vol_window_months: tuple[int, int] = (6, 24)
    risk_aversion: tuple[float, float] = (0.5, 5.0)
    tc_bps: tuple[float, float] = (0.0, 20.0)
    weight_fns: tuple[str, ...] = WEIGHT_FNS
    min_allocation: float = 0.0
    max_allocation: float = 1.0
    no_trade_band: float = 0.0

    def __post_init__(self) -> None:
        owner = "SearchSpace"
        for field, (low, high) in {
            "target_vol": (0.01, 1.0),
            "risk_aversion": (1e-6, 50.0),
            "tc_bps": (0.0, 500.0),
        }.items():
            lo, hi = getattr(self, field)
            check_range(owner, f"{field}[0]", lo, low, high)
            check_range(owner, f"{field}[1]", hi, lo, high)
        lo, hi = self.vol_window_months
        check_int_range(owner, "vol_window_months[0]", lo, 1, 60)
        check_int_range(owner, "vol_window_months[1]", hi, lo, 60)
        if not self.weight_fns or set(self.weight_fns) - set(WEIGHT_FNS):
            raise ConfigError(
                f"SearchSpace.weight_fns = {self.weight_fns!r} must be a non-empty subset of"
                f" {', '.join(WEIGHT_FNS)}"
            )


def sample_configs(
    n: int, seed: SeedLike = 0, space: SearchSpace | None = None
) -> list[StrategyConfig]:
    """Draw ``n`` configs by Latin hypercube sampling (scipy.stats.qmc.LatinHypercube).

    Notes
    -----
    Each of the five dimensions is split into n equal strata with exactly one point per
    stratum. A unit coordinate u maps to lo + u (hi - lo) for continuous parameters; to
    the category floor(u m) for the m weight functions and to lo + floor(u (hi - lo + 1))
    for the m = hi - lo + 1 integer windows. Level c covers u in [c/m, (c+1)/m): it holds
    the points of the strata inside that interval and possibly those of the two strata
    cut by its ends, so its count lies in [floor((c+1)n/m) - ceil(cn/m),
    ceil((c+1)n/m) - floor(cn/m)]: exactly n / m when m divides n, and always less than
    2 from n / m (stratification carried to the discrete levels).
    """
    count = check_int_range("sample_configs", "n", n, 1, 1_000_000)
    space = space or SearchSpace()
    unit = qmc.LatinHypercube(d=5, rng=as_generator(seed)).random(count)
    fns = space.weight_fns
    w_lo, w_hi = space.vol_window_months
    configs = []
    for u_tv, u_fn, u_win, u_ra, u_tc in unit:
        configs.append(
            StrategyConfig(
                target_vol=round(_scale(u_tv, space.target_vol), 4),
                weight_fn=fns[min(math.floor(u_fn * len(fns)), len(fns) - 1)],
                vol_window_months=w_lo + min(math.floor(u_win * (w_hi - w_lo + 1)), w_hi - w_lo),
                risk_aversion=round(_scale(u_ra, space.risk_aversion), 3),
                tc_bps=round(_scale(u_tc, space.tc_bps), 2),
                min_allocation=space.min_allocation,
                max_allocation=space.max_allocation,
                no_trade_band=space.no_trade_band,
            )
        )
    return configs


def _scale(u: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return lo + float(u) * (hi - lo)
