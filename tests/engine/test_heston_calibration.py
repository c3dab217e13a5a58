"""engine.market.heston_calibration: a surface from QuantLib prices of known parameters is
recovered within tolerances derived from the fit's conditioning."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.market.heston_calibration import PARAM_NAMES, fit_heston
from engine.market.heston_pricing import HestonParams, heston_implied_vols, implied_vol

ql = pytest.importorskip("QuantLib", reason="QuantLib (the dev extra) makes the reference surface")

SPOT, R, Q = 100.0, 0.03, 0.01
TRUE = HestonParams(v0=0.03, kappa=1.5, theta=0.05, sigma=0.6, rho=-0.65)  # Feller violated
DAYS = np.array([30, 91, 182, 365, 730])
MONEYNESS = np.linspace(-0.3, 0.2, 7)


def _quantlib_surface(params: HestonParams) -> pl.DataFrame:
    """Implied vols of QuantLib AnalyticHestonEngine prices (OTM side), inverted by
    Black-Scholes: the reference comes from QuantLib, not from the pricer under test."""
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.HestonProcess(
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.QuoteHandle(ql.SimpleQuote(SPOT)),
        params.v0, params.kappa, params.theta, params.sigma, params.rho)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 100_000)
    rows = []
    for days in DAYS:
        t = days / 365.0
        for k in MONEYNESS:
            strike = SPOT * np.exp((R - Q) * t + k)
            kind = ql.Option.Put if k < 0 else ql.Option.Call
            option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(strike)),
                                      ql.EuropeanExercise(today + int(days)))
            option.setPricingEngine(engine)
            vol = float(implied_vol(option.NPV(), SPOT, strike, t, R, Q,
                                    option="put" if k < 0 else "call"))
            rows.append((t, float(k), vol))
    return pl.DataFrame(rows, schema=["expiry_years", "log_moneyness", "implied_vol"],
                        orient="row")


def _vol_jacobian(params: HestonParams, surface: pl.DataFrame) -> np.ndarray:
    """d implied vol / d parameter at ``params`` (central differences, relative step 1e-4)."""
    t = surface["expiry_years"].to_numpy()
    strikes = SPOT * np.exp((R - Q) * t + surface["log_moneyness"].to_numpy())
    x = params.as_array()
    columns = []
    for i in range(x.size):
        h = 1e-4 * max(abs(x[i]), 1e-2)
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        columns.append((heston_implied_vols(SPOT, strikes, t, HestonParams(*up), R, Q)
                        - heston_implied_vols(SPOT, strikes, t, HestonParams(*down), R, Q))
                       / (2 * h))
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def surface() -> pl.DataFrame:
    return _quantlib_surface(TRUE)


@pytest.fixture(scope="module")
def jacobian(surface: pl.DataFrame) -> np.ndarray:
    return _vol_jacobian(TRUE, surface)


def test_noise_free_surface_is_recovered(surface: pl.DataFrame, jacobian: np.ndarray) -> None:
    fit = fit_heston(surface, spot=SPOT, r=R, q=Q)
    assert fit.success
    assert fit.n_points == 35
    # delta: the gap between our model's vols at the true parameters and the QuantLib
    # reference. The least-squares estimate moves by about J^+ delta, so parameter i is
    # within |row_i(J^+)| |delta| (Cauchy-Schwarz); 3x that plus 1e-6 for the optimiser.
    t = surface["expiry_years"].to_numpy()
    strikes = SPOT * np.exp((R - Q) * t + surface["log_moneyness"].to_numpy())
    delta = heston_implied_vols(SPOT, strikes, t, TRUE, R, Q) - surface["implied_vol"].to_numpy()
    pinv = np.linalg.pinv(jacobian)
    tolerance = 3.0 * np.linalg.norm(pinv, axis=1) * np.linalg.norm(delta) + 1e-6
    np.testing.assert_array_less(np.abs(fit.params.as_array() - TRUE.as_array()), tolerance)
    assert fit.rmse_vol <= 3.0 * np.sqrt(np.mean(delta**2)) + 1e-7
    assert fit.fit_seconds > 0


def test_noisy_surface_is_recovered_within_least_squares_errors(
    surface: pl.DataFrame, jacobian: np.ndarray
) -> None:
    # iid N(0, 20 bp) vol noise: the estimate's covariance is noise^2 (J^T J)^{-1};
    # each parameter within 4 standard errors
    noise = 0.002
    rng = np.random.default_rng(7)
    noisy = surface.with_columns(
        pl.col("implied_vol") + rng.normal(0.0, noise, surface.height))
    fit = fit_heston(noisy, spot=SPOT, r=R, q=Q)
    se = noise * np.sqrt(np.diag(np.linalg.inv(jacobian.T @ jacobian)))
    errors = np.abs(fit.params.as_array() - TRUE.as_array())
    for name, error, bound in zip(PARAM_NAMES, errors, 4 * se, strict=True):
        assert error < bound, f"{name}: |error| {error:.4g} >= 4 SE {bound:.4g}"
    # the residual RMSE estimates the noise: n - 5 degrees of freedom
    assert fit.rmse_vol == pytest.approx(noise * np.sqrt((35 - 5) / 35), rel=0.35)
    # the reported standard errors agree with the Jacobian at the truth
    reported = np.array([fit.std_errors[n] for n in PARAM_NAMES]) * noise / fit.rmse_vol
    np.testing.assert_allclose(reported, se, rtol=0.25)


def test_bad_surface_is_refused() -> None:
    bad = pl.DataFrame({"expiry_years": [0.5], "log_moneyness": [0.0],
                        "implied_vol": [float("nan")]})
    with pytest.raises(ValueError, match="NaN"):
        fit_heston(bad)
