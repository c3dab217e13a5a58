"""Vasicek short rate and zero-coupon bond index against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.market.rates import Vasicek, cash_log_return

K_SE = 4.0
MODEL = Vasicek(kappa=0.8, theta=0.03, sigma=0.012, lam=0.2)
R0 = 0.06


@pytest.fixture(scope="module")
def terminal_rates() -> tuple[float, np.ndarray]:
    """r_T from 100 repeated exact steps of 0.02 years on 20,000 paths, T = 2."""
    rng = np.random.default_rng(20240602)
    n_paths, n_steps, dt = 20_000, 100, 0.02
    r = np.full(n_paths, R0)
    for _ in range(n_steps):
        r = MODEL.step(r, rng.standard_normal(n_paths), dt)
    return n_steps * dt, r


def test_closed_form_moments_by_hand():
    # Reference: Vasicek (1977) / Brigo & Mercurio eq. (3.8): E[r_t] = theta + (r0 - theta)
    # e^{-kappa t}, Var[r_t] = sigma^2 (1 - e^{-2 kappa t}) / (2 kappa); t = 2.
    np.testing.assert_allclose(MODEL.mean(R0, 2.0), 0.03 + 0.03 * math.exp(-1.6), rtol=1e-15)
    np.testing.assert_allclose(
        MODEL.variance(2.0), 0.012**2 * (1 - math.exp(-3.2)) / 1.6, rtol=1e-15
    )


def test_mc_mean_of_repeated_steps(terminal_rates):
    t, r = terminal_rates
    se = r.std(ddof=1) / math.sqrt(r.size)
    np.testing.assert_allclose(r.mean(), MODEL.mean(R0, t), rtol=0, atol=K_SE * se)


def test_mc_variance_of_repeated_steps(terminal_rates):
    # r_T is Gaussian, so the sample variance has SE = Var sqrt(2 / (n - 1)).
    t, r = terminal_rates
    expected = MODEL.variance(t)
    se = expected * math.sqrt(2.0 / (r.size - 1))
    np.testing.assert_allclose(r.var(ddof=1), expected, rtol=0, atol=K_SE * se)


def test_zero_coupon_at_zero_maturity():
    # P(0, r) = 1 exactly, and y(tau) -> r as tau -> 0 (the error is O(tau)).
    r = np.array([-0.01, 0.0, 0.03, 0.1])
    np.testing.assert_allclose(MODEL.log_zero_coupon(r, 0.0), 0.0, rtol=0, atol=0)
    np.testing.assert_allclose(MODEL.log_zero_coupon(r, 1e-9), -r * 1e-9, rtol=0, atol=1e-15)
    np.testing.assert_allclose(MODEL.zero_yield(r, 1e-6), r, rtol=0, atol=1e-7)


def test_zero_yield_tends_to_long_rate():
    # Reference: y(inf) = theta_Q - sigma^2 / (2 kappa^2) with theta_Q = theta + lam sigma /
    # kappa (Brigo & Mercurio 3.2.1). From the closed form, y(tau) - y(inf) =
    # B (r - y(inf) + sigma^2 B / (4 kappa)) / tau with B <= 1/kappa, so at tau = 1e6 the
    # gap is below (|r| + |y(inf)| + sigma^2 / (4 kappa^2)) / (kappa tau) < 2e-7.
    theta_q = 0.03 + 0.2 * 0.012 / 0.8
    long_rate = theta_q - 0.012**2 / (2 * 0.8**2)
    r = np.array([0.0, 0.03, 0.08])
    np.testing.assert_allclose(MODEL.zero_yield(r, 1e6), long_rate, rtol=0, atol=2e-7)


def test_index_log_return_flat_curve_is_the_rate():
    # sigma = 0, lam = 0 and r = theta: ln P(tau) = -theta tau for every tau, so holding the
    # index one step earns theta dt exactly.
    flat = Vasicek(kappa=0.5, theta=0.03, sigma=0.0)
    dt = 1 / 252
    np.testing.assert_allclose(flat.index_log_return(0.03, 0.03, 7.0, dt), 0.03 * dt, rtol=1e-12)


def test_index_log_return_unchanged_rate_is_the_carry():
    # With r_next = r_now the index return is the roll-down carry
    # ln P(m - dt, r) - ln P(m, r), written out here from the Vasicek bond formula
    # ln P(tau, r) = (theta_Q - s^2/(2k^2))(B - tau) - s^2 B^2/(4k) - B r, B = (1 - e^{-k tau})/k.
    k, theta, s, lam = 0.8, 0.03, 0.012, 0.2
    m, dt, r = 7.0, 1 / 252, 0.045
    theta_q = theta + lam * s / k
    b_m = (1 - math.exp(-k * m)) / k
    b_short = (1 - math.exp(-k * (m - dt))) / k
    ln_p_m = (theta_q - s**2 / (2 * k**2)) * (b_m - m) - s**2 * b_m**2 / (4 * k) - b_m * r
    ln_p_short = (
        (theta_q - s**2 / (2 * k**2)) * (b_short - (m - dt))
        - s**2 * b_short**2 / (4 * k)
        - b_short * r
    )
    carry = ln_p_short - ln_p_m
    np.testing.assert_allclose(MODEL.index_log_return(r, r, m, dt), carry, rtol=1e-12)
    # The same carry from yields: m y(m) - (m - dt) y(m - dt).
    roll = m * MODEL.zero_yield(r, m) - (m - dt) * MODEL.zero_yield(r, m - dt)
    np.testing.assert_allclose(carry, roll, rtol=1e-9)


def test_index_log_return_duration_effect():
    # A rate rise dr moves the index by -B(m - dt) dr beyond the carry (linear in r).
    m, dt, r, dr = 7.0, 1 / 252, 0.03, 0.001
    carry = MODEL.index_log_return(r, r, m, dt)
    np.testing.assert_allclose(
        MODEL.index_log_return(r, r + dr, m, dt) - carry, -MODEL.b(m - dt) * dr, rtol=1e-9
    )


def test_cash_log_return_is_rate_times_dt():
    r = np.array([0.01, 0.05])
    np.testing.assert_allclose(cash_log_return(r, 0.5), [0.005, 0.025], rtol=1e-15)
