"""Calibration of regime dynamics to a daily history by moment matching.

Estimators (daily log returns r_t, 252 days a year, 21-day months m):
- equity_vol = sqrt(252) std(r); equity_drift = 252 mean(r) + equity_vol^2 / 2 (so that
  E[S_T] = S_0 e^{mu T});
- monthly realized variance V_m = 252 / 21 sum_{t in m} r_t^2; an AR(1) fit
  V_{m+1} = a + b V_m + e gives heston_kappa = -12 ln b (b clipped to [0.05, 0.99]) and
  vol_of_vol = std(e) / sqrt(mean(V) / 12) (the CIR increment's standard deviation);
- spot_variance_corr = corr(monthly log return, V_{m+1} - V_m);
- equity_bond_corr = corr of daily equity and bond-index log returns;
- short_rate = the last risk-free observation; rate_vol = sqrt(252) std(daily change).
Each value is clipped into the Regime's valid range. Moment matching on a few years of
data is noisy (notably kappa and vol_of_vol); the estimates come with their sample size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from engine.conventions import TRADING_DAYS_PER_MONTH, TRADING_DAYS_PER_YEAR
from engine.market.regimes import Regime


@dataclass(frozen=True, slots=True)
class Calibration:
    """Estimated dynamics; annualised decimals. ``n_days`` is the sample size."""

    equity_drift: float
    equity_vol: float
    heston_kappa: float
    vol_of_vol: float
    spot_variance_corr: float
    equity_bond_corr: float
    short_rate: float
    rate_vol: float
    n_days: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def apply_dynamics(self, regime: Regime) -> Regime:
        """``regime`` with the calibrated Heston dynamics (kappa, vol of vol, rho_sv) and
        rate vol; the regime's own drift, vol, rate level and correlation are kept."""
        values = regime.to_dict() | {
            "heston_kappa": self.heston_kappa,
            "vol_of_vol": self.vol_of_vol,
            "spot_variance_corr": self.spot_variance_corr,
            "rate_vol": self.rate_vol,
        }
        return Regime(**values)


def calibrate(history: pl.DataFrame) -> Calibration:
    """Estimate dynamics from a history with columns close, bond_close, risk_free
    (daily, oldest first; at least 13 months)."""
    needed = 13 * TRADING_DAYS_PER_MONTH + 1
    if history.height < needed:
        raise ValueError(f"calibration needs at least {needed} daily rows; got {history.height}")
    log_equity = np.log(history["close"].to_numpy())
    r = np.diff(log_equity)
    r_bond = np.diff(np.log(history["bond_close"].to_numpy()))
    rate = history["risk_free"].to_numpy()

    vol = float(np.std(r, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))
    drift = float(np.mean(r) * TRADING_DAYS_PER_YEAR + 0.5 * vol * vol)

    n_months = len(r) // TRADING_DAYS_PER_MONTH
    blocks = r[len(r) - n_months * TRADING_DAYS_PER_MONTH :].reshape(n_months,
                                                                      TRADING_DAYS_PER_MONTH)
    monthly_var = (blocks**2).sum(axis=1) * (TRADING_DAYS_PER_YEAR / TRADING_DAYS_PER_MONTH)
    slope, intercept = np.polyfit(monthly_var[:-1], monthly_var[1:], 1)
    b = float(np.clip(slope, 0.05, 0.99))
    residual = monthly_var[1:] - (intercept + slope * monthly_var[:-1])
    kappa = -12.0 * math.log(b)
    vol_of_vol = float(np.std(residual, ddof=2) / math.sqrt(np.mean(monthly_var) / 12.0))
    rho_sv = float(np.corrcoef(blocks.sum(axis=1)[:-1], np.diff(monthly_var))[0, 1])
    rho_eb = float(np.corrcoef(r, r_bond)[0, 1])
    rate_vol = float(np.std(np.diff(rate), ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))
    return Calibration(
        equity_drift=float(np.clip(drift, -1.0, 1.0)),
        equity_vol=float(np.clip(vol, 1e-4, 2.0)),
        heston_kappa=float(np.clip(kappa, 0.1, 50.0)),
        vol_of_vol=float(np.clip(vol_of_vol, 0.01, 5.0)),
        spot_variance_corr=float(np.clip(np.nan_to_num(rho_sv), -0.99, 0.99)),
        equity_bond_corr=float(np.clip(np.nan_to_num(rho_eb), -0.99, 0.99)),
        short_rate=float(np.clip(rate[-1], -0.05, 0.25)),
        rate_vol=float(np.clip(rate_vol, 1e-5, 0.2)),
        n_days=int(history.height),
    )
