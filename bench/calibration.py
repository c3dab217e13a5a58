"""Heston calibration: fit error and fit time on the test surface.

The surface is the one of tests/engine/test_heston_calibration.py: QuantLib
AnalyticHestonEngine prices of known parameters (v0 0.03, kappa 1.5, theta 0.05,
sigma 0.6, rho -0.65; Feller violated) at 5 expiries (30 days to 2 years) x 7
log-moneyness points (-0.3 to 0.2), inverted to Black-Scholes vols. Prints, per run, the
fit's RMSE and max error in vol points, the parameter errors, the residual evaluations
and the wall time; with ``--noise`` (vol points) the surface is perturbed by seeded
Gaussian noise first. Without QuantLib the surface comes from engine's own pricer.

    python bench/calibration.py [--repeat 3] [--noise 0.2]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import polars as pl

from engine.market.heston_calibration import PARAM_NAMES, fit_heston
from engine.market.heston_pricing import HestonParams, heston_implied_vols, implied_vol

SPOT, R, Q = 100.0, 0.03, 0.01
TRUE = HestonParams(v0=0.03, kappa=1.5, theta=0.05, sigma=0.6, rho=-0.65)
DAYS = np.array([30, 91, 182, 365, 730])
MONEYNESS = np.linspace(-0.3, 0.2, 7)


def surface() -> tuple[pl.DataFrame, str]:
    t = np.repeat(DAYS / 365.0, MONEYNESS.size)
    k = np.tile(MONEYNESS, DAYS.size)
    strikes = SPOT * np.exp((R - Q) * t + k)
    try:
        import QuantLib as ql
    except ImportError:
        vols = heston_implied_vols(SPOT, strikes, t, TRUE, R, Q)
        return pl.DataFrame({"expiry_years": t, "log_moneyness": k, "implied_vol": vols}), \
            "engine pricer"
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    process = ql.HestonProcess(
        ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, Q, dc)),
        ql.QuoteHandle(ql.SimpleQuote(SPOT)), *TRUE.as_array())
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 100_000)
    vols = []
    for days, kk, strike in zip(np.repeat(DAYS, MONEYNESS.size), k, strikes, strict=True):
        kind = ql.Option.Put if kk < 0 else ql.Option.Call
        option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(strike)),
                                  ql.EuropeanExercise(today + int(days)))
        option.setPricingEngine(engine)
        vols.append(float(implied_vol(option.NPV(), SPOT, strike, days / 365.0, R, Q,
                                      option="put" if kk < 0 else "call")))
    return pl.DataFrame({"expiry_years": t, "log_moneyness": k, "implied_vol": vols}), \
        "QuantLib AnalyticHestonEngine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.0, help="vol points, e.g. 0.2")
    args = parser.parse_args()
    base, origin = surface()
    if args.noise:
        rng = np.random.default_rng(0)
        base = base.with_columns(pl.col("implied_vol")
                                 + rng.normal(0.0, args.noise / 100, base.height))
    print(f"surface: {base.height} points from {origin}; noise {args.noise} vol points")
    times = []
    for run in range(args.repeat):
        fit = fit_heston(base, spot=SPOT, r=R, q=Q)
        times.append(fit.fit_seconds)
        errors = dict(zip(PARAM_NAMES, fit.params.as_array() - TRUE.as_array(), strict=True))
        print(f"run {run}: rmse {fit.rmse_vol * 100:.2e} vol pts, max"
              f" {fit.max_abs_error_vol * 100:.2e} vol pts, {fit.n_evaluations} evaluations,"
              f" {fit.fit_seconds:.2f} s; parameter errors "
              + ", ".join(f"{n} {e:+.1e}" for n, e in errors.items()))
    print(f"fit time: median {statistics.median(times):.2f} s over {args.repeat} runs")


if __name__ == "__main__":
    main()
