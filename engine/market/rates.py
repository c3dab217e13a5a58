"""Vasicek short rate and the constant-maturity zero-coupon government-bond index.

The short rate follows dr = kappa (theta - r) dt + sigma dW (physical measure), simulated
with its exact Gaussian transition. Bonds are priced in closed form under the pricing
measure, where the drift is kappa (theta_Q - r) with theta_Q = theta + lambda sigma / kappa:
a zero-coupon bond then earns r + lambda sigma B(tau) in expectation (lambda = the
market price of rate risk, positive for a positive term premium).

Reference: O. Vasicek, "An equilibrium characterization of the term structure",
Journal of Financial Economics 5, 1977; Brigo & Mercurio, Interest Rate Models, 3.2.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.types import FloatArray


@dataclass(frozen=True, slots=True)
class Vasicek:
    """Vasicek parameters: kappa (1/year), theta and sigma (absolute, annualised),
    lam the market price of rate risk."""

    kappa: float
    theta: float
    sigma: float
    lam: float = 0.0

    @property
    def theta_q(self) -> float:
        """theta_Q = theta + lam sigma / kappa, the mean the rate reverts to under pricing."""
        return self.theta + self.lam * self.sigma / self.kappa

    def mean(self, r0: float, t: float) -> float:
        """E[r_t] = theta + (r0 - theta) e^{-kappa t}."""
        return self.theta + (r0 - self.theta) * math.exp(-self.kappa * t)

    def variance(self, t: float) -> float:
        """Var[r_t] = sigma^2 (1 - e^{-2 kappa t}) / (2 kappa)."""
        return self.sigma**2 * (1.0 - math.exp(-2.0 * self.kappa * t)) / (2.0 * self.kappa)

    def step(self, r: FloatArray, z: FloatArray, dt: float) -> FloatArray:
        """Exact transition: r_{t+dt} = E[r_{t+dt} | r_t] + sqrt(Var(dt)) z."""
        decay, sd = self.step_coefficients(dt)
        return self.theta + (r - self.theta) * decay + sd * z

    def step_coefficients(self, dt: float) -> tuple[float, float]:
        """e^{-kappa dt} and sqrt(Var(dt)) of the exact transition :meth:`step`."""
        return math.exp(-self.kappa * dt), math.sqrt(self.variance(dt))

    def b(self, tau: float) -> float:
        """B(tau) = (1 - e^{-kappa tau}) / kappa, the bond's rate duration in years."""
        return (1.0 - math.exp(-self.kappa * tau)) / self.kappa

    def log_zero_coupon(self, r: FloatArray, tau: float) -> FloatArray:
        """Log zero-coupon price under the pricing measure, ln P(tau, r) = ln A(tau) - B(tau) r."""
        log_a, b = self.zero_coupon_coefficients(tau)
        return log_a - b * r

    def zero_coupon_coefficients(self, tau: float) -> tuple[float, float]:
        """ln A(tau) and B(tau) of ln P(tau, r) = ln A - B r.

        ln A = (theta_Q - sigma^2 / (2 kappa^2)) (B - tau) - sigma^2 B^2 / (4 kappa).
        """
        b = self.b(tau)
        log_a = (self.theta_q - self.sigma**2 / (2.0 * self.kappa**2)) * (b - tau) - (
            self.sigma**2 * b * b / (4.0 * self.kappa)
        )
        return log_a, b

    def zero_yield(self, r: FloatArray, tau: float) -> FloatArray:
        """Continuously compounded zero-coupon yield y(tau) = -ln P(tau, r) / tau."""
        return -self.log_zero_coupon(r, tau) / tau

    def index_log_return(
        self, r_now: FloatArray, r_next: FloatArray, maturity: float, dt: float
    ) -> FloatArray:
        """Daily log return of a constant-maturity zero-coupon index.

        The index holds the ``maturity``-year zero for one step, sells it as a
        (maturity - dt)-year zero and buys a fresh ``maturity``-year one: the exact
        repricing ln P(maturity - dt, r_next) - ln P(maturity, r_now). Carry, duration
        (-B dr) and convexity (B^2 dr^2 / 2) are all in it, with no Taylor error.
        """
        return self.log_zero_coupon(r_next, maturity - dt) - self.log_zero_coupon(
            r_now, maturity
        )


def cash_log_return(r_now: FloatArray, dt: float) -> FloatArray:
    """Money-market account over one step at the rate fixed at its start: r dt."""
    return np.asarray(r_now) * dt
