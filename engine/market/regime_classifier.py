"""Which named regime recent data looks like.

Features over the trailing window of n daily log returns (T = n / 252 years): realised
vol s = sqrt(252) std(r), drift m = 252 mean(r) + s^2 / 2 (the regime's mu convention),
and the equity-bond correlation c of daily log returns (left out without a bond index).
The distance to regime R is the root sum of squared z-scores, each feature's gap to the
regime's value divided by its sampling standard error under R for a window of n days
(Gaussian returns)::

    z_vol   = (s - vol_R) / (vol_R / sqrt(2 n))
    z_drift = (m - mu_R) / (vol_R / sqrt(T))
    z_corr  = (c - rho_R) / (max(1 - rho_R^2, 0.1) / sqrt(n))
    d_R     = sqrt(z_vol^2 + z_drift^2 + z_corr^2)

The nearest regime (smallest d_R) is the classification. The z-scores make a gap of 2 vol
points count more in a calm regime than in a turbulent one, and make the drift, the
noisiest feature, count little over a short window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.conventions import TRADING_DAYS_PER_YEAR
from engine.market.regimes import REGIMES, Regime

DEFAULT_WINDOW_DAYS = TRADING_DAYS_PER_YEAR
"""One year of daily returns."""
CORR_SE_FLOOR = 0.1
"""Floor of 1 - rho^2 in the correlation's standard error (|rho| near 1)."""


@dataclass(frozen=True, slots=True)
class RegimeClassification:
    """The nearest regime, every regime's distance, the features and the window."""

    regime: str
    distances: dict[str, float]
    features: dict[str, float]
    window_days: int


def regime_features(close: np.ndarray, bond_close: np.ndarray | None = None) -> dict[str, float]:
    """realised_vol, drift and (with a bond) equity_bond_corr of the given closes."""
    r = np.diff(np.log(np.asarray(close, dtype=np.float64)))
    vol = float(np.std(r, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))
    features = {"realised_vol": vol,
                "drift": float(np.mean(r) * TRADING_DAYS_PER_YEAR + 0.5 * vol * vol)}
    if bond_close is not None:
        rb = np.diff(np.log(np.asarray(bond_close, dtype=np.float64)))
        features["equity_bond_corr"] = float(np.corrcoef(r, rb)[0, 1])
    return features


def regime_distance(features: Mapping[str, float], regime: Regime, n_returns: int) -> float:
    """The standardized distance d_R of the module notes."""
    n = n_returns
    years = n / TRADING_DAYS_PER_YEAR
    vol = regime.equity_vol
    z = [
        (features["realised_vol"] - vol) / (vol / math.sqrt(2.0 * n)),
        (features["drift"] - regime.equity_drift) / (vol / math.sqrt(years)),
    ]
    if "equity_bond_corr" in features:
        rho = regime.equity_bond_corr
        se = max(1.0 - rho * rho, CORR_SE_FLOOR) / math.sqrt(n)
        z.append((features["equity_bond_corr"] - rho) / se)
    return float(math.sqrt(sum(v * v for v in z)))


def classify_regime(
    history: pl.DataFrame,
    *,
    regimes: Mapping[str, Regime] = REGIMES,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> RegimeClassification:
    """Classify the last ``window_days`` daily returns of ``history`` (columns close and
    optionally bond_close, oldest first) to the nearest of ``regimes``; ties go to the
    first regime in mapping order."""
    if window_days < 20:
        raise ValueError(f"window_days = {window_days} must be at least 20")
    if history.height < window_days + 1:
        raise ValueError(
            f"classify_regime needs {window_days + 1} rows for a {window_days}-day window;"
            f" got {history.height}"
        )
    recent = history.tail(window_days + 1)
    bond = recent["bond_close"].to_numpy() if "bond_close" in recent.columns else None
    features = regime_features(recent["close"].to_numpy(), bond)
    distances = {name: regime_distance(features, regime, window_days)
                 for name, regime in regimes.items()}
    nearest = min(distances, key=lambda name: distances[name])
    return RegimeClassification(regime=nearest, distances=distances, features=features,
                                window_days=window_days)
