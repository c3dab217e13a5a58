"""Calibration of the market-implied ("calibrated") regime: history, curve and surface.

From a daily history (daily log returns r_t, 252 days a year, 21-day months,
Delta = 1/12 year):

- equity_vol = sqrt(252) std(r); equity_drift = 252 mean(r) + equity_vol^2 / 2, so that
  E[S_T] = S_0 e^{mu T} (E[ln S_T / S_0] = (mu - theta / 2) T under Heston with v0 = theta);
- equity_bond_corr = corr of daily equity and bond-index log returns (NaN without a bond);
- Vasicek (rate_mean_reversion, rate_mean, rate_vol) by engine.market.yield_curve.fit_vasicek
  on the daily risk-free rate (NaN when the rate shows no mean reversion);
- Heston by moments of the monthly realised variance Y_m = (252 / 21) sum_{t in m} r_t^2
  (used when no surface is given): with gamma_j the lag-j autocovariance of Y, the block
  averages of a CIR variance have gamma_j = Var(v) e^{-kappa Delta (j - 1)} (1 - b)^2 /
  (kappa Delta)^2 for j >= 1, b = e^{-kappa Delta}, and measurement noise only adds to
  gamma_0, so::

      b = gamma_2 / gamma_1,  kappa = -ln(b) / Delta = -12 ln b,  theta = mean(Y)
      Var(v) = gamma_1 (kappa Delta)^2 / (1 - b)^2,  sigma^2 = 2 kappa Var(v) / theta
      rho = Cov(R_m, Y_{m+1}) Delta kappa^2 / (sigma theta (1 - b)^2)

  (R_m the month's log return; Cov(R_m, Y_{m+1}) = rho sigma theta (1 - b)^2 /
  (Delta kappa^2) from dv = ... + sigma sqrt(v) dW_v), b clipped to [0.05, 0.99] (0.99
  when gamma_1 <= 0), rho to [-0.99, 0.99]. These are noisy on a few years of data:
  ``n_days`` travels along.

No estimate is clipped silently: the estimator's own clips are listed in
``Calibration.clipped``, and :func:`regime_clips` lists where the calibrated regime
leaves an estimate at its range's end (the ``calibration`` asset reports both as a
warning check). A history the estimators cannot use (constant closes) raises
:class:`CalibrationError`.

With an implied-vol surface, (v0, kappa, theta, sigma, rho) come from
engine.market.heston_calibration.fit_heston instead (risk-neutral). With a yield curve,
the short rate is the curve's instantaneous forward at 0; else the last risk-free rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from engine.conventions import MONTHS_PER_YEAR, TRADING_DAYS_PER_MONTH, TRADING_DAYS_PER_YEAR
from engine.market.heston_calibration import fit_heston
from engine.market.legs import BOND_COLUMN, DefensiveLeg, leg_of
from engine.market.regimes import REGIMES, Regime
from engine.market.yield_curve import YieldCurve, fit_vasicek

NAN = float("nan")
B_RANGE = (0.05, 0.99)
"""Bounds of the monthly realised variance's lag-1 autocorrelation b = e^{-kappa / 12}."""
RHO_RANGE = (-0.99, 0.99)
"""Bounds of the moment estimate of the spot-variance correlation."""


class CalibrationError(ValueError):
    """The inputs cannot be calibrated (e.g. a history without variance)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """Estimated dynamics; annualised decimals; NaN where an input was missing.

    ``heston_source`` is "surface" (risk-neutral fit, with ``heston_rmse_vol`` its RMSE
    in vol and ``heston_fit_seconds``) or "history" (moments; those two are NaN).
    ``n_days`` is the history's length; ``clipped`` lists the estimator's clips
    ("; "-separated, empty when none). ``defensive_leg`` is the non-equity leg the
    history supports (engine.market.legs.leg_of): "bond" with a bond index, else "cash";
    the scenarios simulate the strategies on that leg.
    """

    equity_drift: float
    equity_vol: float
    heston_v0: float
    heston_kappa: float
    heston_theta: float
    vol_of_vol: float
    spot_variance_corr: float
    equity_bond_corr: float
    short_rate: float
    rate_mean_reversion: float
    rate_mean: float
    rate_vol: float
    heston_rmse_vol: float
    heston_fit_seconds: float
    heston_source: str
    n_days: int
    clipped: str = ""
    defensive_leg: DefensiveLeg = "bond"

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)

    def apply_dynamics(self, regime: Regime) -> Regime:
        """``regime`` with the calibrated Heston dynamics (kappa, vol of vol, rho_sv) and
        rate vol, each clipped into the Regime's range; NaN estimates keep the regime's."""
        estimates = {"heston_kappa": self.heston_kappa, "vol_of_vol": self.vol_of_vol,
                     "spot_variance_corr": self.spot_variance_corr, "rate_vol": self.rate_vol}
        values, _ = _bounded(estimates)
        return Regime(**(regime.to_dict() | values))


_RANGES = {
    "equity_drift": (-1.0, 1.0),
    "equity_vol": (1e-4, 2.0),
    "short_rate": (-0.05, 0.25),
    "equity_bond_corr": (-0.99, 0.99),
    "heston_kappa": (1e-3, 50.0),
    "vol_of_vol": (1e-3, 5.0),
    "spot_variance_corr": (-0.99, 0.99),
    "rate_mean_reversion": (1e-3, 10.0),
    "rate_vol": (1e-5, 0.2),
    "dividend_yield": (0.0, 0.2),
}
"""The Regime's ranges (engine.market.regimes), open ends nudged inside."""


def _bounded(estimates: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """The finite estimates clipped into ``_RANGES``, and a note for each one clipped."""
    values: dict[str, float] = {}
    notes: list[str] = []
    for field, value in estimates.items():
        if not math.isfinite(value):
            continue
        low, high = _RANGES[field]
        values[field] = float(min(max(value, low), high))
        if values[field] != value:
            notes.append(f"{field} {value:.6g} clipped to {values[field]:g}"
                         f" (the model's range [{low:g}, {high:g}])")
    return values, notes


def equity_drift_vol(close: np.ndarray) -> tuple[float, float]:
    """(mu, vol): vol = sqrt(252) std(r, ddof=1), mu = 252 mean(r) + vol^2 / 2, r daily
    log returns of the closes."""
    r = np.diff(np.log(np.asarray(close, dtype=np.float64)))
    vol = float(np.std(r, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))
    return float(np.mean(r) * TRADING_DAYS_PER_YEAR + 0.5 * vol * vol), vol


def heston_moments(close: np.ndarray) -> dict[str, float | str]:
    """Heston (kappa, theta, sigma, rho) from monthly realised variance (module notes),
    and ``clipped``: the clips of b and rho applied ("; "-separated, "" when none)."""
    r = np.diff(np.log(np.asarray(close, dtype=np.float64)))
    n_months = len(r) // TRADING_DAYS_PER_MONTH
    if n_months < 4:
        raise ValueError(f"heston_moments needs at least 4 months of returns; got {n_months}")
    blocks = r[len(r) - n_months * TRADING_DAYS_PER_MONTH:].reshape(n_months,
                                                                     TRADING_DAYS_PER_MONTH)
    y = (blocks**2).sum(axis=1) * (TRADING_DAYS_PER_YEAR / TRADING_DAYS_PER_MONTH)
    month_return = blocks.sum(axis=1)
    theta = float(y.mean())
    if not theta > 0:
        raise CalibrationError("the closes never move: no realised variance to fit Heston to")
    dev = y - y.mean()
    gamma1 = float(np.mean(dev[1:] * dev[:-1]))
    gamma2 = float(np.mean(dev[2:] * dev[:-2]))
    delta = 1.0 / MONTHS_PER_YEAR
    notes = []
    raw_b = gamma2 / gamma1 if gamma1 > 0 else NAN
    b = float(np.clip(raw_b, *B_RANGE)) if gamma1 > 0 else B_RANGE[1]
    if b != raw_b:
        notes.append(f"variance autocorrelation b {raw_b:.6g} clipped to {b:g} (kappa"
                     f" {-math.log(b) / delta:.4g})" if gamma1 > 0 else
                     f"variance autocovariance {gamma1:.3g} <= 0: b set to {b:g}")
    kappa = -math.log(b) / delta
    var_v = max(gamma1, 0.0) * (kappa * delta) ** 2 / (1.0 - b) ** 2
    sigma = math.sqrt(2.0 * kappa * var_v / theta)
    cov = float(np.mean((month_return[:-1] - month_return[:-1].mean()) * (y[1:] - y[1:].mean())))
    raw_rho = (cov * delta * kappa**2 / (sigma * theta * (1.0 - b) ** 2)) if sigma > 0 else 0.0
    rho = float(np.clip(raw_rho, *RHO_RANGE))
    if rho != raw_rho:
        notes.append(f"spot_variance_corr {raw_rho:.6g} clipped to {rho:g}")
    return {"kappa": kappa, "theta": theta, "sigma": sigma, "rho": rho,
            "clipped": "; ".join(notes)}


def calibrate(
    history: pl.DataFrame,
    *,
    vol_surface: pl.DataFrame | None = None,
    yield_curve: YieldCurve | None = None,
    dividend_yield: float = 0.0,
) -> Calibration:
    """Estimate the calibrated regime's inputs.

    Parameters
    ----------
    history : daily rows, oldest first: close, risk_free, optionally bond_close; at least
        13 x 21 + 1 rows (validate it first with engine.market.validation).
    vol_surface : optional expiry_years, log_moneyness, implied_vol: Heston is fitted to it.
    yield_curve : optional curve: the short rate is its instantaneous forward at 0.
    dividend_yield : q of the surface's forwards (log-moneyness is against the forward,
        so only the fit's discounting uses it).
    """
    needed = 13 * TRADING_DAYS_PER_MONTH + 1
    if history.height < needed:
        raise ValueError(f"calibration needs at least {needed} daily rows; got {history.height}")
    close = history["close"].to_numpy()
    drift, vol = equity_drift_vol(close)
    if not vol > 0:
        raise CalibrationError("the equity closes never move: no variance to calibrate")
    if leg_of(history.columns) == "bond":
        r_eq = np.diff(np.log(close))
        r_bond = np.diff(np.log(history[BOND_COLUMN].to_numpy()))
        rho_eb = float(np.corrcoef(r_eq, r_bond)[0, 1])
    else:
        rho_eb = NAN
    rate = history["risk_free"].to_numpy()
    try:
        vasicek = fit_vasicek(rate)
        rate_kappa, rate_mean, rate_vol = vasicek.kappa, vasicek.theta, vasicek.sigma
    except ValueError:
        rate_kappa, rate_mean = NAN, NAN
        rate_vol = float(np.std(np.diff(rate), ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))
    short_rate = yield_curve.short_rate if yield_curve is not None else float(rate[-1])
    if vol_surface is not None:
        fit = fit_heston(vol_surface, spot=1.0, r=short_rate, q=dividend_yield)
        p = fit.params
        heston: dict[str, float | str] = {"v0": p.v0, "kappa": p.kappa, "theta": p.theta,
                                          "sigma": p.sigma, "rho": p.rho, "clipped": ""}
        rmse, seconds, source = fit.rmse_vol, fit.fit_seconds, "surface"
    else:
        moments = heston_moments(close)
        heston = moments | {"v0": moments["theta"]}
        rmse, seconds, source = NAN, NAN, "history"
    return Calibration(
        equity_drift=drift,
        equity_vol=vol,
        heston_v0=heston["v0"],
        heston_kappa=heston["kappa"],
        heston_theta=heston["theta"],
        vol_of_vol=heston["sigma"],
        spot_variance_corr=heston["rho"],
        equity_bond_corr=rho_eb,
        defensive_leg=leg_of(history.columns),
        short_rate=short_rate,
        rate_mean_reversion=rate_kappa,
        rate_mean=rate_mean,
        rate_vol=rate_vol,
        heston_rmse_vol=rmse,
        heston_fit_seconds=seconds,
        heston_source=source,
        n_days=int(history.height),
        clipped=str(heston["clipped"]),
    )


def _regime_estimates(calibration: Calibration, *, equity_risk_premium: float | None,
                      dividend_yield: float, ) -> dict[str, float]:
    drift = (calibration.short_rate + equity_risk_premium if equity_risk_premium is not None
             else calibration.equity_drift)
    return {
        "equity_drift": drift,
        "equity_vol": math.sqrt(calibration.heston_theta)
        if calibration.heston_theta > 0 else NAN,
        "short_rate": calibration.short_rate,
        "equity_bond_corr": calibration.equity_bond_corr,
        "heston_kappa": calibration.heston_kappa,
        "vol_of_vol": calibration.vol_of_vol,
        "spot_variance_corr": calibration.spot_variance_corr,
        "rate_mean_reversion": calibration.rate_mean_reversion,
        "rate_vol": calibration.rate_vol,
        "dividend_yield": dividend_yield,
    }


def calibrated_regime(
    calibration: Calibration,
    *,
    name: str = "calibrated",
    equity_risk_premium: float | None = None,
    dividend_yield: float | None = None,
    fallback: Regime | None = None,
) -> Regime:
    """The market-implied regime.

    Notes
    -----
    - equity_drift: the historical mu, or short_rate + ``equity_risk_premium`` when given;
    - equity_vol = sqrt(heston_theta) (the Regime has one variance, theta = v0, and the
      5-year horizon is the long run's);
    - heston_kappa, vol_of_vol, spot_variance_corr: the Heston fit (surface or moments);
    - short_rate: the curve's (or the last rate); rate_mean_reversion and rate_vol: the
      Vasicek fit of the rate history;
    - equity_bond_corr: from history;
    - rate_risk_premium and (unless given) dividend_yield: the fallback regime's.
    Each value is clipped into the Regime's range (:func:`regime_clips` lists which); a
    NaN estimate takes the ``fallback`` regime's value (default: base).
    """
    base = fallback or REGIMES["base"]
    values, _ = _bounded(_regime_estimates(
        calibration, equity_risk_premium=equity_risk_premium,
        dividend_yield=base.dividend_yield if dividend_yield is None else dividend_yield))
    return Regime(**(base.to_dict() | {"name": name} | values))


def regime_clips(calibration: Calibration, *, equity_risk_premium: float | None = None,
                 ) -> list[str]:
    """Every clip behind the calibrated regime: the estimator's (``calibration.clipped``)
    and each estimate :func:`calibrated_regime` moves to its range's end, e.g.
    ``"equity_vol 3.17 clipped to 2 (the model's range [0.0001, 2])"``."""
    _, notes = _bounded(_regime_estimates(calibration, equity_risk_premium=equity_risk_premium,
                                          dividend_yield=NAN))
    return [n for n in calibration.clipped.split("; ") if n] + notes
