"""Heston QE simulation against closed-form moments, within Monte Carlo standard errors.

Every Monte Carlo check runs at a fixed seed and compares a sample mean to its closed
form within K_SE standard errors, SE = sample std / sqrt(n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.market.heston import (
    HestonStepper,
    draw_normals,
    simulate_heston,
    variance_mean,
    variance_variance,
)

K_SE = 4.0
N_PATHS = 20_000
N_STEPS = 50

# (name, parameters): one case with 2 kappa theta > sigma^2 (Feller holds: 0.18 > 0.09),
# one like the low_vol regime (kappa 2, theta 0.08^2, sigma 0.3: 0.0256 < 0.09).
CASES = {
    "feller": dict(
        s0=100.0, v0=0.06, kappa=1.5, theta=0.06, sigma=0.3, rho=-0.7, r=0.03, q=0.01, T=1.0
    ),
    "no_feller": dict(
        s0=100.0, v0=0.01, kappa=2.0, theta=0.0064, sigma=0.3, rho=-0.7, r=0.04, q=0.02, T=1.0
    ),
}


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    """Sample mean and its standard error std / sqrt(n)."""
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def _variance_se(x: np.ndarray) -> tuple[float, float]:
    """Sample variance and its standard error sqrt(Var[(x - mean)^2] / n)."""
    dev2 = (x - x.mean()) ** 2
    return float(x.var(ddof=1)), float(dev2.std(ddof=1) / math.sqrt(x.size))


# QE matches the transition's first two conditional moments at any step size, so the
# closed forms hold with coarse steps too; 2 steps a year in the Feller-violating case put
# almost every draw through the exponential branch (psi > 1.5), 50 steps mostly through
# the quadratic one. (name, n_steps, n_paths).
RUNS = [("feller", N_STEPS, N_PATHS), ("no_feller", N_STEPS, N_PATHS), ("no_feller", 2, 100_000)]


@pytest.fixture(scope="module", params=RUNS, ids=[f"{c}-{n}steps" for c, n, _ in RUNS])
def heston_case(request):
    name, n_steps, n_paths = request.param
    params = CASES[name]
    spot, var = simulate_heston(**params, n_steps=n_steps, n_paths=n_paths, seed=20240601)
    return (n_steps, n_paths), params, spot, var


def test_feller_cases_are_what_they_claim():
    # The Feller condition 2 kappa theta > sigma^2, evaluated by hand on CASES.
    f, nf = CASES["feller"], CASES["no_feller"]
    assert 2 * f["kappa"] * f["theta"] > f["sigma"] ** 2
    assert 2 * nf["kappa"] * nf["theta"] < nf["sigma"] ** 2


def test_shapes_and_initial_column(heston_case):
    (n_steps, n_paths), params, spot, var = heston_case
    assert spot.shape == var.shape == (n_paths, n_steps + 1)
    assert np.all(spot[:, 0] == params["s0"])
    assert np.all(var[:, 0] == params["v0"])
    assert np.all(np.isfinite(spot)) and np.all(spot > 0)
    assert np.all(var >= 0)


def test_variance_mean_matches_cir_closed_form(heston_case):
    # Reference: E[v_T] = theta + (v0 - theta) e^{-kappa T} (CIR mean), which the QE step
    # matches exactly step by step (Andersen 2008, section 3.2.4).
    _, p, _, var = heston_case
    expected = variance_mean(p["v0"], p["kappa"], p["theta"], p["T"])
    assert expected == pytest.approx(p["theta"] + (p["v0"] - p["theta"]) * math.exp(-p["kappa"]))
    mean, se = _mean_se(var[:, -1])
    np.testing.assert_allclose(mean, expected, rtol=0, atol=K_SE * se)


def test_variance_variance_matches_cir_closed_form(heston_case):
    # Reference: Var[v_T] = v0 s^2 e^{-kT}(1 - e^{-kT})/k + theta s^2 (1 - e^{-kT})^2/(2k);
    # QE matches the first two conditional moments, and both are linear in v_t, so the
    # unconditional variance after many steps is exact too.
    _, p, _, var = heston_case
    expected = variance_variance(p["v0"], p["kappa"], p["theta"], p["sigma"], p["T"])
    sample_var, se = _variance_se(var[:, -1])
    np.testing.assert_allclose(sample_var, expected, rtol=0, atol=K_SE * se)


def test_discounted_spot_is_a_martingale(heston_case):
    # Reference: E[S_T] = s0 e^{(r - q) T} under the risk-neutral measure; exact for the
    # discretised process thanks to the QE martingale correction (Andersen section 4.2).
    _, p, spot, _ = heston_case
    expected = p["s0"] * math.exp((p["r"] - p["q"]) * p["T"])
    mean, se = _mean_se(spot[:, -1])
    np.testing.assert_allclose(mean, expected, rtol=0, atol=K_SE * se)


def test_vanishing_vol_of_vol_reduces_to_gbm():
    # Reference: with sigma -> 0 and v0 = theta the variance stays at v, so ln S_T is
    # Gaussian with mean ln s0 + (r - q - v/2) T and variance v T (geometric Brownian motion).
    v, r, q, T, s0 = 0.04, 0.03, 0.01, 1.0, 100.0
    spot, var = simulate_heston(
        s0, v, 2.0, v, 1e-4, -0.5, r, q, T, n_steps=N_STEPS, n_paths=N_PATHS, seed=7
    )
    # The variance wanders by at most a few stationary CIR standard deviations
    # sqrt(theta sigma^2 / (2 kappa)) = 1e-5 over the 1e6 simulated values.
    np.testing.assert_allclose(var, v, rtol=0, atol=8 * math.sqrt(v * 1e-8 / 4.0))
    log_s = np.log(spot[:, -1])
    mean, se_mean = _mean_se(log_s)
    np.testing.assert_allclose(mean, math.log(s0) + (r - q - v / 2) * T, rtol=0,
                               atol=K_SE * se_mean)
    sample_var, se_var = _variance_se(log_s)
    np.testing.assert_allclose(sample_var, v * T, rtol=0, atol=K_SE * se_var)


def test_euler_scheme_runs_and_is_a_martingale():
    # Full-truncation Euler: ln S steps by (r - q - v+/2) dt + sqrt(v+ dt) Z, so
    # E[S_{t+dt} | v_t] = S_t e^{(r - q) dt} exactly and E[S_T] = s0 e^{(r - q) T}.
    p = CASES["no_feller"]
    spot, var = simulate_heston(**p, n_steps=N_STEPS, n_paths=N_PATHS, seed=11, scheme="euler")
    assert spot.shape == var.shape == (N_PATHS, N_STEPS + 1)
    assert np.all(np.isfinite(spot)) and np.all(var >= 0)
    mean, se = _mean_se(spot[:, -1])
    np.testing.assert_allclose(mean, p["s0"] * math.exp((p["r"] - p["q"]) * p["T"]), rtol=0,
                               atol=K_SE * se)


def test_same_seed_gives_identical_bits():
    p = CASES["feller"]
    a = simulate_heston(**p, n_steps=10, n_paths=64, seed=3)
    b = simulate_heston(**p, n_steps=10, n_paths=64, seed=3)
    c = simulate_heston(**p, n_steps=10, n_paths=64, seed=np.random.default_rng(3))
    d = simulate_heston(**p, n_steps=10, n_paths=64, seed=4)
    for x, y, z in zip(a, b, c, strict=True):
        assert np.array_equal(x, y)
        assert np.array_equal(x, z)
    assert not np.array_equal(a[0], d[0])


def test_draw_normals_antithetic_halves_are_negated():
    z = draw_normals(np.random.default_rng(0), 3, 10, antithetic=True)
    assert z.shape == (3, 10)
    assert np.array_equal(z[:, 5:], -z[:, :5])


def test_antithetic_euler_first_step_is_symmetric():
    # One Euler step from a common v0: ln(S_1/s0) - (r - q - v0/2) dt = sqrt(v0 dt) Z_S,
    # and the antithetic partner has -Z_S.
    p = CASES["feller"]
    n_steps, n = 4, 100
    spot, _ = simulate_heston(**p, n_steps=n_steps, n_paths=n, seed=5, scheme="euler",
                              antithetic=True)
    dt = p["T"] / n_steps
    shock = np.log(spot[:, 1] / p["s0"]) - (p["r"] - p["q"] - p["v0"] / 2) * dt
    np.testing.assert_allclose(shock[n // 2 :], -shock[: n // 2], rtol=0, atol=1e-14)


def test_antithetic_qe_is_a_martingale():
    # Antithetic pairs are dependent; the SE comes from the n/2 independent pair means.
    p = CASES["feller"]
    spot, var = simulate_heston(**p, n_steps=N_STEPS, n_paths=N_PATHS, seed=9, antithetic=True)
    half = N_PATHS // 2
    pair_means = 0.5 * (spot[:half, -1] + spot[half:, -1])
    mean, se = _mean_se(pair_means)
    np.testing.assert_allclose(mean, p["s0"] * math.exp((p["r"] - p["q"]) * p["T"]), rtol=0,
                               atol=K_SE * se)
    v_pairs = 0.5 * (var[:half, -1] + var[half:, -1])
    v_mean, v_se = _mean_se(v_pairs)
    np.testing.assert_allclose(
        v_mean, variance_mean(p["v0"], p["kappa"], p["theta"], p["T"]), rtol=0, atol=K_SE * v_se
    )


@pytest.mark.parametrize(
    "override",
    [
        {"n_steps": 0},
        {"n_paths": 0},
        {"n_paths": 3, "antithetic": True},
        {"s0": 0.0},
        {"s0": -1.0},
        {"v0": -0.01},
        {"T": 0.0},
        {"scheme": "milstein"},
        {"sigma": 0.0},
        {"kappa": -1.0},
        {"theta": 0.0},
        {"rho": 1.0},
        {"rho": -1.5},
    ],
)
def test_invalid_inputs_raise(override):
    kwargs = dict(CASES["feller"], n_steps=4, n_paths=8, seed=0)
    kwargs.update(override)
    with pytest.raises(ValueError):
        simulate_heston(**kwargs)


def test_stepper_rejects_bad_scheme_and_rho():
    with pytest.raises(ValueError, match="scheme"):
        HestonStepper(2.0, 0.04, 0.3, -0.7, 1 / 252, "exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rho"):
        HestonStepper(2.0, 0.04, 0.3, 1.0, 1 / 252)
