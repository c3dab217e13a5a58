"""Scenario paths: correlated daily equity, variance, short rate, bond and cash paths."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.conventions import DT_DAY, MONTHS_PER_YEAR, TRADING_DAYS_PER_MONTH
from engine.market.heston import HestonStepper, Scheme
from engine.market.kernels import scenario_days
from engine.market.legs import DefensiveLeg, leg_label
from engine.market.rates import Vasicek
from engine.market.regimes import Regime
from engine.market.shock_blocks import shock_blocks
from engine.rng import as_generator, seed_sequence_for
from engine.types import FloatArray, IntArray, SeedLike

Measure = Literal["physical", "risk_neutral"]


@dataclass(frozen=True, slots=True)
class ScenarioPaths:
    """Daily paths of one scenario; every array has shape (n_paths, n_steps + 1).

    ``equity``, ``bond`` and ``cash`` are index levels starting at 1 (total return:
    the equity index and the bond index reinvest everything, cash accrues the short
    rate); ``variance`` is the Heston variance and ``short_rate`` the Vasicek rate,
    both annualised. Day 0 is the start of the warm-up; the evaluation starts at day
    ``warmup_months * 21``.
    """

    regime: Regime
    equity: FloatArray
    variance: FloatArray
    short_rate: FloatArray
    bond: FloatArray
    cash: FloatArray
    warmup_months: int
    measure: Measure
    bond_maturity: float
    leg: DefensiveLeg = "bond"

    @property
    def defensive(self) -> FloatArray:
        """The non-equity leg's index levels: ``bond`` or ``cash`` as ``leg`` says
        (engine.market.legs: the leg the live signal holds)."""
        return self.bond if self.leg == "bond" else self.cash

    @property
    def n_paths(self) -> int:
        return self.equity.shape[0]

    @property
    def n_steps(self) -> int:
        return self.equity.shape[1] - 1

    @property
    def n_months(self) -> int:
        return self.n_steps // TRADING_DAYS_PER_MONTH

    @property
    def month_ends(self) -> IntArray:
        """Day indices of month-ends 0, 21, 42, ..., shape (n_months + 1,)."""
        return np.arange(self.n_months + 1, dtype=np.int64) * TRADING_DAYS_PER_MONTH

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.equity, self.variance, self.short_rate,
                                      self.bond, self.cash))


def simulate_scenario(
    regime: Regime,
    n_paths: int = 1000,
    seed: SeedLike = 0,
    *,
    warmup_months: int = 24,
    horizon_years: int = 5,
    measure: Measure = "physical",
    bond_maturity: float = 7.0,
    antithetic: bool = False,
    scheme: Scheme = "qe",
    leg: DefensiveLeg = "bond",
) -> ScenarioPaths:
    """Simulate ``n_paths`` daily paths of one regime over warm-up plus horizon.

    Parameters
    ----------
    regime : the market regime.
    n_paths : number of paths (even when ``antithetic``).
    seed : an int run seed (combined with ``regime.name`` through SeedSequence, so each
        regime has its own stream), a SeedSequence, a Generator, or None.
    warmup_months : months simulated before the evaluation starts (trailing-vol history).
    horizon_years : evaluation horizon in years of 252 days.
    measure : "physical" (equity drift = regime.equity_drift, short rate reverting to
        theta) or "risk_neutral" (equity drift = r_t - q on each path, so
        S_t / cash_t e^{q t} is a martingale; short rate reverting to theta_Q, so the
        bond index earns r_t in expectation rather than r_t + lambda sigma_r B).
    bond_maturity : maturity in years of the constant-maturity zero-coupon bond index.
    antithetic : pair paths with the negated shocks.
    scheme : Heston discretisation, "qe" (default) or "euler".
    leg : the non-equity leg the strategies hold on these paths, "bond" (the bond
        index) or "cash" (the short rate): the one the live market data supports
        (engine.market.legs.leg_of). Both are simulated either way; the draws do not
        depend on it.

    Notes
    -----
    Each day draws three independent normals, correlates them with the Cholesky factor
    of ``regime.shock_correlation()`` into (Z_v, Z_S, Z_r), and feeds Z_v and
    Z_perp = (Z_S - rho_sv Z_v) / sqrt(1 - rho_sv^2) to the Heston QE step and Z_r to
    the exact Vasicek step. The bond index return is the exact zero-coupon repricing of
    :meth:`engine.market.rates.Vasicek.index_log_return`. The normals of a block of days
    are drawn at once (the same stream as day by day), a helper thread drawing the next
    block while this one is stepped (engine.market.shock_blocks), and the days are
    stepped by one compiled loop per path (engine.market.kernels.scenario_days).
    """
    if measure not in ("physical", "risk_neutral"):
        raise ValueError(f"measure = {measure!r} is not one of physical, risk_neutral")
    if n_paths < 1 or (antithetic and n_paths % 2):
        raise ValueError(f"n_paths = {n_paths} must be >= 1 (and even with antithetic)")
    if warmup_months < 0 or horizon_years < 1:
        raise ValueError("warmup_months must be >= 0 and horizon_years >= 1")
    leg_label(leg)
    if not 1.0 / 252 < bond_maturity <= 50.0:
        raise ValueError(f"bond_maturity = {bond_maturity} is outside (1/252, 50] years")
    rng = as_generator(
        seed_sequence_for(seed, regime.name) if isinstance(seed, int) else seed
    )
    n_steps = (warmup_months + horizon_years * MONTHS_PER_YEAR) * TRADING_DAYS_PER_MONTH
    dt = DT_DAY
    heston = HestonStepper(regime.heston_kappa, regime.variance, regime.vol_of_vol,
                           regime.spot_variance_corr, dt, scheme)
    vasicek = Vasicek(regime.rate_mean_reversion, regime.short_rate, regime.rate_vol,
                      regime.rate_risk_premium)
    # The rate moves with the physical mean theta, or with the pricing measure's theta_Q
    # under risk_neutral (same bond prices: lam = 0 and theta = theta_Q), so the bond
    # index, like the equity, earns the short rate in expectation there.
    rate_dynamics = vasicek if measure == "physical" else Vasicek(
        vasicek.kappa, vasicek.theta_q, vasicek.sigma, 0.0
    )
    chol = np.linalg.cholesky(regime.shock_correlation())
    rho_sv = regime.spot_variance_corr
    perp_scale = 1.0 / math.sqrt(1.0 - rho_sv * rho_sv)

    shape = (n_paths, n_steps + 1)
    equity, variance, short_rate = np.empty(shape), np.empty(shape), np.empty(shape)
    bond, cash = np.empty(shape), np.empty(shape)
    equity[:, 0] = bond[:, 0] = cash[:, 0] = 1.0
    log_levels = np.zeros((3, n_paths))
    variance[:, 0] = regime.variance
    short_rate[:, 0] = regime.short_rate
    decay, sd = rate_dynamics.step_coefficients(dt)
    rates = np.array([
        rho_sv, perp_scale, dt,
        regime.equity_drift if measure == "physical" else regime.dividend_yield,
        rate_dynamics.theta, decay, sd,
        *vasicek.zero_coupon_coefficients(bond_maturity - dt),
        *vasicek.zero_coupon_coefficients(bond_maturity),
    ])
    for t0, shocks in shock_blocks(rng, chol, n_paths, n_steps, antithetic=antithetic):
        scenario_days(t0, shocks, equity, variance, short_rate, bond, cash, log_levels,
                      heston.constants, rates, measure == "risk_neutral")

    return ScenarioPaths(
        regime=regime,
        equity=equity,
        variance=variance,
        short_rate=short_rate,
        bond=bond,
        cash=cash,
        warmup_months=warmup_months,
        measure=measure,
        bond_maturity=bond_maturity,
        leg=leg,
    )
