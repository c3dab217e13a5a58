"""Scenario paths of a whole portfolio: correlated Heston equities, bond buckets, cash."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.conventions import DT_DAY, MONTHS_PER_YEAR, TRADING_DAYS_PER_MONTH
from engine.market.heston import HestonStepper, Scheme
from engine.market.paths import Measure, ScenarioPaths, simulate_scenario
from engine.market.rates import Vasicek
from engine.market.regimes import Regime
from engine.market.shock_blocks import shock_blocks
from engine.portfolio.bonds import bucket_levels
from engine.portfolio.path_kernels import portfolio_days
from engine.portfolio.spec import Asset, PortfolioSpec
from engine.rng import as_generator, seed_sequence_for
from engine.types import FloatArray, IntArray, SeedLike


@dataclass(frozen=True, slots=True)
class PortfolioPaths:
    """Daily paths of one scenario for every asset of a portfolio.

    ``levels`` has shape (n_assets, n_paths, n_steps + 1): total-return index levels
    starting at 1, in the order of ``spec.ordered`` (equities, then bonds and cash);
    ``variance`` (n_equities, n_paths, n_steps + 1) the equities' Heston variances;
    ``short_rate`` and ``cash`` (n_paths, n_steps + 1) the Vasicek rate and the money
    market. Day 0 starts the warm-up, the evaluation starts at day ``warmup_months * 21``.
    ``two_asset`` holds the two-asset study's own paths when the spec is the two-asset one
    (they are then evaluated by its own code path, bit for bit), else None.
    """

    regime: str
    spec: PortfolioSpec
    levels: FloatArray
    variance: FloatArray
    short_rate: FloatArray
    cash: FloatArray
    warmup_months: int
    measure: Measure
    two_asset: ScenarioPaths | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.spec.ordered)

    @property
    def n_paths(self) -> int:
        return self.levels.shape[1]

    @property
    def n_steps(self) -> int:
        return self.levels.shape[2] - 1

    @property
    def month_ends(self) -> IntArray:
        """Day indices 0, 21, 42, ... of the month-ends, shape (n_months + 1,)."""
        return np.arange(self.n_steps // TRADING_DAYS_PER_MONTH + 1,
                         dtype=np.int64) * TRADING_DAYS_PER_MONTH


def path_arrays(spec: PortfolioSpec) -> int:
    """Daily float64 arrays of n_paths x (n_steps + 1) one scenario of ``spec`` stores.

    Notes
    -----
    A = n_assets (levels) + n_equities (Heston variances) + 2 (short rate, cash), as in
    :class:`PortfolioPaths`: 5 for the two-asset spec (equity, variance, short rate, bond,
    cash: :class:`engine.market.paths.ScenarioPaths`), 11 for three equities and three
    bond buckets.
    """
    return len(spec.assets) + len(spec.equities) + 2


def driver_correlation(spec: PortfolioSpec, regime: Regime) -> FloatArray:
    """Correlation of the Gaussian drivers (Z_v1..Z_vn, Z_S1..Z_Sn, Z_r), (2n+1, 2n+1).

    Notes
    -----
    The spot drivers have the spec's equity correlation C; each variance driver is
    Z_vi = rho Z_Si + sqrt(1 - rho^2) eta_i with eta independent (rho = the regime's
    spot_variance_corr), and the rate driver has corr(Z_Si, Z_r) = -rho_eb for every
    equity (rho_eb = equity_bond_corr, the sign convention of the two-asset regime). So
    corr(Z_vi, Z_Sj) = rho C_ij, corr(Z_vi, Z_vj) = rho^2 C_ij (i != j) and
    corr(Z_vi, Z_r) = -rho rho_eb; for one equity this is ``regime.shock_correlation()``.
    The matrix is positive definite iff [[C, -rho_eb 1], [-rho_eb 1', 1]] is.
    """
    n = len(spec.equities)
    c = np.asarray(spec.equity_correlation if n > 1 else [[1.0]], dtype=np.float64)
    rho, q = regime.spot_variance_corr, -regime.equity_bond_corr
    out = np.empty((2 * n + 1, 2 * n + 1))
    out[:n, :n] = rho * rho * c
    np.fill_diagonal(out[:n, :n], 1.0)
    out[:n, n:2 * n] = out[n:2 * n, :n] = rho * c
    out[n:2 * n, n:2 * n] = c
    out[:n, -1] = out[-1, :n] = rho * q
    out[n:2 * n, -1] = out[-1, n:2 * n] = q
    out[-1, -1] = 1.0
    spot_rate = out[n:, n:]
    if np.linalg.eigvalsh(spot_rate).min() <= 1e-12:
        raise ValueError(
            f"PortfolioSpec.equity_correlation with regime {regime.name!r}"
            f" equity_bond_corr = {regime.equity_bond_corr} gives no valid correlation"
            " of the spot and rate drivers (not positive definite)"
        )
    return out


def equity_stepper(regime: Regime, asset: Asset, scheme: Scheme) -> HestonStepper:
    """The equity's Heston step: the regime's kappa and rho, theta = (vol_ratio x
    equity_vol)^2 and vol-of-vol = vol_ratio x the regime's, so 2 kappa theta / sigma^2
    (the Feller ratio) is the regime's."""
    ratio = asset.vol_ratio
    return HestonStepper(regime.heston_kappa, regime.variance * ratio * ratio,
                         regime.vol_of_vol * ratio, regime.spot_variance_corr, DT_DAY, scheme)


def simulate_portfolio(
    spec: PortfolioSpec,
    regime: Regime,
    n_paths: int = 1000,
    seed: SeedLike = 0,
    *,
    warmup_months: int = 24,
    horizon_years: int = 5,
    measure: Measure = "physical",
    antithetic: bool = False,
    scheme: Scheme = "qe",
) -> PortfolioPaths:
    """Simulate every asset of ``spec`` in one regime (arguments as
    :func:`engine.market.paths.simulate_scenario`).

    The two-asset spec is simulated by :func:`engine.market.paths.simulate_scenario`
    itself, so its paths are those of the two-asset study bit for bit. Otherwise each day
    draws 2n + 1 normals correlated by :func:`driver_correlation` (a block of days at a
    time, the next drawn ahead by a helper thread: engine.market.shock_blocks); equity i takes a QE
    (or Euler) Heston step with drift mu + drift_spread_i (physical) or r_t - q
    (risk-neutral), the short rate its exact Vasicek step (theta, or theta_Q under
    risk-neutral), and every bond bucket is repriced in closed form off the rate path
    (:func:`engine.portfolio.bonds.bucket_levels`).
    """
    if spec.is_two_asset:
        bond = spec.defensive[0]
        paths = simulate_scenario(regime, n_paths, seed, warmup_months=warmup_months,
                                  horizon_years=horizon_years, measure=measure,
                                  bond_maturity=float(bond.maturity_years),  # type: ignore[arg-type]
                                  antithetic=antithetic, scheme=scheme)
        return PortfolioPaths(regime.name, spec, np.stack([paths.equity, paths.bond]),
                              paths.variance[None], paths.short_rate, paths.cash,
                              warmup_months, measure, paths)
    if measure not in ("physical", "risk_neutral"):
        raise ValueError(f"measure = {measure!r} is not one of physical, risk_neutral")
    if n_paths < 1 or (antithetic and n_paths % 2):
        raise ValueError(f"n_paths = {n_paths} must be >= 1 (and even with antithetic)")
    if warmup_months < 0 or horizon_years < 1:
        raise ValueError("warmup_months must be >= 0 and horizon_years >= 1")
    rng = as_generator(
        seed_sequence_for(seed, regime.name) if isinstance(seed, int) else seed
    )
    n_steps = (warmup_months + horizon_years * MONTHS_PER_YEAR) * TRADING_DAYS_PER_MONTH
    equities = spec.equities
    n = len(equities)
    steppers = [equity_stepper(regime, a, scheme) for a in equities]
    vasicek = Vasicek(regime.rate_mean_reversion, regime.short_rate, regime.rate_vol,
                      regime.rate_risk_premium)
    rate_dynamics = vasicek if measure == "physical" else Vasicek(
        vasicek.kappa, vasicek.theta_q, vasicek.sigma, 0.0
    )
    chol = np.linalg.cholesky(driver_correlation(spec, regime))
    rho = regime.spot_variance_corr
    perp_scale = 1.0 / math.sqrt(1.0 - rho * rho)
    drifts = np.array([regime.equity_drift + a.drift_spread for a in equities])

    shape = (n_paths, n_steps + 1)
    levels = np.empty((len(spec.assets), *shape))
    variance = np.empty((n, *shape))
    short_rate, cash = np.empty(shape), np.empty(shape)
    levels[:, :, 0] = cash[:, 0] = 1.0
    for i, stepper in enumerate(steppers):
        variance[i, :, 0] = stepper.theta
    short_rate[:, 0] = regime.short_rate
    log_levels, log_cash = np.zeros((n, n_paths)), np.zeros(n_paths)
    decay, sd = rate_dynamics.step_coefficients(DT_DAY)
    rates = np.array([rho, perp_scale, DT_DAY, regime.dividend_yield, rate_dynamics.theta,
                      decay, sd])
    heston = np.stack([stepper.constants for stepper in steppers])
    for t0, shocks in shock_blocks(rng, chol, n_paths, n_steps, antithetic=antithetic):
        portfolio_days(t0, shocks, levels, log_levels, variance, short_rate, cash, log_cash,
                       heston, drifts, rates, measure == "risk_neutral")

    for j, asset in enumerate(spec.defensive, start=n):
        if asset.asset_class == "cash":
            levels[j] = cash
        else:
            bucket_levels(vasicek, short_rate, asset, levels[j])
    return PortfolioPaths(regime.name, spec, levels, variance, short_rate, cash,
                          warmup_months, measure)
