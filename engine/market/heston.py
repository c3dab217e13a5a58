"""Heston stochastic volatility, discretised with Andersen's QE scheme.

References
----------
L. Andersen, "Simple and efficient simulation of the Heston stochastic volatility
model", Journal of Computational Finance 11(3), 2008: the quadratic-exponential (QE)
variance step (section 3.2.4), the log-spot step with gamma1 = gamma2 = 1/2 (eq. 33)
and the martingale correction (section 4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from engine.market.kernels import EULER, QE, heston_steps
from engine.rng import as_generator
from engine.types import FloatArray, SeedLike

Scheme = Literal["qe", "euler"]


@dataclass(frozen=True, slots=True)
class HestonStepper:
    """One time step of the Heston model for many paths at once.

    Variance follows dv = kappa (theta - v) dt + sigma sqrt(v) dW_v and the log-spot
    d ln S = (drift - v/2) dt + sqrt(v) dW_S with corr(dW_S, dW_v) = rho. ``step`` takes
    the Gaussian variance shock ``z_v`` and an equity shock ``z_perp`` independent of it;
    the spot-variance correlation enters through the K constants (Andersen eq. 33).
    """

    kappa: float
    theta: float
    sigma: float
    rho: float
    dt: float
    scheme: Scheme = "qe"
    constants: FloatArray = field(init=False, repr=False, compare=False)
    """The step's constants in the layout of engine.market.kernels.heston_step."""

    def __post_init__(self) -> None:
        if self.scheme not in ("qe", "euler"):
            raise ValueError(f"scheme = {self.scheme!r} is not one of qe, euler")
        if self.sigma <= 0.0 or self.kappa <= 0.0 or self.theta <= 0.0 or self.dt <= 0.0:
            raise ValueError("kappa, theta, sigma and dt must be positive")
        if not -1.0 < self.rho < 1.0:
            raise ValueError(f"rho = {self.rho} is outside the allowed range (-1, 1)")
        object.__setattr__(self, "constants", self._kernel_constants())

    def step(
        self, v: FloatArray, z_v: FloatArray, z_perp: FloatArray, drift: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Advance one step.

        Parameters
        ----------
        v : variance at t, shape (n_paths,).
        z_v : standard normal variance shock, shape (n_paths,).
        z_perp : standard normal equity shock independent of ``z_v``, shape (n_paths,).
        drift : annualised drift of the spot (mu, or r - q), scalar or (n_paths,).

        Returns
        -------
        (log_return, v_next): ln(S_{t+dt} / S_t) and the variance at t + dt.

        Notes
        -----
        QE: m = theta + (v - theta) e^{-kappa dt}, s^2 the CIR conditional variance,
        psi = s^2 / m^2. For psi <= 1.5, v_next = a (b + Z_v)^2 with
        b^2 = 2/psi - 1 + sqrt(2/psi) sqrt(2/psi - 1), a = m / (1 + b^2); above it
        v_next = 0 with probability p = (psi - 1) / (psi + 1), else
        ln((1 - p) / (1 - U)) / beta with U = N(Z_v), beta = (1 - p) / m. The log-spot
        step is drift dt + K0* + K1 v + K2 v_next + sqrt(K3 v + K4 v_next) Z_perp with
        K1, K2 = dt (kappa rho / sigma - 1/2) / 2 -+ rho / sigma, K3 = K4 = dt (1 - rho^2) / 2,
        and K0* = -ln E[exp(A v_next) | v] - (K1 + K3 / 2) v (A = K2 + K4 / 2) the
        martingale correction. Euler (full truncation): v+ = max(v, 0),
        v_next = max(v + kappa (theta - v+) dt + sigma sqrt(v+ dt) Z_v, 0) and
        log_return = (drift - v+/2) dt + sqrt(v+ dt) (rho Z_v + sqrt(1 - rho^2) Z_perp).
        The step is compiled (engine.market.kernels.heston_step).
        """
        drift = np.broadcast_to(np.asarray(drift, dtype=np.float64), np.shape(v))
        return heston_steps(v, z_v, z_perp, drift, self.constants)

    def _kernel_constants(self) -> FloatArray:
        dt, kappa, theta, sigma, rho = self.dt, self.kappa, self.theta, self.sigma, self.rho
        if self.scheme == "euler":
            return np.array([EULER, dt, kappa, theta, sigma, rho, math.sqrt(1.0 - rho * rho)])
        decay = math.exp(-kappa * dt)
        k1 = 0.5 * dt * (kappa * rho / sigma - 0.5) - rho / sigma
        k2 = 0.5 * dt * (kappa * rho / sigma - 0.5) + rho / sigma
        k3 = 0.5 * dt * (1.0 - rho * rho)
        k4 = k3
        return np.array([
            QE, dt, kappa, theta, sigma, decay,
            sigma**2 * decay * (1.0 - decay) / kappa,
            theta * sigma**2 * (1.0 - decay) ** 2 / (2.0 * kappa),
            k1, k2, k3, k4, k2 + 0.5 * k4, k1 + 0.5 * k3,
        ])


def simulate_heston(
    s0: float,
    v0: float,
    kappa: float,
    theta: float,
    sigma: float,
    rho: float,
    r: float,
    q: float,
    T: float,
    n_steps: int,
    n_paths: int,
    seed: SeedLike,
    scheme: Scheme = "qe",
    *,
    antithetic: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Simulate Heston spot and variance paths under the risk-neutral measure.

    Parameters
    ----------
    s0, v0 : initial spot and variance (variance = vol**2, annualised).
    kappa, theta, sigma, rho : mean reversion (1/year), long-run variance, vol of
        variance, spot-variance correlation.
    r, q : continuously compounded risk-free rate and dividend yield; drift = r - q.
    T : horizon in years, split into ``n_steps`` equal steps.
    n_paths : number of paths (even when ``antithetic``).
    seed : int, SeedSequence, Generator or None.
    scheme : "qe" (Andersen QE with martingale correction) or "euler" (full truncation).
    antithetic : pair each path with the one driven by the negated shocks.

    Returns
    -------
    spot, variance : arrays of shape (n_paths, n_steps + 1), column 0 the initial values.

    Notes
    -----
    With the martingale correction E[S_T] = s0 exp((r - q) T) holds exactly for the
    discretised process, and the QE variance step matches the first two conditional
    moments of the non-central chi-square transition whether or not the Feller
    condition 2 kappa theta > sigma^2 holds.
    """
    if n_steps < 1 or n_paths < 1:
        raise ValueError("n_steps and n_paths must be at least 1")
    if antithetic and n_paths % 2:
        raise ValueError(f"n_paths = {n_paths} must be even with antithetic=True")
    if s0 <= 0 or v0 < 0 or T <= 0:
        raise ValueError("s0 and T must be positive and v0 non-negative")
    rng = as_generator(seed)
    stepper = HestonStepper(kappa, theta, sigma, rho, T / n_steps, scheme)
    spot = np.empty((n_paths, n_steps + 1))
    variance = np.empty((n_paths, n_steps + 1))
    log_s = np.full(n_paths, math.log(s0))
    v = np.full(n_paths, float(v0))
    spot[:, 0] = s0
    variance[:, 0] = v
    for t in range(n_steps):
        z = draw_normals(rng, 2, n_paths, antithetic=antithetic)
        log_return, v = stepper.step(v, z[0], z[1], r - q)
        log_s += log_return
        spot[:, t + 1] = np.exp(log_s)
        variance[:, t + 1] = v
    return spot, variance


def draw_normals(
    rng: np.random.Generator, n_factors: int, n_paths: int, *, antithetic: bool,
    n_steps: int | None = None,
) -> FloatArray:
    """Independent standard normals of shape (n_factors, n_paths), or (n_steps, n_factors,
    n_paths) for ``n_steps`` days at once (the same numbers as n_steps draws one after the
    other); antithetic pairs put the negated draws of the first half in the second half."""
    lead = () if n_steps is None else (n_steps,)
    if not antithetic:
        return rng.standard_normal((*lead, n_factors, n_paths))
    half = rng.standard_normal((*lead, n_factors, n_paths // 2))
    return np.concatenate([half, -half], axis=-1)


def variance_mean(v0: float, kappa: float, theta: float, t: float) -> float:
    """E[v_t] = theta + (v0 - theta) e^{-kappa t} (CIR mean)."""
    return theta + (v0 - theta) * math.exp(-kappa * t)


def variance_variance(v0: float, kappa: float, theta: float, sigma: float, t: float) -> float:
    """Var[v_t] = v0 sigma^2 e^{-kt}(1 - e^{-kt})/k + theta sigma^2 (1 - e^{-kt})^2 / (2k)."""
    decay = math.exp(-kappa * t)
    return v0 * sigma**2 * decay * (1.0 - decay) / kappa + theta * sigma**2 * (
        1.0 - decay
    ) ** 2 / (2.0 * kappa)
