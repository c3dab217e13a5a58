"""Heston parameters fitted to an implied-vol surface by least squares.

Residuals are vega-weighted price errors, (C_model - C_market) / vega_market, which equal
the implied-vol error to first order, so the fit minimises squared vol errors without an
implied-vol inversion per evaluation (Christoffersen, Heston, Jacobs, "The shape and term
structure of the index option smirk", J. Financial Economics 72, 2004, who use this
weighting). The reported RMSE is on true implied vols, inverted once at the optimum.
Prices are those of engine.market.heston_pricing (out-of-the-money options: puts below
the forward, calls above).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import least_squares

from engine.market.heston_pricing import (
    HestonParams,
    bs_price,
    bs_vega,
    heston_implied_vols,
    heston_price,
)
from engine.types import FloatArray

PARAM_NAMES: tuple[str, ...] = ("v0", "kappa", "theta", "sigma", "rho")
LOWER_BOUNDS = np.array([1e-4, 1e-2, 1e-4, 1e-2, -0.99])
UPPER_BOUNDS = np.array([1.0, 20.0, 1.0, 5.0, 0.99])
"""Search box of (v0, kappa, theta, sigma, rho): variances 1e-4 (1% vol) to 1 (100% vol)."""

DEFAULT_INITIAL = HestonParams(v0=0.04, kappa=2.0, theta=0.04, sigma=0.5, rho=-0.5)


@dataclass(frozen=True, slots=True)
class HestonFit:
    """A Heston fit to an implied-vol surface.

    Attributes
    ----------
    params : the fitted parameters.
    rmse_vol : root mean square of (model implied vol - market implied vol), in vol as a
        decimal (0.001 = 0.1 vol point).
    max_abs_error_vol : the largest absolute implied-vol error.
    fit_seconds : wall time of the fit (least squares plus the final inversion).
    n_points : surface points fitted.
    n_evaluations : residual evaluations the optimiser used.
    success, message : the optimiser's status.
    std_errors : rmse_vol x sqrt(diag((J^T J)^{-1})) per parameter name, the
        least-squares standard errors if the residuals were independent noise of that size
        (J = d residual / d parameter at the optimum).
    """

    params: HestonParams
    rmse_vol: float
    max_abs_error_vol: float
    fit_seconds: float
    n_points: int
    n_evaluations: int
    success: bool
    message: str
    std_errors: dict[str, float] = field(default_factory=dict)


def fit_heston(
    surface: pl.DataFrame,
    *,
    spot: float = 1.0,
    r: float = 0.0,
    q: float = 0.0,
    initial: HestonParams | None = None,
) -> HestonFit:
    """Fit Heston to a surface frame with columns expiry_years, log_moneyness
    (k = ln(K / F), F = spot e^{(r - q) T}) and implied_vol."""
    return fit_heston_arrays(
        surface["expiry_years"].to_numpy(),
        surface["log_moneyness"].to_numpy(),
        surface["implied_vol"].to_numpy(),
        spot=spot, r=r, q=q, initial=initial,
    )


def fit_heston_arrays(
    expiries: FloatArray,
    log_moneyness: FloatArray,
    implied_vols: FloatArray,
    *,
    spot: float = 1.0,
    r: float = 0.0,
    q: float = 0.0,
    initial: HestonParams | None = None,
) -> HestonFit:
    """Fit (v0, kappa, theta, sigma, rho) to implied vols at (T, k) points (1-D arrays).

    Notes
    -----
    Minimises sum_i ((P_H(K_i, T_i; p) - P_BS(K_i, T_i, iv_i)) / vega_i)^2 over the box
    ``LOWER_BOUNDS`` .. ``UPPER_BOUNDS`` with scipy's trust-region-reflective
    ``least_squares`` (2-point finite-difference Jacobian), K_i = F_i e^{k_i}, P the
    out-of-the-money option. Vegas are floored at 1e-8 x spot.
    """
    t = np.asarray(expiries, dtype=np.float64)
    k = np.asarray(log_moneyness, dtype=np.float64)
    iv = np.asarray(implied_vols, dtype=np.float64)
    if not (t.shape == k.shape == iv.shape) or t.ndim != 1:
        raise ValueError("expiries, log_moneyness and implied_vols must be 1-D of one length")
    if not (np.isfinite(t).all() and np.isfinite(k).all() and np.isfinite(iv).all()):
        raise ValueError("the surface contains NaN or infinite values")
    if (t <= 0).any() or (iv <= 0).any():
        raise ValueError("expiries and implied vols must be positive")
    start = time.perf_counter()
    strikes = spot * np.exp((r - q) * t + k)
    put = k < 0.0
    market = bs_price(spot, strikes, t, iv, r, q, option="call")
    market = np.where(put, market - spot * np.exp(-q * t) + strikes * np.exp(-r * t), market)
    vega = np.maximum(bs_vega(spot, strikes, t, iv, r, q), 1e-8 * spot)
    parity = spot * np.exp(-q * t) - strikes * np.exp(-r * t)

    def residuals(x: FloatArray) -> FloatArray:
        params = HestonParams(*x)
        calls = heston_price(spot, strikes, t, params, r, q, option="call")
        model = np.where(put, calls - parity, calls)
        return (model - market) / vega

    x0 = np.clip((initial or DEFAULT_INITIAL).as_array(), LOWER_BOUNDS, UPPER_BOUNDS)
    result = least_squares(residuals, x0, bounds=(LOWER_BOUNDS, UPPER_BOUNDS),
                           diff_step=1e-5, xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=400)
    params = HestonParams(*result.x)
    model_iv = heston_implied_vols(spot, strikes, t, params, r, q)
    errors = model_iv - iv
    rmse = float(np.sqrt(np.nanmean(errors**2)))
    elapsed = time.perf_counter() - start
    return HestonFit(
        params=params,
        rmse_vol=rmse,
        max_abs_error_vol=float(np.nanmax(np.abs(errors))),
        fit_seconds=elapsed,
        n_points=int(t.size),
        n_evaluations=int(result.nfev),
        success=bool(result.success),
        message=str(result.message),
        std_errors=_std_errors(result.jac, rmse),
    )


def _std_errors(jac: FloatArray, rmse: float) -> dict[str, float]:
    """rmse x sqrt(diag((J^T J)^{-1})), NaN where J^T J is singular."""
    try:
        cov = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return dict.fromkeys(PARAM_NAMES, float("nan"))
    return {name: float(rmse * np.sqrt(max(cov[i, i], 0.0))) for i, name in enumerate(PARAM_NAMES)}
