"""The equities of a portfolio spec calibrated to their joint daily history."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.portfolio.shrinkage import ledoit_wolf_correlation
from engine.portfolio.spec import PortfolioSpec
from engine.types import FloatArray

MIN_COMMON_DAYS = 63
"""Three months of common trading days at least, so each vol and correlation means something."""


def calibrate_equities(spec: PortfolioSpec, log_returns: FloatArray) -> PortfolioSpec:
    """``spec`` with each equity's vol_ratio and the equity correlation fitted to history.

    Parameters
    ----------
    spec : the portfolio; its equities in order are the columns of ``log_returns``.
    log_returns : daily log returns on the equities' common calendar, (n_days, n_equities),
        at least :data:`MIN_COMMON_DAYS` rows.

    Notes
    -----
    vol_ratio_i = s_i / s_1 with s the sample standard deviation (ddof = 1): the first
    equity carries the regime's own vol, the others scale it (engine.portfolio.paths).
    The correlation is Ledoit-Wolf shrunk (:func:`ledoit_wolf_correlation`), positive
    definite. Drift spreads are kept as given: a few years of history do not pin a
    return difference down.
    """
    x = np.asarray(log_returns, dtype=np.float64)
    n_eq = len(spec.equities)
    if x.ndim != 2 or x.shape[1] != n_eq:
        raise ValueError(f"log_returns must have one column per equity ({n_eq}),"
                         f" got shape {x.shape}")
    if x.shape[0] < MIN_COMMON_DAYS or not np.isfinite(x).all():
        raise ValueError(f"log_returns needs at least {MIN_COMMON_DAYS} finite common days,"
                         f" got {x.shape[0]}")
    vols = x.std(axis=0, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)
    ratios = iter(vols / vols[0])
    assets = tuple(
        dataclasses.replace(a, vol_ratio=float(next(ratios))) if a.asset_class == "equity"
        else a
        for a in spec.assets
    )
    correlation = ledoit_wolf_correlation(x) if n_eq > 1 else None
    return dataclasses.replace(
        spec, assets=assets,
        equity_correlation=None if correlation is None else tuple(map(tuple, correlation)),
    )
